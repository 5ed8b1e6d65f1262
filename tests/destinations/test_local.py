"""Local folder specifics: atomic upload, folders made on demand, an unusable path."""

from __future__ import annotations

import stat

import pytest

from ppipe.destinations.local.client import LocalFolder
from ppipe.errors import DestinationError
from ppipe.challenge.spec import LocalDestination


def test_missing_folders_are_made(tmp_path):
    destination = LocalFolder(LocalDestination(path=tmp_path / "absent" / "deeper"), "alpha")
    destination.prepare()
    assert (tmp_path / "absent" / "deeper" / "alpha").is_dir()


def test_a_path_through_a_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "blocker").write_text("not a folder")
    destination = LocalFolder(LocalDestination(path=tmp_path / "blocker" / "out"), "alpha")
    with pytest.raises(DestinationError, match=r"cannot create the challenge folder: Not a directory") as caught:
        destination.prepare()
    assert str(tmp_path / "blocker") in str(caught.value) and "\n" not in str(caught.value)


def test_upload_leaves_only_the_release(tmp_path):
    destination = LocalFolder(LocalDestination(path=tmp_path, folder="course"), "alpha")
    destination.prepare()
    source = tmp_path / "source.csv"
    source.write_bytes(b"a\n1\n")
    assert destination.upload(source, "release_0.csv") == f"{tmp_path}/course/release_0.csv"
    assert [p.name for p in (tmp_path / "course").iterdir()] == ["release_0.csv"]
    assert stat.S_IMODE((tmp_path / "course" / "release_0.csv").stat().st_mode) == 0o644
    assert destination.read("release_0.csv") == b"a\n1\n"


def test_failed_upload_leaves_no_partial_file(tmp_path):
    destination = LocalFolder(LocalDestination(path=tmp_path), "alpha")
    destination.prepare()
    with pytest.raises(DestinationError, match="cannot store release_0.csv"):
        destination.upload(tmp_path / "missing.csv", "release_0.csv")
    assert list((tmp_path / "alpha").iterdir()) == []
