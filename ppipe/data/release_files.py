"""Release files: one release's rows cut from the staged copy and saved, plus the manifest.

A source staged as a byte-offset index (``staged.kind == "offsets"``) is released as the
header bytes plus the byte range of its rows, hashed while written: the source's own lines.
A Parquet staged copy is sliced and written by polars, then its rows are counted back.

Files go to ``PPIPE_HOME/releases/<challenge>/`` (the local audit copy that destinations
upload). Every file is written to a temporary name in the same folder, fsynced and renamed,
so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from ppipe import durable, settings
from ppipe.data import sources, staging
from ppipe.errors import SourceError
from ppipe.challenge.spec import Challenge
from ppipe.challenge.planning import PlannedRelease
from ppipe.data.column_types import declared_or_inferred_cast
from ppipe.data.shuffle import STAGED_ROW_ID
from ppipe.data.staging import ROW_ID, StagedSource
from ppipe.data.text_index import copy_text, read_offsets

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ReleaseFile:
    """A saved release: where it is, its file name, sha256 (hex), size in bytes and row count."""

    path: Path
    name: str
    sha256: str
    bytes: int
    rows: int


def release_frame(challenge: Challenge, staged: StagedSource, release: PlannedRelease) -> pl.LazyFrame:
    """The rows [start, stop) of a Parquet staged copy as delivered: converted types, row_id if asked.

    Only the row groups holding those rows are read (polars pushes the slice into the scan).
    """
    lf = pl.scan_parquet(staged.path).slice(release.start, release.rows)
    if challenge.output.format != "csv" or challenge.source.format not in sources.TEXT_FORMATS:
        lf = lf.with_columns(declared_or_inferred_cast(staged, challenge.source.format in sources.TEXT_FORMATS))
    if challenge.output.row_id:
        row_id = pl.col(STAGED_ROW_ID) if staged.shuffled else pl.int_range(release.start, release.stop, dtype=pl.Int64)
        lf = lf.with_columns(row_id.alias(ROW_ID))
    if staged.shuffled:
        lf = lf.drop(STAGED_ROW_ID)
    return lf


def write_release(challenge: Challenge, staged: StagedSource, release: PlannedRelease) -> ReleaseFile:
    """Save release ``release`` in the challenge's output format; returns the file's path, name,
    sha256, size and rows. Overwrites an earlier file of the same name (same rows, same bytes)."""
    if not (0 <= release.start < release.stop <= staged.rows):
        raise SourceError(
            sources.display_url(challenge.source),
            f"{release.name} wants rows {release.start}..{release.stop} but the staged copy has {staged.rows}",
        )
    folder = settings.releases_dir(challenge.name)
    folder.mkdir(parents=True, exist_ok=True)
    name = challenge.release_file_name(release.index)
    final = folder / name
    durable.remove_stale(folder, f".{name}.*.tmp")  # left by a run killed while saving
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        if staged.kind == "offsets":
            digest, size = _cut_bytes(challenge, staged, release, tmp)
            durable.fsync_file(tmp)
            rows = release.rows  # exact from the index, which staging checked against polars
        else:
            with sources.source_errors(challenge.source, f"cannot write {name}"):
                _write(release_frame(challenge, staged, release), challenge.output.format, tmp)
            durable.fsync_file(tmp)
            rows = _count_rows(tmp, challenge.output.format)
            if rows != release.rows:
                raise SourceError(
                    sources.display_url(challenge.source), f"{name} came out with {rows} rows instead of {release.rows}"
                )
            size, digest = durable.file_sha256(tmp)
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    durable.fsync_dir(folder)
    return ReleaseFile(path=final, name=name, sha256=digest, bytes=size, rows=rows)


def _cut_bytes(challenge: Challenge, staged: StagedSource, release: PlannedRelease, path: Path) -> tuple[str, int]:
    """Write the header and the byte range of rows [start, stop) of the staged text to ``path``;
    returns (sha256 hex, size) of what was written. SourceError if the text changed since staging."""
    if staged.text.parent != staged.path.parent:  # cut from the source itself, not a staged copy
        staging._compare(challenge.source, staged.fingerprint)
    header_end, start, stop = read_offsets(staged, 0, release.start, release.stop)
    if challenge.source.format != "csv":
        header_end = 0
    with sources.source_errors(challenge.source, f"cannot write {challenge.release_file_name(release.index)}"):
        with open(path, "wb") as out:
            return copy_text(challenge, staged, [(0, header_end), (start, stop)], out)


def _write(lf: pl.LazyFrame, fmt: str, path: Path) -> None:
    if fmt == "csv":
        # null -> nothing, "" -> "" (quoted): missing and empty stay distinguishable
        lf.sink_csv(path, null_value="", quote_style="necessary")
    elif fmt == "parquet":
        lf.sink_parquet(path, compression="zstd")
    elif fmt == "ndjson":
        lf.sink_ndjson(path)
    elif fmt == "json":
        # polars has no streaming JSON-array writer: one release is held in memory
        lf.collect(engine="streaming").write_json(path)
    else:
        raise ValueError(f"unknown output format {fmt!r}")


def _count_rows(path: Path, fmt: str) -> int:
    """Rows in a written release, read back from the file itself (a cheap self-check)."""
    if fmt == "csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    if fmt == "parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    if fmt == "ndjson":
        return pl.scan_ndjson(path).select(pl.len()).collect().item()
    return pl.read_json(path).height


def write_manifest(challenge: Challenge, staged: StagedSource, delivered: list[dict]) -> Path:
    """Write ``manifest.json`` next to the release files (atomically) and return its path.

    It lists the delivered releases (by index) and the delivered columns with their type and
    whether that type was kept as in the source, inferred, or declared.
    """
    columns = [
        {"name": n, "type": t, "origin": staged.types_origin[n]} for n, t in staged.columns.items()
    ]
    if challenge.output.row_id:
        columns.append({"name": ROW_ID, "type": "int", "origin": "ppipe: 0-based row number in the source"})
    releases = [_release_entry(challenge, d) for d in sorted(delivered, key=lambda d: d["index"])]
    manifest = {
        "challenge": challenge.name,
        "format": challenge.output.format,
        "shuffled": challenge.output.shuffle,
        "source": {
            "format": challenge.source.format,
            "compression": challenge.source.compression,
            "rows": staged.rows,
            "sha256": staged.source_sha256,
        },
        "columns": columns,
        "releases": releases,
        "total_rows_delivered": sum(r["rows"] for r in releases),
        "updated_at": datetime.now(timezone.utc).isoformat(),
    }
    folder = settings.releases_dir(challenge.name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    durable.write_json(path, manifest)
    return path


_RELEASE_KEYS = ("index", "name", "start", "stop", "rows", "sha256", "bytes", "scheduled_at", "delivered_at")


def _release_entry(challenge: Challenge, delivered: dict) -> dict:
    entry = {key: delivered.get(key) for key in _RELEASE_KEYS}
    entry["file"] = challenge.release_file_name(delivered["index"])
    for key in ("scheduled_at", "delivered_at"):
        if isinstance(entry[key], datetime):
            entry[key] = entry[key].isoformat()
    return entry
