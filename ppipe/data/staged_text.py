"""The ``"offsets"`` staged kind: a byte-offset index of a CSV or NDJSON text, cut by bytes.

Eligible (see :func:`ppipe.data.staging.byte_range_eligible`): a CSV or TSV released as CSV,
with or without row_id, or an NDJSON released as NDJSON without row_id, unshuffled. A TSV's
tabs become commas and a row_id is appended to each line on the way out
(:mod:`ppipe.data.text_rows`). ``offsets.i64`` (little-endian int64:
where each row starts, then where the data ends; the CSV header is the bytes before the
first row) and ``blocks.crc32`` (a CRC-32 of every BLOCK bytes) are built by
:mod:`ppipe.data.text_index`. A release is the header plus a byte range of the text: the
source's own lines (byte-for-byte for CSV without row_id). The text is the source file itself
when it is local and uncompressed (no copy), else the fetched (decompressed) copy kept in the folder as
``source.<format>``. Every cut re-checks the CRC of each block it reads, so a source changed
after staging is reported, never mixed into a release.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ppipe import durable
from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge
from ppipe.data import sources
from ppipe.data.staged import ROW_ID, Cut, StagedSource
from ppipe.data.text_index import BLOCKS, INDEX, copy_text, read_offset_range, read_offsets
from ppipe.data.text_rows import RowEditor


@dataclass(frozen=True)
class StagedText(StagedSource):
    """A byte-offset index (``path`` is ``offsets.i64``) of the text releases are cut from (``text``)."""

    kind: ClassVar[str] = "offsets"

    text: Path | None = None

    @property
    def copied(self) -> bool:
        """True when the text is a staged copy in the folder, False when it is the source itself."""
        return self.text.parent == self.path.parent

    def record(self) -> dict[str, Any]:
        # A staged copy is recorded by its name in the folder, the source itself by its absolute path.
        return {**super().record(), "text": self.text.name if self.copied else str(self.text)}

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any]) -> StagedText | None:
        copied = not Path(record["text"]).is_absolute()
        text = folder / record["text"]  # an absolute path stays absolute
        if not ((folder / INDEX).is_file() and (folder / BLOCKS).is_file()):
            return None
        if copied and not text.is_file():
            return None
        return cls.from_record(record, path=folder / INDEX, text=text)

    def cut(self, challenge: Challenge, release: PlannedRelease, out: Path) -> Cut:
        """The header and the byte range of rows [start, stop) of the text, hashed while written.
        The row count is exact from the index, which staging checked against polars."""
        if not self.copied:  # cut from the source itself, not a staged copy
            self.check_unchanged(challenge.source)
        with sources.source_errors(challenge.source, f"cannot write {challenge.release_file_name(release.index)}"):
            ranges = self._ranges(challenge, release)
            with open(out, "wb") as stream:
                digest, size = copy_text(challenge, self, ranges, stream)
        durable.fsync_file(out)
        return Cut(digest, size, release.rows)

    def _ranges(self, challenge: Challenge, release: PlannedRelease) -> list[tuple]:
        """The header's and the rows' byte ranges, each with its editor when the lines change on
        the way out (a TSV becomes CSV, a row number is appended)."""
        fmt, row_id = challenge.source.format, challenge.output.row_id
        if fmt == "ndjson":
            start, stop = read_offsets(self, release.start, release.stop)
            return [(start, stop)]
        if fmt == "csv" and not row_id:
            header_end, start, stop = read_offsets(self, 0, release.start, release.stop)
            return [(0, header_end), (start, stop)]
        tsv = fmt == "tsv"
        offsets = read_offset_range(self, release.start, release.stop)
        header_end = read_offsets(self, 0)[0]
        header = RowEditor(np.array([header_end]), label=ROW_ID.encode() if row_id else None, tsv=tsv)
        rows = RowEditor(offsets[1:], first=release.start if row_id else None, tsv=tsv)
        return [(0, header_end, header), (int(offsets[0]), int(offsets[-1]), rows)]
