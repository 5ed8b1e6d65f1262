"""Fidelity: a release in the source's own format carries the source's values unchanged."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from ppipe.data import release_files, staging
from tests.support.data_helpers import csv_rows, make_challenge, write_nasty_csv


def deliver(challenge):
    staged = staging.stage(challenge)
    return staged, [release_files.write_release(challenge, staged, r) for r in challenge.plan(staged.rows)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_nasty_csv_round_trips_field_by_field(tmp_path, shuffle):
    source = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(source), releases=2, output={"shuffle": shuffle, "seed": 5})
    _, saved = deliver(challenge)
    expected = csv_rows(source)
    got = []
    for f in saved:
        rows = csv_rows(f.path)
        assert rows[0] == expected[0]
        got += rows[1:]
    assert (sorted(got) if shuffle else got) == (sorted(expected[1:]) if shuffle else expected[1:])


def test_empty_and_missing_stay_apart(tmp_path):
    source = write_nasty_csv(tmp_path / "nasty.csv")
    _, saved = deliver(make_challenge(str(source), releases=1))
    text = saved[0].path.read_text(encoding="utf-8")
    assert '\n"",' in text  # row 2's quoted empty zip is still a quoted empty string
    assert "\n0,é ü 漢字 🙂,,,trailing space \n" in text  # row 3's missing fields are still nothing
    frame = pl.read_csv(saved[0].path, infer_schema=False)
    assert frame["zip"].to_list() == ["00501", "", "0", "10"]
    assert frame["amount"].to_list() == ["1.50", "-3", None, "1e3"]


def test_tsv_to_csv_keeps_values(tmp_path):
    rows = [["a", "b"], ["007", "x,y"], ["1.10", 'q"q']]
    source = tmp_path / "d.tsv"
    source.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    _, saved = deliver(make_challenge(str(source), releases=1))
    assert csv_rows(saved[0].path) == rows


def test_csv_to_parquet_infers_types_and_says_so(tmp_path):
    source = write_nasty_csv(tmp_path / "nasty.csv")
    staged, saved = deliver(make_challenge(str(source), releases=1, output={"format": "parquet"}))
    frame = pl.read_parquet(saved[0].path)
    assert staged.columns == {"zip": "string", "text": "string", "amount": "float", "day": "date", "note": "string"}
    assert set(staged.types_origin.values()) == {"inferred"}
    assert frame["zip"].to_list() == ["00501", "", "0", "10"]
    assert frame["amount"].to_list() == [1.5, -3.0, None, 1000.0]
    assert frame["day"].to_list() == [dt.date(2024, 1, 2), dt.date(2024, 2, 3), None, dt.date(2024, 12, 31)]
    assert frame["text"][1] == 'say "hi"\nnext line' and frame["note"][3] == '"'


def test_declared_types_win(tmp_path):
    source = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(
        {"url": str(source), "column_types": {"amount": "string", "day": "string"}}, releases=1,
        output={"format": "ndjson"},
    )
    staged, saved = deliver(challenge)
    assert staged.types_origin["amount"] == "declared" and staged.columns["amount"] == "string"
    records = [json.loads(line) for line in saved[0].path.read_text(encoding="utf-8").splitlines()]
    assert [r["amount"] for r in records] == ["1.50", "-3", None, "1e3"]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_sources_keep_their_values(tmp_path, fmt):
    records = [{"id": "007", "v": 1.25, "ok": True, "t": "a\nb"}, {"id": "8", "v": None, "ok": False, "t": ""}]
    source = tmp_path / f"d.{fmt}"
    source.write_text(json.dumps(records) if fmt == "json" else "".join(json.dumps(r) + "\n" for r in records))
    staged, saved = deliver(make_challenge(str(source), releases=2, output={"format": fmt}))
    assert set(staged.types_origin.values()) == {"source"}
    got = []
    for f in saved:
        text = f.path.read_text(encoding="utf-8")
        got += json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert got == records


def test_parquet_source_to_csv(tmp_path):
    source = tmp_path / "d.parquet"
    pl.DataFrame({"id": ["001", "002"], "n": [1, 2], "d": [dt.date(2024, 1, 1), None]}).write_parquet(source)
    _, saved = deliver(make_challenge(str(source), releases=1))
    assert csv_rows(saved[0].path) == [["id", "n", "d"], ["001", "1", "2024-01-01"], ["002", "2", ""]]
