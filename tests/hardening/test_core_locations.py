"""Issue 10, point 1: a location (destination + folder/prefix) belongs to one challenge."""

from __future__ import annotations

import pytest

from tests.hardening.core_helpers import assert_one_line_error, ppipe, spec, write_spec


def _two_specs(tmp_path, destination: dict):
    first = write_spec(tmp_path, spec(tmp_path, "chal-a", destinations=[destination]))
    second = write_spec(tmp_path, spec(tmp_path, "chal-b", destinations=[destination]))
    return first, second


LOCATIONS = {
    "local-folder": lambda tmp, *_: {"kind": "local", "path": str(tmp / "out"), "folder": "shared"},
    "s3-prefix": lambda tmp, endpoint: {"kind": "s3", "bucket": "ppipe-shared", "prefix": "shared",
                                        "endpoint_url": endpoint},
}


@pytest.mark.parametrize("where", sorted(LOCATIONS))
def test_a_second_challenge_claiming_a_location_is_refused_naming_the_owner(tmp_path, where, request):
    destination = (LOCATIONS[where](tmp_path, request.getfixturevalue("s3_server")) if where == "s3-prefix"
                   else LOCATIONS[where](tmp_path))
    first, second = _two_specs(tmp_path, destination)
    created = ppipe("create", str(first))
    assert created.returncode == 0, created.stderr
    refused = ppipe("create", str(second))
    assert_one_line_error(refused, "chal-a", "shared")
    listed = ppipe("list", "--json")
    assert '"chal-b"' not in listed.stdout
    assert not (tmp_path / "ppipe-home" / "staged" / "chal-b").exists()


def test_a_location_is_free_again_once_its_owner_is_deleted(tmp_path):
    first, second = _two_specs(tmp_path, LOCATIONS["local-folder"](tmp_path))
    assert ppipe("create", str(first)).returncode == 0
    assert ppipe("delete", "chal-a", "--yes").returncode == 0
    again = ppipe("create", str(second))
    assert again.returncode == 0, again.stderr


def test_the_same_folder_written_two_ways_is_the_same_location(tmp_path):
    (tmp_path / "out").mkdir()
    first = write_spec(tmp_path, spec(tmp_path, "chal-a", destinations=[
        {"kind": "local", "path": str(tmp_path / "out"), "folder": "shared"}]))
    second = write_spec(tmp_path, spec(tmp_path, "chal-b", destinations=[
        {"kind": "local", "path": str(tmp_path / "out" / "." / "sub" / ".."), "folder": "shared"}]))
    assert ppipe("create", str(first)).returncode == 0
    assert_one_line_error(ppipe("create", str(second)), "chal-a")


def test_different_folders_in_one_place_do_not_conflict(tmp_path):
    first = write_spec(tmp_path, spec(tmp_path, "chal-a"))   # folder defaults to the challenge name
    second = write_spec(tmp_path, spec(tmp_path, "chal-b"))
    assert ppipe("create", str(first)).returncode == 0
    result = ppipe("create", str(second))
    assert result.returncode == 0, result.stderr
