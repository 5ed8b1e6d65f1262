"""The ``"parquet"`` staged kind: a copy of the source, sliced and written by polars.

The copy holds the rows in their delivered types, in pieces of ROW_GROUP rows (shuffled once
when ``output.shuffle``): ``data.arrow``, uncompressed Arrow IPC (the cheapest to write and
to read back: no encoding), or ``data.parquet`` (LZ4) for a challenge with a scenario or files,
whose checks read the copy as Parquet, and for copies staged before. A release reads only the
pieces holding its rows, converts column types when the output format needs them (a copy
staged before types were applied while staging), adds ``row_id`` if asked, and is counted back
after writing.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import polars as pl

from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge
from ppipe.data import sources
from ppipe.data.column_types import staged_casts
from ppipe.data.shuffle import STAGED_ROW_ID
from ppipe.data.staged import ROW_ID, Cut, StagedSource
from ppipe.errors import SourceError
from ppipe.scenario import cut as scenario_cut

DATA = "data.parquet"  # a challenge with a scenario or files, and copies staged before
DATA_IPC = "data.arrow"
ROW_GROUP = 65_536  # rows a piece of the copy (a Parquet row group, an IPC record batch)


def sink_copy(lf: pl.LazyFrame, path: Path, lazy: bool = False) -> pl.LazyFrame | None:
    """Write the staged copy ``path`` (its name, or its temporary name, says the format) from ``lf``."""
    if DATA_IPC in path.name:
        return lf.sink_ipc(path, compression="uncompressed", record_batch_size=ROW_GROUP, lazy=lazy)
    return lf.sink_parquet(path, compression="lz4", statistics=False, row_group_size=ROW_GROUP, lazy=lazy)


def scan_copy(path: Path) -> pl.LazyFrame:
    """The staged copy ``path`` (Arrow IPC or Parquet, as :func:`sink_copy` wrote it), lazily."""
    return pl.scan_ipc(path) if DATA_IPC in path.name else pl.scan_parquet(path)


@dataclass(frozen=True)
class StagedParquet(StagedSource):
    """A copy of the source (``path`` is ``data.arrow`` or ``data.parquet``)."""

    kind: ClassVar[str] = "parquet"

    def record(self) -> dict[str, Any]:
        return {**super().record(), "file": self.path.name}

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any]) -> StagedParquet | None:
        path = folder / record.get("file", DATA)  # a record without "file": staged before IPC copies
        return cls.from_record(record, path=path) if path.is_file() else None

    def scan(self) -> pl.LazyFrame:
        """The rows, lazily."""
        return scan_copy(self.path)

    def cut(self, challenge: Challenge, release: PlannedRelease, out: Path) -> Cut:
        return self._cut(challenge, release, out)

    def cut_without(self, challenge: Challenge, release: PlannedRelease, out: Path, columns: list[str]) -> Cut:
        return self._cut(challenge, release, out, leave_out=columns)

    def _cut(self, challenge: Challenge, release: PlannedRelease, out: Path, leave_out: list[str] = ()) -> Cut:
        name = challenge.release_file_name(release.index)
        with sources.source_errors(challenge.source, f"cannot write {name}"):
            table = self._table(challenge, release)
            frame = table.frame.drop(leave_out, strict=False) if leave_out else table.frame
            with open(out, "wb") as stream:
                # hashed (and lines counted) as polars writes it: the file is not read back
                hashed = HashingWriter(stream, count_lines=challenge.output.format in ("ndjson", "csv"))
                try:
                    written = _write(frame, challenge.output.format, hashed)
                finally:
                    hashed.close()
                stream.flush()
                os.fsync(stream.fileno())
        table.written()  # a scenario's labels files and record, written meanwhile: on disk before the table's name
        rows = written if written is not None else _rows_written(hashed, out, challenge.output.format)
        if rows != table.rows:
            raise SourceError(
                sources.display_url(challenge.source), f"{name} came out with {rows} rows instead of {table.rows}"
            )
        return Cut(hashed.digest.hexdigest(), hashed.size, release.rows, tuple(table.extras))

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
    lf = staged.scan().slice(release.start, release.rows)
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


class HashingWriter:
    """A binary file polars writes to: each piece is hashed (sha256), counted (bytes, and line
    breaks when asked) and written by a thread of its own while polars encodes the next one
    (polars hands over immutable ``bytes``; hashlib and file writes release the GIL). At most
    PENDING pieces wait. :meth:`close` waits for the last and raises what a write raised."""

    PENDING = 2

    def __init__(self, stream: BinaryIO, count_lines: bool = False):
        self.stream, self.digest, self.size, self.lines = stream, hashlib.sha256(), 0, 0
        self.count_lines, self.quoted = count_lines, False  # quoted: a '"' was written
        self.pool, self.pending = ThreadPoolExecutor(1), deque()

    def write(self, data) -> int:
        data = bytes(data) if not isinstance(data, bytes) else data  # never a buffer polars reuses
        while len(self.pending) >= self.PENDING:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._take, data))
        return len(data)

    def _take(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        if self.count_lines:
            self.lines += data.count(b"\n")
            self.quoted = self.quoted or b'"' in data
        self.stream.write(data)

    def flush(self) -> None:
        pass  # :meth:`close` writes everything out

    def close(self) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _write(lf: pl.LazyFrame, fmt: str, path: Path | BinaryIO) -> int | None:
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


def _rows_written(hashed: HashingWriter, path: Path, fmt: str) -> int:
    """Rows in a written release: from its line breaks when each row is one line (NDJSON, whose
    writer escapes line breaks in values; a CSV without a quote, so without a value holding a
    line break, after its header), else read back from the file."""
    if fmt == "ndjson":
        return hashed.lines
    if fmt == "csv" and not hashed.quoted:
        return hashed.lines - 1
    return _count_rows(path, fmt)


def _count_rows(path: Path, fmt: str) -> int:
    """Rows in a written release, read back from the file itself (a cheap self-check)."""
    if fmt == "csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    if fmt == "parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    return pl.read_json(path).height
