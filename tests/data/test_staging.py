"""Staging: one read of the source into Parquet; reuse, change detection, shuffle, nothing half-written."""

from __future__ import annotations

import os

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from ppipe.data import release_files, shuffle, staging
from ppipe import settings
from ppipe.errors import SourceError
from tests.support.data_helpers import csv_rows, make_challenge


def write_numbered_csv(path, n):
    pl.DataFrame({"n": [f"{i:06d}" for i in range(n)], "sq": [str(i * i) for i in range(n)]}).write_csv(path)
    return path


def delivered_rows(challenge, n_rows):
    """Rows of all releases, in release order, parsed as strings (header dropped)."""
    staged = staging.stage(challenge)
    rows = []
    for release in challenge.plan(n_rows):
        rows += csv_rows(release_files.write_release(challenge, staged, release).path)[1:]
    return rows


def test_stage_then_reuse_without_rereading(tmp_path):
    challenge = make_challenge(str(write_numbered_csv(tmp_path / "d.csv", 100)))
    first = staging.stage(challenge)
    assert first.rows == 100 and first.path.is_file()
    mtime = first.path.stat().st_mtime_ns
    again = staging.stage(challenge)
    assert again == first and again.path.stat().st_mtime_ns == mtime
    assert first.source_sha256 and len(first.source_sha256) == 64


def test_changed_source_is_detected(tmp_path):
    path = write_numbered_csv(tmp_path / "d.csv", 100)
    challenge = make_challenge(str(path))
    staging.stage(challenge)
    staging.check_source_unchanged(challenge)  # unchanged: no error
    write_numbered_csv(path, 101)
    with pytest.raises(SourceError, match="changed since it was staged"):
        staging.check_source_unchanged(challenge)
    with pytest.raises(SourceError, match="changed since it was staged"):
        staging.stage(challenge)
    path.unlink()
    with pytest.raises(SourceError, match="not found"):
        staging.check_source_unchanged(challenge)


def test_never_staged_is_reported(tmp_path):
    challenge = make_challenge(str(write_numbered_csv(tmp_path / "d.csv", 10)))
    with pytest.raises(SourceError, match="not been staged"):
        staging.check_source_unchanged(challenge)


@pytest.mark.parametrize(
    "content, problem",
    [(b"a,b\n1,2\n3,4,5\n", "ragged"), (b"a,b\n\xff\xfe,1\n", "UTF-8"), (b"", "empty"), (b"a,b\n", "no data rows")],
)
def test_bad_csv_leaves_nothing_staged(tmp_path, content, problem):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    challenge = make_challenge(str(path))
    with pytest.raises(SourceError, match=problem) as info:
        staging.stage(challenge)
    assert "\n" not in str(info.value)
    folder = settings.staging_dir(challenge.name)
    assert not folder.exists() or os.listdir(folder) == []
    assert staging.load_staged(challenge) is None


def test_row_id_column_clash_is_reported(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("row_id,x\n1,2\n")
    with pytest.raises(SourceError, match="row_id"):
        staging.stage(make_challenge(str(path), releases=1, output={"row_id": True}))


def test_declared_type_that_does_not_fit_is_reported_at_staging(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    challenge = make_challenge({"url": str(path), "column_types": {"b": "int"}}, releases=1, output={"format": "parquet"})
    with pytest.raises(SourceError, match="b \\(2 values are not int\\)"):
        staging.stage(challenge)


def test_shuffle_is_a_seeded_permutation_across_buckets(tmp_path, monkeypatch):
    monkeypatch.setattr(shuffle, "SHUFFLE_BUCKET_ROWS", 300)  # force several buckets
    path = write_numbered_csv(tmp_path / "d.csv", 2000)
    source_rows = csv_rows(path)[1:]

    def shuffled(name, seed):
        return delivered_rows(make_challenge(str(path), releases=4, name=name, output={"shuffle": True, "seed": seed}), 2000)

    first, same, other = shuffled("a", 7), shuffled("b", 7), shuffled("c", 8)
    assert first == same != other
    assert first != source_rows and sorted(first) == sorted(source_rows)


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_shuffle_keeps_every_source_column_whatever_its_name(tmp_path, monkeypatch, in_memory):
    """Pass 1 of the two-pass shuffle named its bucket key 'b' and dropped it from the parts,
    and with it a source column of that name."""
    monkeypatch.setattr(staging, "fits_in_memory", lambda *args: in_memory)
    path = tmp_path / "d.csv"
    pl.DataFrame({"a": [str(i) for i in range(300)], "b": [f"b{i}" for i in range(300)]}).write_csv(path)
    challenge = make_challenge(str(path), releases=3, output={"shuffle": True, "seed": 3})
    rows = delivered_rows(challenge, 300)
    assert sorted(rows) == sorted(csv_rows(path)[1:])
    assert all(b == f"b{a}" for a, b in rows)


def test_a_column_with_the_reserved_prefix_is_refused(tmp_path):
    """ppipe's working columns while staging start with '__ppipe_': a source column of such a
    name would be overwritten or dropped, so it is refused with the rule."""
    path = tmp_path / "d.csv"
    path.write_text("a,__ppipe_dest\n1,x\n2,y\n")
    challenge = make_challenge(str(path), releases=2, output={"shuffle": True})
    with pytest.raises(SourceError, match="'__ppipe_dest': names starting with '__ppipe_' are ppipe's own"):
        staging.stage(challenge)


def test_shuffled_row_id_points_at_the_source_row(tmp_path):
    path = write_numbered_csv(tmp_path / "d.csv", 500)
    challenge = make_challenge(str(path), releases=3, output={"shuffle": True, "seed": 1, "row_id": True})
    for n, sq, row_id in delivered_rows(challenge, 500):
        assert int(n) == int(row_id) and int(sq) == int(row_id) ** 2


def test_s3_source_staged_and_released(s3_server, s3_bucket, tmp_path):
    import fsspec

    local = write_numbered_csv(tmp_path / "d.csv", 300)
    fsspec.filesystem("s3", endpoint_url=s3_server).put(str(local), f"{s3_bucket}/d.csv")
    challenge = make_challenge(
        {"url": f"s3://{s3_bucket}/d.csv", "storage_options": {"endpoint_url": s3_server}}, releases=3
    )
    assert delivered_rows(challenge, 300) == csv_rows(local)[1:]
    assert not (settings.home() / "fetched").exists() or not any((settings.home() / "fetched").rglob("data"))


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_rows=st.integers(min_value=1, max_value=400),
    weights=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=6),
    shuffle=st.booleans(),
)
def test_releases_partition_the_source(tmp_path_factory, n_rows, weights, shuffle):
    from fractions import Fraction

    if n_rows < len(weights) * 5:
        n_rows = len(weights) * 5
    folder = tmp_path_factory.mktemp("p")
    os.environ["PPIPE_HOME"] = str(folder / "home")
    path = write_numbered_csv(folder / "d.csv", n_rows)
    proportions = [Fraction(w, sum(weights)) for w in weights]
    challenge = make_challenge(str(path), releases=[str(p) for p in proportions], output={"shuffle": shuffle, "seed": 3})
    got = delivered_rows(challenge, n_rows)
    expected = csv_rows(path)[1:]
    assert len(got) == n_rows
    assert (sorted(got) if shuffle else got) == expected
