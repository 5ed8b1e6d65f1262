"""Credentials from a Prefect block, against a real (temporary) Prefect server."""

from __future__ import annotations

import logging
import uuid

import pytest

from ppipe.orchestration import blocks
from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError
from ppipe.challenge.spec import S3Destination

FAKE_SECRET = "ppipe-FAKE-block-secret-41d2"

pytestmark = pytest.mark.slow  # uses Prefect's test harness (a server; about 20 s to start)


def test_s3_keys_from_a_prefect_block(prefect_harness, s3_server, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    block = blocks.aws_block_class()(aws_access_key_id="AKIABLOCKTEST", aws_secret_access_key=FAKE_SECRET)
    block.save("course-keys", overwrite=True)

    spec = S3Destination(bucket=f"ppipe-b-{uuid.uuid4().hex[:8]}", endpoint_url=s3_server, region="eu-west-1",
                         credentials_block="course-keys")
    destination = S3Bucket(spec, "alpha")
    destination.prepare()
    release = tmp_path / "r.csv"
    release.write_bytes(b"a\n1\n")
    destination.upload(release, "release_0.csv")
    assert destination.access.key == "AKIABLOCKTEST" and "course-keys" in destination.access.source
    assert FAKE_SECRET not in repr(destination.access) and FAKE_SECRET not in caplog.text
    assert FAKE_SECRET not in str(spec.model_dump())

    missing = S3Bucket(spec.model_copy(update={"credentials_block": "nope"}), "alpha")
    with pytest.raises(DestinationError, match="cannot load Prefect block 'nope'"):
        missing.prepare()
