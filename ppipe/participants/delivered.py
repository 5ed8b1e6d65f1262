"""What participants have received: delivered releases read back from ppipe's local audit copies.

Judging compares answers with exactly what was delivered (the audit copy of each release
file is byte for byte what went out), never with the clean source.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ppipe import settings
from ppipe.errors import PpipeError
from ppipe.ledger import Ledger
from ppipe.challenge.spec import Challenge
from ppipe.participants.judging import ROW_ID
from ppipe.scenario import labels as scenario_labels


@dataclass(frozen=True)
class Delivered:
    """One release delivered to at least one destination."""

    index: int
    name: str
    rows: int
    sha256: str
    uris: dict[str, str]  # destination -> URI
    scheduled_at: object


def delivered(ledger: Ledger, name: str) -> dict[int, Delivered]:
    """Releases delivered so far, by index."""
    found: dict[int, Delivered] = {}
    for row in ledger.releases(name):
        if row.status != "delivered":
            continue
        entry = found.get(row.index) or Delivered(row.index, row.name, row.rows, row.sha256 or "", {}, row.scheduled_at)
        entry.uris[row.destination] = row.uri or ""
        found[row.index] = entry
    return found


def release_path(challenge: Challenge, index: int) -> Path:
    return settings.releases_dir(challenge.name) / challenge.release_file_name(index)


def read_release(challenge: Challenge, index: int, columns: list[str] | None = None) -> pl.DataFrame:
    """Release ``index`` as delivered (all columns, or ``columns``)."""
    path = release_path(challenge, index)
    try:
        stat = path.stat()
    except OSError:
        raise PpipeError(f"{challenge.name}: the audit copy of {challenge.release_name(index)} is missing ({path})") from None
    frame = _read(str(path), challenge.output.format, stat.st_mtime_ns, stat.st_size)
    return frame.select(columns) if columns else frame


@functools.lru_cache(maxsize=16)
def _read(path: str, fmt: str, _mtime_ns: int, _size: int) -> pl.DataFrame:
    """Cached by (path, mtime, size): a release file never changes once delivered."""
    if fmt == "parquet":
        return pl.read_parquet(path)
    if fmt == "csv":
        return pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
    if fmt == "ndjson":
        return pl.read_ndjson(path)
    return pl.read_json(path)


def known_row_ids(challenge: Challenge, indexes: list[int]) -> pl.Series:
    """Every row id delivered in the releases ``indexes``, sorted."""
    if not indexes:
        return pl.Series(ROW_ID, [], dtype=pl.Int64)
    return pl.concat([read_release(challenge, i, [ROW_ID])[ROW_ID].cast(pl.Int64) for i in indexes]).sort()


def expected_rows(challenge: Challenge, indexes: list[int], row_ids: list[int]) -> pl.DataFrame:
    """The rows ``row_ids`` as delivered, looked up across releases ``indexes``."""
    wanted = pl.Series(row_ids, dtype=pl.Int64).implode()
    parts = [read_release(challenge, i).filter(pl.col(ROW_ID).cast(pl.Int64).is_in(wanted)) for i in indexes]
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame({ROW_ID: []})
    return frame.with_columns(pl.col(ROW_ID).cast(pl.Int64))


def labels_arrive_with(challenge: Challenge, index: int) -> int | None:
    """The release whose delivery brings release ``index``'s labels (itself, or later with late
    labels); None when they never arrive."""
    return scenario_labels.labels_release(challenge, index)


def labels(challenge: Challenge, index: int, label: str) -> pl.DataFrame:
    """(row_id, label) of release ``index`` as delivered: what predictions are scored against
    (the ``labels_<index>`` file when late labels held them back from the release itself)."""
    if scenario_labels.withheld_label(challenge, index):
        path = settings.releases_dir(challenge.name) / scenario_labels.labels_file_name(challenge, index)
        stat = path.stat()
        frame = _read(str(path), challenge.output.format, stat.st_mtime_ns, stat.st_size)
    else:
        frame = read_release(challenge, index)
    if label not in frame.columns:
        raise PpipeError(f"requests.prediction.label: {challenge.release_name(index)} has no column {label!r}")
    return frame.select(pl.col(ROW_ID).cast(pl.Int64), pl.col(label))


def read_batch_row_ids(challenge: Challenge, file: str) -> list[int]:
    """Row ids of a prediction batch, read back from its audit copy."""
    path = settings.releases_dir(challenge.name) / file
    stat = path.stat()
    frame = _read(str(path), challenge.output.format, stat.st_mtime_ns, stat.st_size)
    return sorted(frame[ROW_ID].cast(pl.Int64).to_list())
