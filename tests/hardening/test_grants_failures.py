"""Point 6: one bad grant neither stops the others nor fails a delivery; it is reported once.

Against moto with IAM enforced: a challenge whose first grants are refused (an IAM user ppipe
did not create, a user of another account) and whose later grants are fine.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ppipe import api, delivery
from ppipe.ledger import Ledger
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.conftest import bucket_policy, fresh_bucket, principals, s3_spec
from tests.support.helpers import write_csv

FIRST, SECOND = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc), datetime(2026, 12, 1, 9, 1, tzinfo=timezone.utc)
BAD = [
    {"service": "s3", "via": "iam-user-policy", "identity": "root-ish-admin"},
    {"service": "s3", "via": "iam-user-policy", "identity": "arn:aws:iam::999999999999:user/amy"},
]
GOOD = [
    {"service": "s3", "identity": "210987654321"},
    {"service": "s3", "via": "iam-user-policy", "identity": "carol"},
]


def test_bad_grants_fail_one_by_one_and_never_fail_a_delivery(tmp_path, organiser):
    write_csv(tmp_path / "data.csv", 20)
    bucket = fresh_bucket()
    api.create(parse_challenge({
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [s3_spec(organiser.endpoint, bucket)], "grants": BAD + GOOD,
    }))
    ledger = Ledger()

    first = delivery.dispatch(ledger, "alpha", now=FIRST)
    assert [(o.release, o.status) for o in first.outcomes] == [("release_0", "delivered")]
    assert len(first.problems) == 2, first.problems
    assert "root-ish-admin" in first.problems[0] and "not created by ppipe" in first.problems[0]
    assert "999999999999" in first.problems[1] and "\n" not in "".join(first.problems)
    assert "arn:aws:iam::210987654321:root" in principals(bucket_policy(organiser("s3"), bucket))
    assert organiser("iam").list_user_policies(UserName="carol")["PolicyNames"] == ["ppipe-alpha-" + bucket]

    second = delivery.dispatch(ledger, "alpha", now=SECOND)  # a refused grant is not retried
    assert [(o.release, o.status) for o in second.outcomes] == [("release_1", "delivered")]
    assert second.problems == []
    states = {g.identity: [a.state for a in apps] for g in ledger.grants("alpha")
              for gid, apps in ledger.applications("alpha").items() if gid == g.id}
    assert states == {"root-ish-admin": ["failed"], "arn:aws:iam::999999999999:user/amy": ["failed"],
                      "210987654321": ["active"], "carol": ["active"]}
