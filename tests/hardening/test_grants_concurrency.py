"""Point 5: no grant or revocation is lost to a race, and the bucket policy scales.

Against the moto S3 server: grants applied concurrently to one bucket by several challenges
all end up in its policy; a revoke that lands while a dispatch is applying the grant wins;
250 participants fit in S3's 20 KB bucket-policy limit (about 25 did before; past it, access
points take them: test_grants_access_points.py).
"""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from ppipe import api
from ppipe.delivery import access
from ppipe.destinations.s3.client import S3Bucket
from ppipe.ledger import Ledger
from ppipe.challenge.spec import Grant
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.conftest import REGION, all_at_once, bucket_policy, fresh_bucket, principals, s3_spec
from tests.support.helpers import write_csv

S3_POLICY_LIMIT = 20 * 1024


def _create(tmp_path, name: str, destination: dict, grants: list[dict] | None = None):
    write_csv(tmp_path / "data.csv", 10)
    challenge = parse_challenge({
        "name": name, "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [destination], "grants": grants or [],
    })
    api.create(challenge)
    return challenge


@pytest.fixture
def shared(s3_server):
    """A bucket on the moto server (auth off: moto ignores policy principals anyway) and its client."""
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION)
    bucket = fresh_bucket()
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3_server, s3, bucket


def account(i: int) -> str:
    return f"{210000000000 + i}"


@pytest.mark.slow
def test_concurrent_grants_on_a_shared_bucket_are_all_kept(tmp_path, shared):
    endpoint, s3, bucket = shared
    names = ("alpha", "beta", "gamma")
    for name in names:
        _create(tmp_path, name, s3_spec(endpoint, bucket, prefix=name))
    errors = all_at_once(lambda i: api.grant(names[i % 3], Grant(service="s3", identity=account(i))), 24)
    assert errors == []
    assert principals(bucket_policy(s3, bucket)) == {f"arn:aws:iam::{account(i)}:root" for i in range(24)}


class SlowDispatch(S3Bucket):
    """A destination whose grant is overtaken by a revoke: the revoke is started (and given
    time to finish) after the dispatcher read the grant's state and before it writes the policy."""

    def __init__(self, spec, challenge: str, revoke):
        super().__init__(spec, challenge)
        self.revoke_now, self.revoker = revoke, None

    def grant(self, identity, role="reader", *, via=None, notify=False):
        if self.revoker is None:
            self.revoker = threading.Thread(target=self.revoke_now)
            self.revoker.start()
            self.revoker.join(3)  # unguarded code lets the revoke finish here; a guarded one makes it wait
            deadline = time.monotonic() + 10
            while Ledger().grants("alpha", state="revoked") == [] and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().grant(identity, role, via=via, notify=notify)


def test_a_revoke_racing_a_dispatch_is_not_lost(tmp_path, shared):
    endpoint, s3, bucket = shared
    alice = Grant(service="s3", identity="arn:aws:iam::123456789012:user/alice")
    challenge = _create(tmp_path, "alpha", s3_spec(endpoint, bucket), [alice.model_dump(exclude_none=True)])
    ledger = Ledger()
    destination = SlowDispatch(challenge.destinations[0], "alpha", lambda: api.revoke("alpha", alice))

    access.apply_pending(ledger, challenge, destination)  # the dispatcher's grant step
    destination.revoker.join(60)

    assert alice.identity not in principals(bucket_policy(s3, bucket))
    assert [g.state for g in ledger.grants("alpha", state=None)] == ["revoked"]
    assert ledger.unapplied_grants("alpha", destination.uri, "s3") == []  # and the ledger knows it


def test_250_participants_fit_the_bucket_policy_limit(tmp_path, shared):
    endpoint, s3, bucket = shared
    challenge = _create(tmp_path, "alpha", s3_spec(endpoint, bucket))
    ledger = Ledger()
    for i in range(250):
        ledger.add_grant("alpha", Grant(service="s3", identity=account(i)))
    destination = S3Bucket(challenge.destinations[0], "alpha")
    applied = access.apply_pending(ledger, challenge, destination)
    assert [a.action for a in applied] == ["granted"] * 250
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    assert len(policy.encode()) <= S3_POLICY_LIMIT, f"{len(policy)} bytes"
    assert principals(json.loads(policy)) == {f"arn:aws:iam::{account(i)}:root" for i in range(250)}


def test_a_ledger_made_before_grant_versions_is_brought_up_to_date(tmp_path, ppipe_home):
    import sqlite3

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Ledger(url).engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as db:  # as an older ppipe left it
        db.execute("ALTER TABLE grants DROP COLUMN version")
        db.execute("ALTER TABLE grant_applications DROP COLUMN error")
        db.execute("ALTER TABLE grant_applications DROP COLUMN access")
    ledger = Ledger(url)
    challenge = parse_challenge({
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [{"kind": "s3", "bucket": "ppipe-alpha"}], "grants": [{"service": "s3", "identity": "210987654321"}],
    })
    ledger.add_challenge(challenge, 10)
    [row] = ledger.unapplied_grants("alpha", "s3://ppipe-alpha/alpha", "s3")
    assert row.version == 1 and ledger.record_grant_applied(row.id, "s3://ppipe-alpha/alpha", "active", 1,
                                                            access="s3://ppipe-x-s3alias/alpha")


def test_the_access_lock_admits_one_holder_at_a_time(ledger):
    """On SQLite and PostgreSQL: holders never overlap, and a dead holder's lease runs out."""
    from datetime import timedelta

    inside, overlaps = [], []

    def hold(i: int) -> None:
        with ledger.access_lock("s3://shared", wait=60):
            inside.append(i)
            overlaps.append(len(inside))
            time.sleep(0.02)
            inside.remove(i)

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert overlaps == [1] * 8

    abandoned = ledger.access_lock("s3://dead", lease=timedelta(seconds=0.2))
    abandoned.__enter__()  # a holder that dies without releasing
    with pytest.raises(Exception, match="being changed by another ppipe run"):
        with ledger.access_lock("s3://dead", wait=0):
            pass
    time.sleep(0.3)
    with ledger.access_lock("s3://dead", wait=1):
        pass
