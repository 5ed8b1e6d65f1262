"""Point 11: a predictable bucket name taken by someone else is never used.

moto with IAM enforced and cross-account access allowed plays an attacker who created
``ppipe-<name>`` first in another account and left it open: ppipe must refuse it rather than
deliver (and grant) there. (GCS is not covered: gcp-storage-emulator gives every bucket the
same project number, so a bucket of another project cannot be made there.)
"""

from __future__ import annotations

import pytest

from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError
from ppipe.destinations.s3.spec import S3Destination
from tests.hardening.conftest import REGION, client, fresh_bucket
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
