"""Point 11: a predictable bucket name taken by someone else is never used.

moto with IAM enforced and cross-account access allowed plays an attacker who created
``ppipe-<name>`` first in another account and left it open: ppipe must refuse it rather than
deliver (and grant) there. On GCS the emulator gives its buckets one project number: a spec
whose ``project_number`` differs plays the organiser of another project than the bucket's.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ppipe import api, delivery
from ppipe.challenge.specfile import parse_challenge
from ppipe.ledger import Ledger
from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError
from ppipe.destinations.s3.spec import S3Destination
from tests.hardening.conftest import REGION, client, fresh_bucket
from tests.support.helpers import write_csv
from tests.support.servers import post

ATTACKER = "111111111111"


def test_an_s3_bucket_of_another_account_is_refused(organiser, tmp_path):
    bucket = fresh_bucket()
    post(f"{organiser.endpoint}/moto-api/reset-auth", b"1000000")
    client("s3", organiser.endpoint, account=ATTACKER).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    post(f"{organiser.endpoint}/moto-api/reset-auth", b"0")
    destination = S3Bucket(S3Destination(bucket=bucket, endpoint_url=organiser.endpoint, region=REGION), "alpha")
    with pytest.raises(DestinationError, match=f"bucket {bucket} belongs to another account"):
        destination.prepare()


def test_an_s3_bucket_of_ours_is_used(organiser):
    bucket = fresh_bucket()
    organiser("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    S3Bucket(S3Destination(bucket=bucket, endpoint_url=organiser.endpoint, region=REGION), "alpha").prepare()


def _gcs_project_of(endpoint: str, bucket: str) -> str:
    """The project number the emulator gives ``bucket`` (as GCS would in its metadata)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    made = storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})
    return str(made.get_bucket(bucket).project_number)


def _deliver_to_gcs(tmp_path, endpoint: str, bucket: str, **fields):
    write_csv(tmp_path / "data.csv", 10)
    api.create(parse_challenge({
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [{"kind": "gcs", "bucket": bucket, "endpoint_url": endpoint, **fields}],
    }))
    return delivery.dispatch(Ledger(), "alpha", now=datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))


def _objects(endpoint: str, bucket: str) -> list[str]:
    import gcsfs

    return gcsfs.GCSFileSystem(endpoint_url=endpoint, token="anon", project="test").find(bucket)


@pytest.mark.parametrize("by_number", [True, False], ids=["project_number", "project-buckets"])
def test_a_gcs_bucket_of_the_organisers_project_is_used(tmp_path, ppipe_home, gcs_server, gcs_bucket, by_number):
    ours = {"project_number": _gcs_project_of(gcs_server, gcs_bucket)} if by_number else {}
    report = _deliver_to_gcs(tmp_path, gcs_server, gcs_bucket, project="test", **ours)
    assert [o.status for o in report.outcomes] == ["delivered"], report.outcomes
    assert _objects(gcs_server, gcs_bucket)


def test_a_gcs_bucket_of_another_project_is_refused_and_nothing_is_uploaded(tmp_path, ppipe_home, gcs_server, gcs_bucket):
    theirs = _gcs_project_of(gcs_server, gcs_bucket)
    ours = str(int(theirs) + 1)
    report = _deliver_to_gcs(tmp_path, gcs_server, gcs_bucket, project="test", project_number=ours)
    [outcome] = report.outcomes
    assert outcome.status == "failed"
    assert outcome.error.endswith(f"bucket {gcs_bucket} belongs to project {theirs}, not the organiser's project "
                                  f"{ours} (project_number): choose another 'bucket'"), outcome.error
    assert "\n" not in outcome.error
    assert _objects(gcs_server, gcs_bucket) == []


def test_a_gcs_project_number_is_digits(tmp_path):
    from ppipe.destinations.gcs.spec import GcsDestination

    with pytest.raises(ValueError, match="project's number"):
        GcsDestination(bucket="ppipe-alpha", project_number="my-project")
    assert GcsDestination(bucket="ppipe-alpha", project_number=1234).project_number == "1234"
