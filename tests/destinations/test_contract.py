"""The one contract every destination kind passes, each against a real (loopback) server."""

from __future__ import annotations

import pytest

from ppipe.durable import file_sha256
from ppipe.errors import DestinationError
from tests.support.cases import DestinationCase

CASES = ["local_case", "s3_case", "gcs_case", "drive_case"]


@pytest.fixture(params=CASES)
def case(request) -> DestinationCase:
    try:
        return request.getfixturevalue(request.param)
    except pytest.FixtureLookupError:
        pytest.skip(f"fixture {request.param} is not defined (its plugin module is not loaded yet)")


@pytest.fixture
def release(tmp_path):
    path = tmp_path / "release_0.csv"
    path.write_bytes(b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000)))
    return path


@pytest.fixture
def other_release(tmp_path):
    path = tmp_path / "other.csv"
    path.write_bytes(b"id,value\n1,changed\n")
    return path


def prepared(case: DestinationCase, challenge: str = "contract"):
    destination = case.make(challenge)
    destination.prepare()
    return destination


def test_prepare_is_idempotent(case):
    destination = prepared(case)
    destination.prepare()
    assert destination.stat("release_0.csv") is None


def test_upload_returns_uri_and_stat_reads_real_bytes(case, release):
    destination = prepared(case)
    uri = destination.upload(release, "release_0.csv")
    assert uri == destination.uri_of("release_0.csv")
    assert uri.startswith(destination.uri + "/")
    size, digest = file_sha256(release)
    info = destination.stat("release_0.csv")
    assert (info.size, info.sha256) == (size, digest)


def test_exists_checks_name_and_content(case, release):
    destination = prepared(case)
    _, digest = file_sha256(release)
    assert not destination.exists("release_0.csv", digest)
    destination.upload(release, "release_0.csv")
    assert destination.exists("release_0.csv", digest)
    assert not destination.exists("release_0.csv", "0" * 64)
    assert not destination.exists("release_1.csv", digest)


def test_reupload_replaces(case, release, other_release):
    destination = prepared(case)
    destination.upload(release, "release_0.csv")
    destination.upload(other_release, "release_0.csv")
    size, digest = file_sha256(other_release)
    assert destination.stat("release_0.csv") == type(destination.stat("release_0.csv"))(size, digest)
    assert destination.exists("release_0.csv", digest)
    assert not destination.exists("release_0.csv", file_sha256(release)[1])
    # No duplicate: removing the name once leaves nothing behind under it.
    destination.delete("release_0.csv")
    assert destination.stat("release_0.csv") is None


def test_delete_is_idempotent(case, release):
    destination = prepared(case)
    destination.upload(release, "release_0.csv")
    destination.delete("release_0.csv")
    destination.delete("release_0.csv")
    assert destination.stat("release_0.csv") is None
    assert not destination.exists("release_0.csv", file_sha256(release)[1])


def test_grant_then_revoke_is_idempotent(case):
    destination = prepared(case)
    if case.kind == "local":
        with pytest.raises(DestinationError, match="no access control"):
            destination.grant("someone")
        with pytest.raises(DestinationError, match="no access control"):
            destination.revoke("someone")
        return
    first = destination.grant(case.identity)
    again = destination.grant(case.identity)
    assert first.description and again.description
    destination.revoke(case.identity)
    destination.revoke(case.identity)


def test_uri_is_the_challenge_location(case):
    destination = case.make("located")
    assert destination.uri == destination.spec.location("located")
    assert destination.uri_of("release_3.csv") == f"{destination.spec.location('located')}/release_3.csv"


def test_two_challenges_do_not_see_each_other(case, release, other_release):
    first, second = prepared(case, "first"), prepared(case, "second")
    first.upload(release, "release_0.csv")
    assert second.stat("release_0.csv") is None
    assert not second.exists("release_0.csv", file_sha256(release)[1])
    second.upload(other_release, "release_0.csv")
    assert first.stat("release_0.csv").sha256 == file_sha256(release)[1]
    second.delete("release_0.csv")
    assert first.stat("release_0.csv") is not None
