"""The ``"parquet"`` staged kind: a Parquet copy of the source, sliced and written by polars.

``data.parquet`` holds the rows in row groups (shuffled once when ``output.shuffle``); a
release reads only the row groups holding its rows, converts column types when the output
format needs them, adds ``row_id`` if asked, and is counted back after writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from ppipe import durable
from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge
from ppipe.data import sources
from ppipe.data.column_types import staged_casts
from ppipe.data.shuffle import STAGED_ROW_ID
from ppipe.data.staged import ROW_ID, Cut, StagedSource
from ppipe.errors import SourceError
from ppipe.scenario import cut as scenario_cut

DATA = "data.parquet"


@dataclass(frozen=True)
class StagedParquet(StagedSource):
    """A Parquet copy of the source (``path`` is ``data.parquet``)."""

    kind: ClassVar[str] = "parquet"

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any]) -> StagedParquet | None:
        path = folder / DATA
        return cls.from_record(record, path=path) if path.is_file() else None

    def cut(self, challenge: Challenge, release: PlannedRelease, out: Path) -> Cut:
        return self._cut(challenge, release, out)

    def cut_without(self, challenge: Challenge, release: PlannedRelease, out: Path, columns: list[str]) -> Cut:
        return self._cut(challenge, release, out, leave_out=columns)

    def _cut(self, challenge: Challenge, release: PlannedRelease, out: Path, leave_out: list[str] = ()) -> Cut:
        name = challenge.release_file_name(release.index)
        with sources.source_errors(challenge.source, f"cannot write {name}"):
            table = self._table(challenge, release)
            frame = table.frame.drop(leave_out, strict=False) if leave_out else table.frame
            written = _write(frame, challenge.output.format, out)
        durable.fsync_file(out)
        rows = written if written is not None else _count_rows(out, challenge.output.format)
        if rows != table.rows:
            raise SourceError(
                sources.display_url(challenge.source), f"{name} came out with {rows} rows instead of {table.rows}"
            )
        size, digest = durable.file_sha256(out)
        return Cut(digest, size, release.rows, tuple(table.extras))

    def _table(self, challenge: Challenge, release: PlannedRelease) -> scenario_cut.Table:
        """The release's table, through the challenge's scenario (and files) when it has them."""
        if not scenario_cut.applies(challenge):
            return scenario_cut.Table(release_frame(challenge, self, release), release.rows)
        return scenario_cut.cut(
            challenge, self, release, lambda planned: release_frame(challenge, self, planned, scenario_cut.ROW),
            lambda frame, path: _write(frame, challenge.output.format, path),
        )


def release_frame(
    challenge: Challenge, staged: StagedParquet, release: PlannedRelease, row_column: str | None = None
) -> pl.LazyFrame:
    """The rows [start, stop) of a Parquet staged copy as delivered: converted types, row_id if asked
    (or the source row numbers as ``row_column``, for a scenario).

    Only the row groups holding those rows are read (polars pushes the slice into the scan).
    """
    lf = pl.scan_parquet(staged.path).slice(release.start, release.rows)
    if challenge.output.format != "csv" or challenge.source.format not in sources.TEXT_FORMATS:
        # staging writes the delivered types; a copy staged before it did is converted here
        casts = staged_casts(staged, challenge.source.format in sources.TEXT_FORMATS, lf.collect_schema())
        if casts:
            lf = lf.with_columns(casts)
    if row_column or challenge.output.row_id:
        row_id = pl.col(STAGED_ROW_ID) if staged.shuffled else pl.int_range(release.start, release.stop, dtype=pl.Int64)
        lf = lf.with_columns(row_id.alias(row_column or ROW_ID))
    if staged.shuffled:
        lf = lf.drop(STAGED_ROW_ID)
    return lf


def _write(lf: pl.LazyFrame, fmt: str, path: Path) -> int | None:
    """Write the release; returns its row count when it is known without reading the file back
    (a JSON array is written from a frame in memory: parsing it again would cost more than writing)."""
    if fmt == "csv":
        # null -> nothing, "" -> "" (quoted): missing and empty stay distinguishable
        lf.sink_csv(path, null_value="", quote_style="necessary")
    elif fmt == "parquet":
        lf.sink_parquet(path, compression="zstd")
    elif fmt == "ndjson":
        lf.sink_ndjson(path)
    elif fmt == "json":
        # polars has no streaming JSON-array writer: one release is held in memory
        frame = lf.collect(engine="streaming")
        frame.write_json(path)
        return frame.height
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return None


def _count_rows(path: Path, fmt: str) -> int:
    """Rows in a written release, read back from the file itself (a cheap self-check)."""
    if fmt == "csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    if fmt == "parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    if fmt == "ndjson":
        return pl.scan_ndjson(path).select(pl.len()).collect().item()
    return pl.read_json(path).height
