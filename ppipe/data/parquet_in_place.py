"""The ``"parquet_source"`` staged kind: a Parquet source released from its own row groups.

A Parquet source released unshuffled, without declared types, scenario or files, whose row
groups are at most MAX_ROW_GROUP rows, is not copied: staging decodes every value once (a
corrupt file is refused at create, as when it was copied), hashes the file and records a
CRC-32 of every BLOCK bytes and the byte span of each row group. A release slices the source
itself with polars (:func:`ppipe.data.staged_parquet.release_frame`: only the row groups
holding its rows are read), after checking the fingerprint and the CRC-32 of the blocks of
those row groups and of the footer: a source changed since staging is reported, never mixed
into a release. A remote source's fetched copy is kept in the folder as ``source.parquet``.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from ppipe import durable
from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge
from ppipe.data import sources
from ppipe.data.column_types import type_name
from ppipe.data.staged import META, Cut
from ppipe.data.staged_parquet import StagedParquet
from ppipe.data.text_index import BLOCKS, check_blocks, hash_blocks
from ppipe.errors import SourceError
from ppipe.scenario import cut as scenario_cut

#: larger row groups are copied into ROW_GROUP-row ones: a release reads whole row groups
MAX_ROW_GROUP = 1 << 20
COPY_NAME = "source.parquet"


@dataclass(frozen=True)
class StagedParquetSource(StagedParquet):
    """A Parquet source cut in place (``path``: the source file, or its fetched copy in the
    folder); ``blocks``: its CRC-32 per BLOCK bytes; ``row_groups``: ``[rows, lo, hi]`` of each
    row group (its row count and byte span), then ``[0, footer start, file size]``."""

    kind: ClassVar[str] = "parquet_source"

    blocks: Path | None = None
    row_groups: tuple = ()

    @property
    def copied(self) -> bool:
        return self.path.parent == self.blocks.parent

    def record(self) -> dict[str, Any]:
        record = {k: v for k, v in super().record().items() if k != "blocks"}
        return {**record, "file": self.path.name if self.copied else str(self.path)}

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any]) -> StagedParquetSource | None:
        path = folder / record["file"]  # an absolute path stays absolute
        if not (folder / BLOCKS).is_file() or not Path(record["file"]).is_absolute() and not path.is_file():
            return None
        groups = tuple(tuple(g) for g in record["row_groups"])
        return cls.from_record(record, path=path, blocks=folder / BLOCKS, row_groups=groups)

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)

    def cut(self, challenge: Challenge, release: PlannedRelease, out: Path) -> Cut:
        self._check(challenge, release)
        return super().cut(challenge, release, out)

    def cut_without(self, challenge: Challenge, release: PlannedRelease, out: Path, columns: list[str]) -> Cut:
        self._check(challenge, release)
        return super().cut_without(challenge, release, out, columns)

    def _check(self, challenge: Challenge, release: PlannedRelease) -> None:
        """SourceError if the bytes this release reads (its row groups, the footer) changed."""
        if not self.copied:
            self.check_unchanged(challenge.source)
        spans, first = [], 0
        for rows, lo, hi in self.row_groups:
            if rows == 0 or first < release.stop and release.start < first + rows:
                spans.append((lo, hi))  # the footer's entry has no rows: always read
            first += rows
        with sources.source_errors(challenge.source, f"cannot write {challenge.release_file_name(release.index)}"):
            check_blocks(challenge, self.path, self.blocks, spans)


def eligible(challenge: Challenge) -> bool:
    """A Parquet source delivered as it is: no shuffle, no declared types, no scenario or files
    (they keep files beside the staged copy)."""
    source, output = challenge.source, challenge.output
    return (source.format == "parquet" and not output.shuffle and not source.column_types
            and not scenario_cut.applies(challenge) and getattr(challenge, "files", None) is None)


def stage(challenge: Challenge, folder: Path, local: Path, sha: str | None, before: dict,
          lf: pl.LazyFrame) -> StagedParquetSource | None:
    """Stage ``local`` (the source's bytes) in place; None when its row groups are too large
    (then the caller copies it). SourceError as the copying path."""
    source = challenge.source
    url = sources.display_url(source)
    with sources.source_errors(source, "cannot stage"):
        groups = row_groups(local)
        if groups is None:
            return None
        schema = lf.collect_schema()
        blocks = folder / BLOCKS
        with ThreadPoolExecutor(1) as pool:  # hashlib and zlib release the GIL
            hashing = pool.submit(hash_blocks, local, blocks)
            # every value decoded once, as copying did, so a corrupt file is refused at create
            counts = lf.select(pl.len().alias("\x00ppipe_rows"), pl.all().null_count()).collect(engine="streaming")
            digest = hashing.result()
        rows = int(counts.item(0, 0))
    if rows == 0:
        raise SourceError(url, "has no data rows")
    if rows != sum(g[0] for g in groups):
        raise SourceError(url, f"cannot be read safely: {rows} rows decoded, {sum(g[0] for g in groups)} in its row groups")
    if sources.fingerprint(source) != before:
        raise SourceError(url, "changed while it was being staged; try again")
    path = Path(local).resolve()
    if sources.needs_fetch(source):  # the fetched copy becomes the staged file
        path = folder / COPY_NAME
        durable.fsync_file(local)
        os.replace(local, path)
    durable.fsync_file(blocks)
    names = list(schema.names())
    staged = StagedParquetSource(
        path=path, rows=rows, fingerprint=before, columns={n: type_name(schema[n]) for n in names},
        types_origin={n: "source" for n in names}, source_sha256=sha or digest, shuffled=False,
        challenge_id=str(challenge.id), blocks=blocks, row_groups=tuple(tuple(g) for g in groups),
    )
    durable.write_json(folder / META, staged.record())
    return staged


def row_groups(path: Path) -> list[list[int]] | None:
    """``[rows, lo, hi]`` of each row group of Parquet file ``path`` and ``[0, footer start, size]``;
    None when a row group has more than MAX_ROW_GROUP rows."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    groups = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        if group.num_rows > MAX_ROW_GROUP:
            return None
        spans = [_column_span(group.column(c)) for c in range(group.num_columns)]
        groups.append([group.num_rows, min(lo for lo, _ in spans), max(hi for _, hi in spans)])
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(size - 8)
        footer = struct.unpack("<i", f.read(4))[0]
    groups.append([0, size - 8 - footer, size])
    return groups


def _column_span(column) -> tuple[int, int]:
    """A column chunk's byte span: from its first page (the dictionary's, if any) on."""
    start = min(o for o in (column.dictionary_page_offset, column.data_page_offset) if o)
    return start, start + column.total_compressed_size
