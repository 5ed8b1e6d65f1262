"""Issue 10, point 3: the same source gets the same verdict whatever the output format."""

from __future__ import annotations

import pytest

from tests.hardening.core_helpers import assert_one_line_error, ppipe, spec, write_spec

OUTPUTS = [
    {"format": "csv"}, {"format": "parquet"}, {"format": "json"}, {"format": "ndjson"},
    {"format": "csv", "shuffle": True}, {"format": "parquet", "row_id": True},
]
IDS = ["csv", "parquet", "json", "ndjson", "csv-shuffled", "parquet-row-id"]


def _source(tmp_path, lines: list[str]):
    path = tmp_path / "source.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _create(tmp_path, source, output):
    result = ppipe("create", str(write_spec(tmp_path, spec(tmp_path, source=str(source), output=output))))
    assert not (tmp_path / "ppipe-home" / "staged" / "chal-a").exists() or result.returncode == 0
    return result


@pytest.mark.parametrize("output", OUTPUTS, ids=IDS)
def test_duplicate_header_names_are_refused_naming_the_column(tmp_path, output):
    source = _source(tmp_path, ["id,temp,temp"] + [f"{i},{i},{i}" for i in range(9)])
    assert_one_line_error(_create(tmp_path, source, output), "duplicate column name 'temp'")


@pytest.mark.parametrize("output", OUTPUTS, ids=IDS)
def test_a_ragged_row_is_refused_naming_the_row(tmp_path, output):
    rows = [f"{i},{i},{i}" for i in range(9)]
    rows[4] = "4,4"  # line 6 of the file (the header is line 1)
    source = _source(tmp_path, ["id,a,b"] + rows)
    line = assert_one_line_error(_create(tmp_path, source, output))
    assert "row" in line or "line" in line, line
    assert "6" in line or "5" in line, line
