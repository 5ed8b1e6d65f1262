"""GCS specifics on the emulator: bucket creation, checksum metadata, credentials, errors."""

from __future__ import annotations

import time
import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from ppipe.durable import file_sha256
from ppipe.destinations.gcs.client import GcsBucket
from ppipe.errors import DestinationError
from ppipe.challenge.spec import GcsDestination
from tests.support.servers import free_port


def _destination(endpoint, challenge="alpha", **options) -> GcsBucket:
    options.setdefault("bucket", f"ppipe-g-{uuid.uuid4().hex[:10]}")
    return GcsBucket(GcsDestination(endpoint_url=endpoint, **options), challenge)


def test_missing_bucket_is_created(gcs_server):
    # The emulator ignores location and iamConfiguration on insert, so only existence is checked.
    destination = _destination(gcs_server, project="test", location="EU")
    destination.prepare()
    destination.prepare()
    raw = storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_server})
    assert raw.lookup_bucket(destination.bucket) is not None


def test_checksum_is_stored_as_metadata(gcs_server, tmp_path):
    destination = _destination(gcs_server, project="test")
    destination.prepare()
    release = tmp_path / "r.csv"
    release.write_bytes(b"a,b\n1,2\n")
    destination.upload(release, "release_0.csv")
    assert destination.fs.info(f"{destination.bucket}/alpha/release_0.csv")["metadata"] == {"sha256": file_sha256(release)[1]}
    assert destination.read("release_0.csv") == release.read_bytes()


def test_missing_bucket_without_project_says_so(gcs_server):
    with pytest.raises(DestinationError, match="set 'project'"):
        _destination(gcs_server).prepare()


def test_unreachable_endpoint_fails_fast(monkeypatch):
    monkeypatch.setenv("PPIPE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("PPIPE_RETRY_DEADLINE", "1")
    destination = _destination(f"http://127.0.0.1:{free_port()}", project="test")
    started = time.monotonic()
    with pytest.raises(DestinationError, match="cannot reach http://127.0.0.1"):
        destination.prepare()
    assert time.monotonic() - started < 10


def test_no_google_credentials_lists_every_place_looked_at(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud application-default file here
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # do not wait for a metadata server
    destination = GcsBucket(GcsDestination(bucket="ppipe-nowhere", project="p"), "alpha")
    with pytest.raises(DestinationError) as info:
        destination.prepare()
    assert "no Google credentials found" in str(info.value) and "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)


def test_unusable_key_file_is_named_without_its_content(monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "private_key": "ppipe-FAKE-private-key"}')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    with pytest.raises(DestinationError) as info:
        GcsBucket(GcsDestination(bucket="ppipe-nowhere", project="p"), "alpha").prepare()
    assert str(key) in str(info.value) and "ppipe-FAKE-private-key" not in str(info.value)


def test_missing_bucket_is_named(gcs_server, tmp_path):
    release = tmp_path / "r.csv"
    release.write_bytes(b"a\n")
    destination = _destination(gcs_server, project="test")
    with pytest.raises(DestinationError, match=f"bucket {destination.bucket} does not exist"):
        destination.upload(release, "release_0.csv")
