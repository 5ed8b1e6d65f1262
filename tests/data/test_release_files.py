"""Release files: slices of the staged copy, written atomically, with checksums and a manifest."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from ppipe.data.manifest import write_manifest
from ppipe.data import release_files, staged_parquet, staged_text, staging
from ppipe import settings
from ppipe.errors import SourceError
from tests.support.data_helpers import make_challenge


@pytest.fixture
def source_csv(tmp_path):
    path = tmp_path / "d.csv"
    pl.DataFrame({"id": [f"{i:04d}" for i in range(1000)], "x": [str(i / 4) for i in range(1000)]}).write_csv(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "ndjson"])
def test_every_output_format(source_csv, fmt):
    challenge = make_challenge(str(source_csv), releases=4, output={"format": fmt, "row_id": True})
    staged = staging.stage(challenge)
    releases = challenge.plan(staged.rows)
    frames = []
    for release in releases:
        saved = release_files.write_release(challenge, staged, release)
        assert saved.path.name == challenge.release_file_name(release.index) == saved.name
        assert saved.rows == release.rows == 250
        assert saved.bytes == saved.path.stat().st_size
        assert saved.sha256 == hashlib.sha256(saved.path.read_bytes()).hexdigest()
        reader = {"csv": lambda p: pl.read_csv(p, infer_schema=False), "parquet": pl.read_parquet,
                  "json": pl.read_json, "ndjson": pl.read_ndjson}[fmt]
        frames.append(reader(saved.path))
    whole = pl.concat(frames)
    assert [str(v) for v in whole["row_id"].to_list()] == [str(i) for i in range(1000)]
    assert [f"{int(v):04d}" if fmt != "csv" else v for v in whole["id"].to_list()] == [f"{i:04d}" for i in range(1000)]
    if fmt != "csv":  # converted: "0001" keeps its zeros as a string, x is a float
        assert whole.schema["id"] == pl.String and whole.schema["x"] == pl.Float64


def test_release_names_follow_the_template(source_csv):
    challenge = make_challenge(str(source_csv), releases=2, output={"name": "{challenge}-week{index}"})
    staged = staging.stage(challenge)
    saved = release_files.write_release(challenge, staged, challenge.plan(staged.rows)[1])
    assert saved.name == "data-test-week1.csv"
    assert saved.path.parent == settings.releases_dir(challenge.name)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_failed_write_leaves_no_file(source_csv, monkeypatch, fmt):
    challenge = make_challenge(str(source_csv), releases=2, output={"format": fmt})
    staged = staging.stage(challenge)
    assert staged.kind == ("offsets" if fmt == "csv" else "parquet")
    release = challenge.plan(staged.rows)[0]

    def half_write(lf, fmt, stream):  # polars writes to the hashing stream: fails after some bytes
        stream.write(b"id,x\n0000,0.0\n")
        raise OSError("disk full")

    def half_cut(challenge, staged, ranges, out):  # the byte-range path: fails after some bytes
        out.write(b"id,x\n0000,0.0\n")
        raise OSError("disk full")

    monkeypatch.setattr(staged_parquet, "_write", half_write)
    monkeypatch.setattr(staged_text, "copy_text", half_cut)
    with pytest.raises(SourceError, match="disk full"):
        release_files.write_release(challenge, staged, release)
    assert list(settings.releases_dir(challenge.name).iterdir()) == []


def test_rewriting_a_release_gives_the_same_bytes(source_csv):
    challenge = make_challenge(str(source_csv), releases=2, output={"format": "parquet"})
    staged = staging.stage(challenge)
    release = challenge.plan(staged.rows)[1]
    assert release_files.write_release(challenge, staged, release).sha256 == \
        release_files.write_release(challenge, staged, release).sha256


def test_release_outside_the_staged_rows_is_refused(source_csv):
    challenge = make_challenge(str(source_csv), releases=2)
    staged = staging.stage(challenge)
    too_far = challenge.plan(2000)[1]
    with pytest.raises(SourceError, match="staged copy has 1000"):
        release_files.write_release(challenge, staged, too_far)


def test_manifest_lists_releases_and_column_types(source_csv):
    challenge = make_challenge(
        {"url": str(source_csv), "column_types": {"x": "string"}}, releases=2,
        output={"format": "parquet", "row_id": True},
    )
    staged = staging.stage(challenge)
    delivered = []
    for release in reversed(challenge.plan(staged.rows)):
        saved = release_files.write_release(challenge, staged, release)
        delivered.append({**release.to_json(), "sha256": saved.sha256, "bytes": saved.bytes,
                          "delivered_at": "2026-01-01T00:00:05+00:00"})
    path = write_manifest(challenge, staged, delivered)
    manifest = json.loads(path.read_text())
    assert path == settings.releases_dir(challenge.name) / "manifest.json"
    assert [r["index"] for r in manifest["releases"]] == [0, 1]
    assert manifest["releases"][0]["file"] == "release_0.parquet"
    assert manifest["releases"][1]["start"] == 500 and manifest["releases"][1]["rows"] == 500
    assert manifest["total_rows_delivered"] == 1000
    columns = {c["name"]: (c["type"], c["origin"]) for c in manifest["columns"]}
    assert columns["id"] == ("string", "inferred") and columns["x"] == ("string", "declared")
    assert columns["row_id"][0] == "int"
    assert str(source_csv) not in path.read_text()  # the organiser's storage is not shown
    assert not list(path.parent.glob(".*tmp"))
