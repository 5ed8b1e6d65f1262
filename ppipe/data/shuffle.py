"""A seeded shuffle in bounded memory (staging's ``output.shuffle``).

The order depends only on the seed and the row count (numpy's PCG64 stream): a two-pass
external shuffle (Rao 1961 / Sandelius), each row to a random bucket, each bucket permuted.
The positions are drawn first (:func:`shuffled_positions`), so polars places the rows in
two streaming passes (:func:`sink_shuffled`). Hand-written: neither polars nor pyarrow
offers a bounded-memory seeded shuffle.
"""

from __future__ import annotations

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


def sink_shuffled(lf: pl.LazyFrame, out: Path, seed: int, n_rows: int, row_group: int,
                  also: list[pl.LazyFrame], sink: Callable[[pl.LazyFrame, Path], object]) -> list[pl.DataFrame]:
    """Write the rows of ``lf`` to ``out`` (with ``sink(frame, out)``) in the seeded order of
    :func:`shuffled_positions`, adding STAGED_ROW_ID; returns the results of the ``also``
    queries, computed in the same read of ``lf``.

    Pass 1 streams the rows into files by range of destination (SHUFFLE_BUCKET_ROWS rows
    each, at most SHUFFLE_MAX_BUCKETS); pass 2 sorts each range and appends it. Memory is
    about one range plus 8 bytes per row; disk is one uncompressed copy, briefly.
    """
    import polars as pl

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
        bucket = (pl.col(DEST) // span).alias("b")
        split = keyed.sink_ipc(pl.PartitionBy(parts, key=bucket, include_key=False), compression="uncompressed",
                               mkdir=True, lazy=True)
        results = pl.collect_all([split, *also], engine="streaming")[1:]
        del dest
        ranges = [pl.scan_ipc(parts / f"b={b}" / "*", glob=True).sort(DEST).drop(DEST)
                  for b in range(-(-n_rows // span))]
        sink(pl.concat(ranges), out)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return results
