"""A seeded shuffle in bounded memory (staging's ``output.shuffle``).

The order depends only on the seed and the row count (numpy's PCG64 stream): a two-pass
external shuffle (Rao 1961 / Sandelius), each row to a random bucket, each bucket permuted.
The positions are drawn first (:func:`shuffled_positions`), so polars places the rows in
two streaming passes (:func:`sink_shuffled`), or, when the rows fit comfortably in memory
(:func:`fits_in_memory`), by one gather in memory: one read and one write instead of the rows
written and read twice, the same order. Hand-written: neither polars nor pyarrow offers a
bounded-memory seeded shuffle.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # polars is imported when a shuffle runs
    import polars as pl

STAGED_ROW_ID = "__ppipe_row_id"  # original row number, stored only in a shuffled copy
SHUFFLE_BUCKET_ROWS = 262_144  # rows held in memory at once while shuffling
SHUFFLE_MAX_BUCKETS = 1024  # open files while shuffling; beyond it buckets grow instead
DEST = "__ppipe_dest"  # a row's position in the shuffled copy, only while shuffling
BUCKET = "__ppipe_bucket"  # the range of destinations a row is written to in pass 1 (a folder name)
#: a shuffle in memory may take this share of the memory available at staging (its estimate; the
#: peak measured is about 2.5x the estimate: the read's buffers, the column being gathered)...
MEMORY_SHARE = 0.1
#: ...and this share of the source's own bytes (see :func:`fits_in_memory`)
SOURCE_SHARE = 1.5
_FIXED_WIDTH = ("int", "float", "bool", "date", "datetime")


def shuffled_positions(n_rows: int, seed: int, row_group: int) -> np.ndarray:
    """Where each of ``n_rows`` rows goes in the shuffled order: ``dest[source row]``.

    Bucket keys are drawn per ``row_group`` rows, then one permutation per non-empty bucket,
    in bucket order: the order earlier versions produced by shuffling a Parquet copy, so a
    seed gives the same order as before. 8 bytes per row.
    """
    n_buckets = int(min(SHUFFLE_MAX_BUCKETS, max(1, -(-n_rows // SHUFFLE_BUCKET_ROWS))))
    rng = np.random.default_rng(seed)
    keys = np.concatenate(
        [rng.integers(0, n_buckets, min(row_group, n_rows - start)) for start in range(0, n_rows, row_group)]
    ).astype(np.uint16)  # n_buckets <= 1024; a small key sorts by radix
    order = np.argsort(keys, kind="stable")
    sizes = np.bincount(keys, minlength=n_buckets)
    del keys
    dest = np.empty(n_rows, dtype=np.int64)
    start = 0
    for size in sizes:
        if size:
            rows = order[start:start + size]
            dest[rows[rng.permutation(size)]] = np.arange(start, start + size)
        start += size
    return dest


def fits_in_memory(n_rows: int, types: list[str], source_bytes: int) -> bool:
    """True when the rows, in their delivered ``types`` (one per column), fit comfortably in
    memory: their estimate (8 bytes a number, date or time, 16 a text value's view, and the
    row number) within SOURCE_SHARE of the source's own bytes (``source_bytes``, local and
    uncompressed: so the peak stays near what reading the source whole takes) and within
    MEMORY_SHARE of the memory available now. Text kept as text (twice its source's bytes as
    views) and a compressed Parquet source shuffle in two passes."""
    estimate = n_rows * (8 + sum(8 if t in _FIXED_WIDTH else 16 for t in types))
    return estimate <= SOURCE_SHARE * source_bytes and estimate <= MEMORY_SHARE * _available_memory()


def _available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux: MemAvailable; else free pages)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0  # unknown: never in memory


def sink_shuffled(lf: pl.LazyFrame, out: Path, seed: int, n_rows: int, row_group: int,
                  also: list[pl.LazyFrame], sink: Callable[[pl.LazyFrame, Path], object],
                  in_memory: bool = False) -> list[pl.DataFrame]:
    """Write the rows of ``lf`` to ``out`` (with ``sink(frame, out)``) in the seeded order of
    :func:`shuffled_positions`, adding STAGED_ROW_ID; returns the results of the ``also``
    queries, computed in the same read of ``lf``.

    ``in_memory``: the rows are read into memory and gathered into that order, one column at
    a time (memory: the rows plus about one column; see :func:`fits_in_memory`). Else pass 1
    streams the rows into files by range of destination (SHUFFLE_BUCKET_ROWS rows each, at
    most SHUFFLE_MAX_BUCKETS); pass 2 sorts each range and appends it. Memory is
    about one range plus 8 bytes per row; disk is one uncompressed copy, briefly.
    """
    import polars as pl

    if in_memory:
        return _shuffle_in_memory(lf, out, seed, n_rows, row_group, also, sink)
    dest = shuffled_positions(n_rows, seed, row_group)
    span = max(SHUFFLE_BUCKET_ROWS, -(-n_rows // SHUFFLE_MAX_BUCKETS))
    parts = out.with_name(f"{out.name}.parts")
    keyed = lf.with_row_index(STAGED_ROW_ID).with_columns(
        pl.col(STAGED_ROW_ID).cast(pl.Int64),
        pl.col(STAGED_ROW_ID).map_batches(
            lambda index: pl.Series(dest[index.to_numpy()]), return_dtype=pl.Int64, is_elementwise=True
        ).alias(DEST),
    )
    try:
        bucket = (pl.col(DEST) // span).alias(BUCKET)  # never a name a source column could have
        split = keyed.sink_ipc(pl.PartitionBy(parts, key=bucket, include_key=False), compression="uncompressed",
                               mkdir=True, lazy=True)
        results = pl.collect_all([split, *also], engine="streaming")[1:]
        del dest
        ranges = [pl.scan_ipc(parts / f"{BUCKET}={b}" / "*", glob=True).sort(DEST).drop(DEST)
                  for b in range(-(-n_rows // span))]
        sink(pl.concat(ranges), out)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return results


def _shuffle_in_memory(lf: pl.LazyFrame, out: Path, seed: int, n_rows: int, row_group: int,
                       also: list[pl.LazyFrame], sink: Callable[[pl.LazyFrame, Path], object]) -> list[pl.DataFrame]:
    """:func:`sink_shuffled` in memory: the row at position p is the source row ``order[p]``,
    where ``order`` inverts :func:`shuffled_positions`, so the order is the two passes' order."""
    import polars as pl

    keyed = lf.with_row_index(STAGED_ROW_ID).with_columns(pl.col(STAGED_ROW_ID).cast(pl.Int64))
    frame, *results = pl.collect_all([keyed, *also], engine="streaming")
    if frame.height != n_rows:  # the source changed since it was counted
        raise ValueError(f"{frame.height} rows read, {n_rows} counted before")
    order = np.empty(n_rows, np.int64)
    order[shuffled_positions(n_rows, seed, row_group)] = np.arange(n_rows)
    columns = frame.get_columns()
    del frame
    for i, column in enumerate(columns):
        # one column at a time, each gathered from one contiguous chunk (a gather across the
        # streaming engine's many chunks costs several times more)
        columns[i] = column.rechunk().gather(order)
    del order
    sink(pl.DataFrame(columns).lazy(), out)
    return results
