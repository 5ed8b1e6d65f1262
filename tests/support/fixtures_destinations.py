"""Contract-test cases for the local, s3 and gcs destination kinds, on real (loopback) servers."""

from __future__ import annotations

import uuid

import pytest

from ppipe.destinations.gcs.client import GcsBucket
from ppipe.destinations.local.client import LocalFolder
from ppipe.destinations.s3.client import S3Bucket
from ppipe.challenge.spec import GcsDestination, LocalDestination, S3Destination
from tests.support.cases import DestinationCase


def fresh_bucket() -> str:
    return f"ppipe-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def local_case(tmp_path):
    """Challenge folders under one fresh shared folder."""
    share = tmp_path / "share"
    share.mkdir()
    spec = LocalDestination(path=share)
    return DestinationCase("local", lambda challenge: LocalFolder(spec, challenge), "")


@pytest.fixture
def s3_case(s3_server):
    """Challenge prefixes in one fresh bucket (not yet created) on the moto server."""
    spec = S3Destination(bucket=fresh_bucket(), endpoint_url=s3_server, region="eu-west-1")
    return DestinationCase("s3", lambda challenge: S3Bucket(spec, challenge), "arn:aws:iam::123456789012:user/alice")


@pytest.fixture
def gcs_case(gcs_server):
    """Challenge prefixes in one fresh bucket (not yet created) on the GCS emulator."""
    spec = GcsDestination(bucket=fresh_bucket(), endpoint_url=gcs_server, project="test", location="EU")
    return DestinationCase("gcs", lambda challenge: GcsBucket(spec, challenge), "user:alice@example.com")
