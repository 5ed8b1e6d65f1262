"""A seeded shuffle of a Parquet file in bounded memory (staging's ``output.shuffle``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pyarrow is imported when a shuffle runs (it costs ~50 ms)
    import pyarrow as pa
    import pyarrow.parquet as pq

STAGED_ROW_ID = "__ppipe_row_id"  # original row number, stored only in a shuffled copy
SHUFFLE_BUCKET_ROWS = 262_144  # rows held in memory at once while shuffling
SHUFFLE_MAX_BUCKETS = 1024  # open files while shuffling; beyond it buckets grow instead


def shuffle_parquet(src: Path, dst: Path, seed: int, row_group: int) -> None:
    """Write the rows of ``src`` to ``dst`` in a seeded uniformly random order, adding STAGED_ROW_ID.

    Two-pass external shuffle (Rao 1961 / Sandelius): each row goes to a random bucket file,
    then each bucket is permuted in memory and appended. Memory is one bucket (about
    SHUFFLE_BUCKET_ROWS rows) whatever the source size; disk is one extra copy, briefly.
    The order depends only on the seed and the row count (numpy's PCG64 stream).
    Hand-written: neither polars nor pyarrow offers a bounded-memory seeded shuffle.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(src)
    n_rows = parquet.metadata.num_rows
    n_buckets = int(min(SHUFFLE_MAX_BUCKETS, max(1, -(-n_rows // SHUFFLE_BUCKET_ROWS))))
    rng = np.random.default_rng(seed)
    bucket_paths = [dst.with_name(f"{dst.name}.bucket{b}") for b in range(n_buckets)]
    writers: list[pq.ParquetWriter | None] = [None] * n_buckets
    try:
        offset = 0
        for batch in parquet.iter_batches(batch_size=row_group):
            table = pa.Table.from_batches([batch])
            table = table.append_column(STAGED_ROW_ID, pa.array(np.arange(offset, offset + len(table))))
            offset += len(table)
            keys = rng.integers(0, n_buckets, len(table))
            order = np.argsort(keys, kind="stable")
            cuts = np.searchsorted(keys[order], np.arange(n_buckets + 1))
            for b in range(n_buckets):
                if cuts[b] < cuts[b + 1]:
                    if writers[b] is None:
                        writers[b] = pq.ParquetWriter(bucket_paths[b], table.schema, compression="lz4")
                    writers[b].write_table(table.take(order[cuts[b]:cuts[b + 1]]))
        for writer in writers:
            if writer is not None:
                writer.close()
        with pq.ParquetWriter(dst, _schema_with_row_id(parquet), compression="lz4") as out:
            for b, path in enumerate(bucket_paths):
                if writers[b] is None:
                    continue
                bucket = pq.read_table(path)
                out.write_table(bucket.take(rng.permutation(len(bucket))), row_group_size=row_group)
                path.unlink()
    finally:
        for path in bucket_paths:
            path.unlink(missing_ok=True)


def _schema_with_row_id(parquet: pq.ParquetFile) -> pa.Schema:
    import pyarrow as pa

    return parquet.schema_arrow.append(pa.field(STAGED_ROW_ID, pa.int64()))
