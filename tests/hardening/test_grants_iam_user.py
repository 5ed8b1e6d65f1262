"""Point 4: ``via: iam-user-policy`` only gives keys to users ppipe created, in the organiser's account.

Against moto with IAM enforced: an existing user (an admin without keys) is an error naming
the user and gets no key; a revoke deletes the key ppipe made once the user has no ppipe
access left; a foreign-account ARN and an ARN with a path are refused, never rewritten.
"""

from __future__ import annotations

import pytest

from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError, SpecError
from ppipe.destinations.s3.spec import S3Destination
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.conftest import REGION, fresh_bucket


def _destination(endpoint: str, bucket: str, challenge: str = "alpha") -> S3Bucket:
    destination = S3Bucket(S3Destination(bucket=bucket, endpoint_url=endpoint, region=REGION), challenge)
    destination.prepare()
    return destination


def test_existing_user_gets_no_key_and_is_named(organiser):
    destination = _destination(organiser.endpoint, fresh_bucket())
    with pytest.raises(DestinationError, match="IAM user root-ish-admin .*not created by ppipe"):
        destination.grant("root-ish-admin", via="iam-user-policy")
    iam = organiser("iam")
    assert iam.list_access_keys(UserName="root-ish-admin")["AccessKeyMetadata"] == []
    assert iam.list_user_policies(UserName="root-ish-admin")["PolicyNames"] == []


def test_revoke_deletes_the_key_ppipe_made(organiser):
    bucket = fresh_bucket()
    alpha, beta = _destination(organiser.endpoint, bucket, "alpha"), _destination(organiser.endpoint, bucket, "beta")
    made = alpha.grant("carol", via="iam-user-policy").credentials_file
    beta.grant("carol", via="iam-user-policy")
    iam = organiser("iam")
    assert len(iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]) == 1
    alpha.revoke("carol", via="iam-user-policy")  # beta's access remains: so does the key
    assert len(iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]) == 1
    beta.revoke("carol", via="iam-user-policy")
    assert iam.list_access_keys(UserName="carol")["AccessKeyMetadata"] == []
    assert not made.exists()


def test_foreign_account_arn_is_refused(organiser):
    destination = _destination(organiser.endpoint, fresh_bucket())
    with pytest.raises(DestinationError, match="account 999999999999 .*not the organiser's account 123456789012"):
        destination.grant("arn:aws:iam::999999999999:user/amy", via="iam-user-policy")
    users = [u["UserName"] for u in organiser("iam").list_users()["Users"]]
    assert "amy" not in users


def test_arn_with_a_path_is_refused_at_create(tmp_path):
    spec = {
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [{"kind": "s3", "bucket": "ppipe-alpha"}],
        "grants": [{"service": "s3", "via": "iam-user-policy", "identity": "arn:aws:iam::123456789012:user/students/amy"}],
    }
    with pytest.raises(SpecError, match="grants.*path /students/.*not supported"):
        parse_challenge(spec)
