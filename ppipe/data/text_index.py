"""The byte-offset index of a text source (CSV, NDJSON): where each row starts, found in one pass.

Staging's fast path (see ppipe.data.staging) stores this index instead of a copy, and a release is
cut as byte ranges of the text. The pass also checks a CSV (UTF-8, every row as wide as the
header), hashes the text and records a CRC-32 of every BLOCK bytes, which each cut re-checks.
Hand-written: no library gives the byte offsets of CSV records.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from ppipe.data import sources
from ppipe.errors import SourceError
from ppipe.challenge.spec import Challenge


class IndexedText(Protocol):
    """A text with its byte-offset index: what a cut reads (ppipe.data.staged_text.StagedText)."""

    path: Path  # the offsets index; the CRC-32 blocks file sits next to it
    text: Path  # the text the releases are cut from

INDEX, BLOCKS = "offsets.i64", "blocks.crc32"
BLOCK = 1 << 20  # bytes per CRC-32 block of the text
SCAN_CHUNK = 8 * BLOCK  # bytes read at once when indexing or cutting (a multiple of BLOCK)
_TAB, _NL, _CR, _QUOTE, _COMMA, _BRACE = 9, 10, 13, 34, 44, 123
#: bytes a TSV may not hold to be cut by bytes into CSV: a field holding one would need CSV quoting
_TSV_NEEDS_QUOTES = (b'"', b",", b"\r")
_EOF = -1  # stands for "before the first byte" / "after the last byte" in the quote checks


class BadText(ValueError):
    """The CSV text is refused (not UTF-8, a ragged row); the message says what and where."""


class _CsvCheck:
    """The checks of a CSV's text made during the byte pass, chunk by chunk: UTF-8 (an
    incremental decoder, so a character split between chunks is whole) and the number of
    fields of every row against the header's (delimiters outside quotes, counted per row).

    A blank line (nothing, or a lone CR, before its line break) is a row, as polars and
    Python's csv module count it, and is accepted whatever the header's width: it is the
    record with no values, not a ragged row. The first ragged row is kept and reported once
    the pass is over (a text that turns out not to be cut by bytes goes to the Parquet path
    whole instead); bad UTF-8 is reported at once.
    """

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.pending = False  # the decoder holds the start of a character split at the chunk end
        self.header: int | None = None  # delimiters in the header, once its line has ended
        self.lines = 0  # complete lines so far (the header is line 0, data row r is line r)
        self.line_start = 0  # where the current, unfinished line starts (file offset)
        self.carry = 0  # delimiters seen so far in that line
        self.ragged: str | None = None
        self.blank = False  # a blank line was seen (a row with no values)

    def text(self, chunk: bytearray, base: int, breaks: np.ndarray) -> None:
        """UTF-8 check of ``chunk`` (at file offset ``base``; ``breaks``: its row ends)."""
        if self.pending or not chunk.isascii():
            held = len(self.decoder.getstate()[0])
            try:
                self.decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = base - held + exc.start
                row = self.lines + int(np.searchsorted(breaks, at - base))
                where = "in the header" if row == 0 else f"in row {row}"
                raise BadText(f"is not valid UTF-8 text (byte {at}, {where})") from None
            self.pending = bool(self.decoder.getstate()[0])

    def fields(self, data: np.ndarray, base: int, at: np.ndarray, n_seps: int, breaks: np.ndarray, prev: int) -> None:
        """Count the fields of the rows ending in this chunk: ``at`` are the indices of the row
        ends among its ``n_seps`` separators outside quotes (delimiters and row ends, in order),
        ``breaks`` their offsets in the chunk, ``prev`` the byte before the chunk."""
        if not len(at):
            self.carry += n_seps
            return
        counts = np.diff(at, prepend=-1) - 1  # delimiters between consecutive row ends
        counts[0] += self.carry
        first = 0
        if self.header is None:
            self.header, first = int(counts[0]), 1
        bad = np.flatnonzero(counts[first:] != self.header) + first
        if len(bad) and self.ragged is None:
            starts = np.concatenate(([self.line_start - base], breaks[:-1] + 1))[bad]
            lengths = breaks[bad] - starts  # without the line break
            lead = np.where(starts >= 0, data[np.maximum(starts, 0)], prev)
            blank = (counts[bad] == 0) & ((lengths == 0) | ((lengths == 1) & (lead == _CR)))
            self.blank = self.blank or bool(blank.any())
            bad = bad[~blank]
            if len(bad):
                self._ragged(self.lines + int(bad[0]), int(counts[bad[0]]))
        self.lines += len(at)
        self.carry = n_seps - int(at[-1]) - 1
        self.line_start = base + int(breaks[-1]) + 1

    def finish(self, size: int, last: int) -> None:
        """At the end of the text (``size`` bytes, ``last`` its last byte): a character cut
        short, or a last line without a line break that is ragged."""
        held = len(self.decoder.getstate()[0])
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            where = "in the header" if self.lines == 0 else f"in row {self.lines}"
            raise BadText(f"is not valid UTF-8 text (byte {size - held}, {where}: a character cut short)") from None
        length = size - self.line_start
        if self.header is not None and length and self.carry != self.header:
            if self.carry == 0 and length == 1 and last == _CR:
                self.blank = True
            else:
                self._ragged(self.lines, self.carry)

    def _ragged(self, row: int, delimiters: int) -> None:
        if self.ragged is None:
            more = "more" if delimiters > self.header else "fewer"
            n = delimiters + 1
            self.ragged = (f"has a row with {more} fields than the header (ragged CSV): "
                           f"row {row} has {n} field{'s' * (n != 1)}, the header has {self.header + 1}")


def index_text(path: Path, index_out: Path | None, blocks_out: Path | None, fmt: str, hash_it: bool = True,
               strict: bool = False):
    """Write the row offsets of text file ``path`` to ``index_out`` and the CRC-32 of each of its
    BLOCK-byte blocks to ``blocks_out``; returns (rows, sha256 hex or None). Both None: the text
    is only checked (and hashed), with no CRC computed and nothing written.

    ``fmt`` "csv": the first line is the header; a line break or comma inside double quotes
    (quote-count parity, carried across chunks) does not end a row or a field; CRLF rows keep
    their CR. The same pass checks the text (see :class:`_CsvCheck`): BadText when it is not
    UTF-8 or a row has more or fewer fields than the header. "ndjson": every line break ends a
    record (checked by polars, not here). Offsets: where each row starts, then the file size (a
    last line without a line break ends there). One pass in SCAN_CHUNK pieces: memory stays
    bounded. Returns None when the text is outside what byte ranges are known to match polars
    on: a CSV quote that is not RFC 4180 (opening a field, doubled, or closing one), an
    unterminated quote, a CSV starting with a blank line, or an NDJSON line not starting with
    '{' (blank lines, leading blanks).

    ``fmt`` "tsv" (cut into CSV, see :mod:`ppipe.data.text_rows`): tab-delimited, no quoting;
    None when a value would need CSV quoting (a '"', ',' or CR anywhere) or a row is not as
    wide as the header (polars null-fills it: the Parquet path keeps that behaviour).
    ``strict`` (rows get a value appended): None as well when a CSV has a blank line.
    """
    tsv = fmt == "tsv"
    csv = fmt == "csv" or tsv
    delimiter = _TAB if tsv else _COMMA
    check = _CsvCheck() if csv else None
    digest = hashlib.sha256() if hash_it else None
    parity, base, rows, prev_byte = 0, 0, 0, _EOF
    crc = blocks_out is not None
    with open(path, "rb", buffering=0) as f, _output(index_out) as index, _output(blocks_out) as blocks, \
            ThreadPoolExecutor(1) as hasher:
        size = os.fstat(f.fileno()).st_size
        buffers = [bytearray(SCAN_CHUNK), bytearray(SCAN_CHUNK)]  # reused: no fresh pages per chunk

        def read(k: int) -> bytearray:
            n = _read_into(f, memoryview(buffers[k % 2]))
            return buffers[k % 2] if n == SCAN_CHUNK else buffers[k % 2][:n]

        k, current = 0, read(0)
        if csv and (current[:1] == b"\n" or current[:2] == b"\r\n"):
            return None  # polars skips leading blank lines: the header is not the first line
        if not csv:
            if current[:1] != b"{":
                return None
            index.write(np.zeros(1, "<i8").tobytes())
        while current:
            k += 1
            # hashlib, zlib and reads release the GIL: the hasher works while this thread scans
            checksums = hasher.submit(_checksum, current, digest, crc)
            upcoming = hasher.submit(read, k)  # into the other buffer, whose checksums are done
            data = np.frombuffer(current, np.uint8)
            if tsv and any(current.find(b) != -1 for b in _TSV_NEEDS_QUOTES):
                return None
            if csv:
                # separators: delimiters and line breaks, in order; those inside quotes dropped
                seps = np.flatnonzero((data == _NL) | (data == delimiter))
                quotes = None
                if not tsv and (parity or current.find(b'"') != -1):
                    next_byte = _first_byte(upcoming.result())
                    quotes = np.flatnonzero(data == _QUOTE)
                    if not _quotes_well_formed(data, quotes, parity, prev_byte, next_byte):
                        return None
                    seps = seps[((parity + np.searchsorted(quotes, seps)) & 1) == 0]
                if strict and current.find(b"\r") != -1 and _lone_cr(data, quotes, parity, upcoming):
                    return None  # where "x\r\r\n" ends its value is polars' guess: a row number would move it
                if quotes is not None:
                    parity = (parity + len(quotes)) & 1
                at = np.flatnonzero(data[seps] == _NL)  # which separators end a row
                breaks = seps[at]
                check.text(current, base, breaks)
                check.fields(data, base, at, len(seps), breaks, prev_byte)
            else:
                breaks = np.flatnonzero(data == _NL)
                if len(breaks):
                    next_byte = _first_byte(upcoming.result())
                    after = np.append(data, next_byte if next_byte != _EOF else _BRACE)[breaks + 1]
                    if not np.all(after == _BRACE):
                        return None
            starts = breaks.astype("<i8") + (base + 1)
            if len(starts) and starts[-1] == size and not upcoming.result():
                starts = starts[:-1]  # the line break ending the last line starts nothing
            index.write(starts.tobytes())
            blocks.write(checksums.result())
            rows += len(starts)
            prev_byte, base, current = int(data[-1]), base + len(current), upcoming.result()
        if parity:
            return None
        if csv:
            check.finish(base, prev_byte)
            if check.ragged and not tsv:
                raise BadText(check.ragged)
            if check.ragged or (tsv or strict) and check.blank:
                return None
        index.write(np.array([base], "<i8").tobytes())
    return (rows if csv else rows + 1), (digest.hexdigest() if digest is not None else None)


def _lone_cr(data: np.ndarray, quotes: np.ndarray | None, parity: int, upcoming) -> bool:
    """True if a CR outside quotes is not the first byte of a CRLF (a value ending in an
    unquoted CR, whose CR polars may take for the line break's)."""
    crs = np.flatnonzero(data == _CR)
    if quotes is not None:
        crs = crs[((parity + np.searchsorted(quotes, crs)) & 1) == 0]
    if not len(crs):
        return False
    after = np.append(data, _first_byte(upcoming.result()) & 0xFF)[crs + 1]
    return bool(np.any(after != _NL))


def _first_byte(chunk: bytearray) -> int:
    return chunk[0] if chunk else _EOF


def _output(path: Path | None):
    """``path`` opened for writing, or a sink that keeps nothing (a check-only pass)."""
    return open(path, "wb") if path is not None else contextlib.nullcontext(_Discard())


class _Discard:
    def write(self, data) -> int:
        return len(data)


def _checksum(chunk: bytearray, digest, crc: bool = True) -> bytes:
    """Feed ``chunk`` to ``digest`` (if any); the CRC-32 of each of its BLOCK-byte blocks, as bytes
    (none unless ``crc``)."""
    if digest is not None:
        digest.update(chunk)
    if not crc:
        return b""
    view = memoryview(chunk)
    return np.array([zlib.crc32(view[i:i + BLOCK]) for i in range(0, len(chunk), BLOCK)], "<u4").tobytes()


def _quotes_well_formed(data: np.ndarray, quotes: np.ndarray, parity: int, prev_byte: int, next_byte: int) -> bool:
    """True if every quote in this chunk either opens a field (after a comma, a line break, the
    file start or a closing quote) or closes one (before a comma, CR, LF, quote or the end)."""
    if not len(quotes):
        return True
    before = data[np.maximum(quotes - 1, 0)].astype(np.int16)
    before[quotes == 0] = prev_byte
    after = data[np.minimum(quotes + 1, len(data) - 1)].astype(np.int16)
    after[quotes + 1 >= len(data)] = next_byte
    opening = ((parity + np.arange(len(quotes))) & 1) == 0
    ok_open = np.isin(before, (_COMMA, _NL, _QUOTE, _EOF))
    ok_close = np.isin(after, (_COMMA, _CR, _NL, _QUOTE, _EOF))
    return bool(np.all(np.where(opening, ok_open, ok_close)))


def read_offsets(staged: IndexedText, *rows: int) -> list[int]:
    """Byte offsets of the given rows (``staged.rows`` = the end of the data) in the staged text."""
    return [int(np.fromfile(staged.path, dtype="<i8", count=1, offset=8 * r)[0]) for r in rows]


def read_offset_range(staged: IndexedText, start: int, stop: int) -> np.ndarray:
    """Byte offsets of rows ``start`` to ``stop`` inclusive (where each starts; the last: where row
    ``stop - 1`` ends)."""
    return np.fromfile(staged.path, dtype="<i8", count=stop - start + 1, offset=8 * start)


def copy_text(challenge: Challenge, staged: IndexedText, ranges: list[tuple], out: BinaryIO) -> tuple[str, int]:
    """Write the bytes of each ``(lo, hi)`` or ``(lo, hi, editor)`` range of the staged text to
    ``out``, through the editor's ``feed(piece, offset)`` when there is one (see
    :class:`ppipe.data.text_rows.RowEditor`); returns the sha256 (hex) and size of what was
    written. Each block read is checked against its CRC-32 from staging (while the previous
    piece is being written): SourceError if the text changed since staging, and then what was
    written must be thrown away."""
    crcs = np.fromfile(staged.path.with_name(BLOCKS), dtype="<u4")
    digest, size, per_chunk = hashlib.sha256(), 0, SCAN_CHUNK // BLOCK
    buffer = memoryview(bytearray(SCAN_CHUNK))  # reused: no fresh pages to fault in per chunk
    with open(staged.text, "rb", buffering=0) as f, ThreadPoolExecutor(1) as checker:
        written = None  # an edited piece being hashed and written by the checker thread
        for lo, hi, *edit in ranges:
            if lo >= hi:
                continue
            editor = edit[0] if edit else None
            first, last = lo // BLOCK, (hi - 1) // BLOCK
            f.seek(first * BLOCK)
            for block in range(first, last + 1, per_chunk):
                chunk = buffer[:_read_into(f, buffer[:min(per_chunk, last + 1 - block) * BLOCK])]
                skip = max(lo - block * BLOCK, 0)
                piece = chunk[skip:hi - block * BLOCK]
                if editor is None:
                    check = checker.submit(_check_and_hash, challenge, chunk, block, crcs, digest, piece)
                    out.write(piece)  # hashlib, zlib and file writes release the GIL: both run at once
                    check.result()
                    size += len(piece)
                    continue
                # edited while the checker checks the block and writes the previous edited piece
                check = checker.submit(_check_and_hash, challenge, chunk, block, crcs, None, piece)
                try:
                    piece = editor.feed(piece, block * BLOCK + skip)
                finally:
                    check.result()  # a changed text is reported as such, not as a failed edit
                if written is not None:
                    written.result()
                written = checker.submit(_hash_and_write, digest, piece, out)
                size += len(piece)
        if written is not None:
            written.result()
    return digest.hexdigest(), size


def hash_blocks(path: Path, blocks_out: Path) -> str:
    """The sha256 (hex) of file ``path``, and the CRC-32 of each of its BLOCK-byte blocks written
    to ``blocks_out`` (what :func:`check_blocks` checks a read against), in one read."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(SCAN_CHUNK))
    with open(path, "rb", buffering=0) as f, open(blocks_out, "wb") as blocks:
        while n := _read_into(f, buffer):
            blocks.write(_checksum(buffer[:n], digest))
    return digest.hexdigest()


def check_blocks(challenge: Challenge, path: Path, blocks: Path, spans: list[tuple[int, int]]) -> None:
    """SourceError if a block of file ``path`` holding a byte of the ``[lo, hi)`` spans differs
    from its CRC-32 in ``blocks`` (recorded by :func:`hash_blocks`)."""
    crcs = np.fromfile(blocks, dtype="<u4")
    buffer = memoryview(bytearray(SCAN_CHUNK))
    per_chunk = SCAN_CHUNK // BLOCK
    with open(path, "rb", buffering=0) as f:
        for lo, hi in spans:
            first, last = lo // BLOCK, (hi - 1) // BLOCK
            f.seek(first * BLOCK)
            for block in range(first, last + 1, per_chunk):
                chunk = buffer[:_read_into(f, buffer[:min(per_chunk, last + 1 - block) * BLOCK])]
                _check_and_hash(challenge, chunk, block, crcs, None, None)


def _hash_and_write(digest, piece, out: BinaryIO) -> None:
    digest.update(piece)
    out.write(piece)


def _read_into(f, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``f`` (short only at the end of the file); returns the bytes read."""
    filled = 0
    while filled < len(buffer):
        n = f.readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def _check_and_hash(challenge: Challenge, chunk: memoryview, first: int, crcs: np.ndarray, digest, piece) -> None:
    view = chunk
    for k in range(-(-len(chunk) // BLOCK)):
        b = first + k
        block = view[k * BLOCK:(k + 1) * BLOCK]
        if b >= len(crcs) or zlib.crc32(block) != int(crcs[b]) or (len(block) < BLOCK and b != len(crcs) - 1):
            raise SourceError(
                sources.display_url(challenge.source),
                f"changed since it was staged (bytes {b * BLOCK}..{b * BLOCK + BLOCK} differ): "
                "releases would mix two versions; restore the original or make a new challenge",
            )
    if digest is not None:
        digest.update(piece)
