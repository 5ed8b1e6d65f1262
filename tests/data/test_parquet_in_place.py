"""A Parquet source released from its own row groups (no copy): the releases the copying path
delivers, a change after staging reported, and the cases that still copy."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest

from ppipe import settings
from ppipe.data import parquet_in_place, release_files, staging
from ppipe.errors import SourceError
from tests.data.test_fast_path import deliver
from tests.support.data_helpers import make_challenge


def write_parquet(path, n: int, row_group: int = 1000):
    rng = np.random.default_rng(1)
    pl.DataFrame({
        "id": np.arange(n), "x": rng.normal(size=n), "s": [f"v{i % 97}" if i % 13 else None for i in range(n)],
        "d": pl.date_range(pl.date(2020, 1, 1), pl.date(2020, 1, 1), eager=True).extend_constant(None, n - 1),
    }).write_parquet(path, row_group_size=row_group)
    return path


def copied(challenge, monkeypatch):
    """The same challenge (another name) delivered from a staged copy, as before."""
    with monkeypatch.context() as patch:
        patch.setattr(parquet_in_place, "eligible", lambda _: False)
        staged, saved = deliver(challenge.model_copy(update={"name": "copied"}))
    assert staged.kind == "parquet"
    return saved


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson", "json"])
@pytest.mark.parametrize("row_id", [False, True])
def test_releases_are_those_of_the_copy(tmp_path, monkeypatch, fmt, row_id):
    path = write_parquet(tmp_path / "d.parquet", 5000)
    challenge = make_challenge(str(path), releases=3, output={"format": fmt, "row_id": row_id})
    staged, saved = deliver(challenge)
    assert staged.kind == "parquet_source" and staged.rows == 5000 and staged.path == path.resolve()
    assert set(staged.types_origin.values()) == {"source"}
    assert sorted(p.name for p in settings.staging_dir(challenge.name).rglob("*") if p.is_file()) == [
        "blocks.crc32", "staged.json"]  # no copy of the data
    assert [f.path.read_bytes() for f in saved] == [f.path.read_bytes() for f in copied(challenge, monkeypatch)]
    assert staging.stage(challenge) == staged  # reloaded as it was


def test_a_change_after_staging_is_reported_not_mixed(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", 400_000, row_group=50_000)  # several MiB: many blocks
    challenge = make_challenge(str(path), releases=4)
    staged = staging.stage(challenge)
    releases = challenge.plan(staged.rows)
    release_files.write_release(challenge, staged, releases[0])
    # one byte changed in the middle, size and modification time kept: only the block CRCs see it
    info = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    staging.check_source_unchanged(challenge)  # the fingerprint did not notice
    with pytest.raises(SourceError, match="changed since it was staged"):
        for release in releases[1:]:
            release_files.write_release(challenge, staged, release)
    path.write_bytes(b"PAR1")  # an ordinary change: the fingerprint
    with pytest.raises(SourceError, match="changed since it was staged"):
        release_files.write_release(challenge, staged, releases[0])


@pytest.mark.parametrize(
    "output, source_extra, max_group",
    [({"shuffle": True, "seed": 2}, {}, None), ({}, {"column_types": {"x": "string"}}, None), ({}, {}, 999)],
    ids=["shuffled", "declared-types", "row-groups-too-large"],
)
def test_the_cases_that_still_copy(tmp_path, monkeypatch, output, source_extra, max_group):
    if max_group:
        monkeypatch.setattr(parquet_in_place, "MAX_ROW_GROUP", max_group)
    path = write_parquet(tmp_path / "d.parquet", 3000)
    staged, saved = deliver(make_challenge({"url": str(path), **source_extra}, releases=2, output=output))
    assert staged.kind == "parquet" and staged.rows == 3000
    assert sum(pl.read_csv(f.path).height for f in saved) == 3000


def test_a_corrupt_parquet_is_refused_at_staging(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", 20_000, row_group=5000)
    data = bytearray(path.read_bytes())
    data[len(data) // 3:len(data) // 2] = bytes(len(data) // 2 - len(data) // 3)  # pages zeroed, footer intact
    path.write_bytes(bytes(data))
    challenge = make_challenge(str(path), releases=2)
    with pytest.raises(SourceError, match="cannot stage"):
        staging.stage(challenge)
    assert staging.load_staged(challenge) is None
