"""Issue 10, point 16: what can be checked at ``create`` is checked there, not days later at delivery."""

from __future__ import annotations

import os

import polars as pl
import pytest

from tests.hardening.core_helpers import assert_one_line_error, ppipe, spec, write_spec
from tests.support.servers import free_port

IS_ROOT = os.geteuid() == 0


def _create(tmp_path, **overrides):
    return ppipe("create", str(write_spec(tmp_path, spec(tmp_path, **overrides))))


def test_a_local_destination_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    result = _create(tmp_path, destinations=[{"kind": "local", "path": str(tmp_path / "out")}])
    assert_one_line_error(result, str(tmp_path / "out"), "not a folder")
    assert not (tmp_path / "ppipe-home" / "staged" / "chal-a").exists()


@pytest.mark.parametrize("path", ["/proc/ppipe-out", "/sys/ppipe-out"])
def test_a_local_destination_that_cannot_be_written_is_refused(tmp_path, path):
    result = _create(tmp_path, destinations=[{"kind": "local", "path": path}])
    assert_one_line_error(result, path, "writ")


@pytest.mark.parametrize("command", ["plan", "create"])
def test_a_home_of_an_unknown_user_is_refused_in_one_line(tmp_path, command):
    path = write_spec(tmp_path, spec(tmp_path, destinations=[{"kind": "local", "path": "~nosuchuser/out"}]))
    assert_one_line_error(ppipe(command, str(path)), "~nosuchuser")


def test_a_nested_parquet_column_released_as_csv_is_refused_naming_it(tmp_path):
    source = tmp_path / "nested.parquet"
    pl.DataFrame({"id": list(range(30)), "pos": [{"x": i, "y": -i} for i in range(30)]}).write_parquet(source)
    result = _create(tmp_path, source=str(source), output={"format": "csv"})
    assert_one_line_error(result, "pos", "csv")
    assert not (tmp_path / "ppipe-home" / "staged" / "chal-a").exists()


def test_a_refused_connection_is_not_reported_as_not_found(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/flights.csv"  # nothing listens there
    line = assert_one_line_error(_create(tmp_path, source=url), "127.0.0.1")
    assert "not found" not in line.lower() and "does not exist" not in line.lower(), line
    assert "connect" in line.lower() or "refused" in line.lower(), line
