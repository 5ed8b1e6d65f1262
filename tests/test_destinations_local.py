"""Local folder specifics: atomic upload, missing parent folder."""

from __future__ import annotations

import stat

import pytest

from ppipe.destinations.local import LocalFolder
from ppipe.errors import DestinationError
from ppipe.model import LocalDestination


def test_missing_parent_folder_is_an_error(tmp_path):
    destination = LocalFolder(LocalDestination(path=tmp_path / "absent"), "alpha")
    with pytest.raises(DestinationError, match="does not exist"):
        destination.prepare()


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
