"""Types applied while staging: inferred on a sample, checked over every row in the same pass."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from ppipe.data import column_types, release_files, shuffle, staging
from ppipe.errors import SourceError
from tests.support.data_helpers import make_challenge


def deliver(challenge):
    staged = staging.stage(challenge)
    return staged, [release_files.write_release(challenge, staged, r) for r in challenge.plan(staged.rows)]


def write_columns(path, columns: dict[str, list[str]]):
    names = list(columns)
    lines = [",".join(names)] + [",".join(row) for row in zip(*columns.values())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_sample(monkeypatch):
    monkeypatch.setattr(column_types, "SAMPLE_ROWS", 3)


def test_the_staged_copy_holds_the_delivered_types(tmp_path):
    path = write_columns(tmp_path / "d.csv", {"n": ["1", "2", "3"], "x": ["0.5", "", "2"], "s": ["a", "b", "c"]})
    staged = staging.stage(make_challenge(str(path), releases=1, output={"format": "parquet"}))
    schema = staged.scan().collect_schema()
    assert (schema["n"], schema["x"], schema["s"]) == (pl.Int64, pl.Float64, pl.String)


def test_a_sample_that_misleads_is_inferred_again_over_every_row(tmp_path, small_sample):
    path = write_columns(tmp_path / "d.csv", {
        "late_text": ["1", "2", "3", "4", "x"],       # int in the sample, text later
        "late_value": ["", "", "", "", "7"],          # nothing in the sample, an int later
        "late_float": ["1", "2", "3", "4.5", "5"],    # int in the sample, float later
        "late_zero": ["1", "2", "3", "007", "5"],     # int in the sample, an identifier later
    })
    staged, saved = deliver(make_challenge(str(path), releases=1, output={"format": "parquet"}))
    assert staged.columns == {"late_text": "string", "late_value": "int", "late_float": "float", "late_zero": "string"}
    frame = pl.read_parquet(saved[0].path)
    assert frame["late_text"].to_list() == ["1", "2", "3", "4", "x"]
    assert frame["late_value"].to_list() == [None, None, None, None, 7]
    assert frame["late_float"].to_list() == [1.0, 2.0, 3.0, 4.5, 5.0]
    assert frame["late_zero"].to_list() == ["1", "2", "3", "007", "5"]


def test_an_empty_column_stays_text(tmp_path, small_sample):
    path = write_columns(tmp_path / "d.csv", {"a": ["1", "2", "3", "4"], "empty": ["", "", "", ""]})
    staged, saved = deliver(make_challenge(str(path), releases=1, output={"format": "ndjson"}))
    assert staged.columns == {"a": "int", "empty": "string"}


def test_a_declared_type_misfit_after_the_sample_is_refused(tmp_path, small_sample):
    path = write_columns(tmp_path / "d.csv", {"a": ["1", "2", "3", "4", "x", "y"]})
    challenge = make_challenge({"url": str(path), "column_types": {"a": "int"}}, releases=1, output={"format": "parquet"})
    with pytest.raises(SourceError, match=r"a \(2 values are not int\)"):
        staging.stage(challenge)
    assert staging.load_staged(challenge) is None


def test_a_typed_source_declared_type_is_applied_when_staging(tmp_path):
    path = tmp_path / "d.parquet"
    pl.DataFrame({"id": [1, 2, 3], "v": ["1.5", "2", None]}).write_parquet(path)
    challenge = make_challenge({"url": str(path), "column_types": {"v": "float", "id": "string"}},
                               releases=1, output={"format": "parquet", "shuffle": True, "seed": 2})
    staged, saved = deliver(challenge)
    frame = pl.read_parquet(saved[0].path)
    assert frame.schema["v"] == pl.Float64 and frame.schema["id"] == pl.String
    assert sorted(frame.rows()) == [("1", 1.5), ("2", 2.0), ("3", None)]


def bucket_shuffle_order(n_rows, seed, bucket_rows, row_group=staging.ROW_GROUP):
    """The order shuffled copies have always had: each row to a random bucket (keys drawn per
    row group), then each non-empty bucket permuted, buckets in order."""
    n_buckets = min(shuffle.SHUFFLE_MAX_BUCKETS, max(1, -(-n_rows // bucket_rows)))
    rng = np.random.default_rng(seed)
    buckets = [[] for _ in range(n_buckets)]
    for start in range(0, n_rows, row_group):
        for offset, key in enumerate(rng.integers(0, n_buckets, min(row_group, n_rows - start))):
            buckets[key].append(start + offset)
    return [row for bucket in buckets if bucket for row in np.array(bucket)[rng.permutation(len(bucket))]]


@pytest.mark.parametrize("in_memory", [True, False], ids=["in memory", "two passes"])
@pytest.mark.parametrize("n_rows, bucket_rows", [(2000, 300), (70_000, 5000)])
def test_a_seed_gives_the_order_it_always_gave(tmp_path, monkeypatch, n_rows, bucket_rows, in_memory):
    """Whether the rows fit in memory (one gather) or not (two streaming passes), the order is the one
    a seed has always given."""
    monkeypatch.setattr(shuffle, "SHUFFLE_BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr(shuffle, "SOURCE_SHARE", 100.0 if in_memory else 0.0)
    calls = []
    monkeypatch.setattr(shuffle, "_shuffle_in_memory", lambda *a, real=shuffle._shuffle_in_memory: calls.append(1) or real(*a))
    path = write_columns(tmp_path / "d.csv", {"n": [str(i) for i in range(n_rows)]})
    staged, saved = deliver(make_challenge(str(path), releases=2, output={"shuffle": True, "seed": 7, "row_id": True}))
    order = pl.concat([pl.read_csv(f.path) for f in saved])
    assert order["row_id"].to_list() == order["n"].to_list() == bucket_shuffle_order(n_rows, 7, bucket_rows)
    assert bool(calls) == in_memory
@pytest.mark.parametrize("late", ["2024-01-02T03:04:05", "2024-01-02 03:04:05.250", "2024-1-02 03:04:05"])
def test_datetimes_of_another_shape_after_the_sample_keep_their_values(tmp_path, small_sample, late):
    """Plain 'YYYY-MM-DD HH:MM:SS' in the sample takes the fast parser; any other shape later
    sends the column back to the general one, with the same values as before."""
    plain = ["2024-01-01 00:00:00", "2024-01-01 00:00:01", "2024-01-01 00:00:02", ""]
    path = write_columns(tmp_path / "d.csv", {"t": plain + [late]})
    staged, saved = deliver(make_challenge(str(path), releases=1, output={"format": "parquet"}))
    got = pl.read_parquet(saved[0].path)["t"]
    expected = pl.DataFrame({"t": plain + [late]}).select(column_types.text_to("t", "datetime")).to_series()
    assert staged.columns == {"t": "datetime"} and got.to_list() == expected.to_list()
    assert got[4] is not None


@pytest.mark.parametrize("type_name, value, expected", [
    ("int", "-7", -7), ("float", "1e3", 1000.0), ("bool", "TRUE", True), ("date", "2024-02-03", dt.date(2024, 2, 3)),
    ("datetime", "2024-02-03 04:05:06", dt.datetime(2024, 2, 3, 4, 5, 6)),
])
def test_an_empty_field_converts_to_null_whatever_the_type(tmp_path, type_name, value, expected):
    """A quoted "" (empty, not missing) and a missing field both become null in a typed column."""
    path = tmp_path / "d.csv"
    path.write_text(f'c,k\n{value},1\n"",2\n,3\n', encoding="utf-8")
    challenge = make_challenge({"url": str(path), "column_types": {"c": type_name}}, releases=1,
                               output={"format": "parquet"})
    _, saved = deliver(challenge)
    assert pl.read_parquet(saved[0].path)["c"].to_list() == [expected, None, None]


def test_rows_shuffle_in_memory_only_when_their_delivered_types_fit_beside_the_source():
    """Typed rows (8 bytes a value) take less than their text; text kept as text (16-byte views) takes
    more, and shuffles in two passes, whose memory stays bounded."""
    assert shuffle.fits_in_memory(1000, ["int", "float", "datetime"], 30_000)
    assert not shuffle.fits_in_memory(1000, ["string", "string", "string"], 30_000)
