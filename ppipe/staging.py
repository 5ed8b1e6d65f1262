"""Staging: read the source once into what every release is cut from.

Two kinds of staged copy, both in ``PPIPE_HOME/staged/<challenge>/`` with ``staged.json``
(fingerprint, rows, column types, kind) written last: a folder without ``staged.json`` is an
unfinished staging and is redone.

* ``"offsets"`` (the fast path, see :func:`byte_range_eligible`): a CSV released as CSV or an
  NDJSON released as NDJSON, unshuffled, without row_id. The source is validated (a CSV in the
  one pass over its bytes that indexes it: UTF-8, and every row with as many fields as the
  header; an NDJSON by one full polars parse that writes nothing), and a byte-offset index is
  stored instead of a copy:
  ``offsets.i64`` (little-endian int64: where each row starts, then where the data ends;
  the CSV header is the bytes before the first row) and ``blocks.crc32`` (a CRC-32 of every
  BLOCK bytes of the text). A release is then the header plus a byte range of the text:
  byte-for-byte the source's own lines. The text is the source file itself when it is local
  and uncompressed (no copy), else the fetched (decompressed) copy moved into the folder as
  ``source.<format>``. Every release re-checks the CRC of each block it reads, so a source
  changed after staging is reported, never mixed into a release.
* ``"parquet"``: ``data.parquet`` (row groups of ROW_GROUP rows, shuffled once when
  ``output.shuffle``). CSV/TSV are staged as text, field by field, so a release in the
  source's own format carries the source's values unchanged; column types are worked out
  only when the output format needs them (see :func:`column_types`).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import shutil
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import polars as pl

from ppipe import durable, settings, sources
from ppipe.errors import SourceError
from ppipe.model import Challenge, Source

if TYPE_CHECKING:  # pyarrow is imported where the Parquet path needs it (it costs ~50 ms)
    import pyarrow as pa
    import pyarrow.parquet as pq

ROW_GROUP = 65_536
DATA, META = "data.parquet", "staged.json"
INDEX, BLOCKS = "offsets.i64", "blocks.crc32"  # the "offsets" kind (see the module docstring)
BLOCK = 1 << 20  # bytes per CRC-32 block of the text
SCAN_CHUNK = 8 * BLOCK  # bytes read at once when indexing or cutting (a multiple of BLOCK)
ROW_ID = "row_id"
STAGED_ROW_ID = "__ppipe_row_id"  # original row number, stored only in a shuffled copy
SHUFFLE_BUCKET_ROWS = 262_144  # rows held in memory at once while shuffling
SHUFFLE_MAX_BUCKETS = 1024  # open files while shuffling; beyond it buckets grow instead
TYPE_DTYPES = {
    "string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean,
    "date": pl.Date, "datetime": pl.Datetime("us"),
}


@dataclass(frozen=True)
class StagedSource:
    """The staged copy: its path, row count, the source fingerprint it was made from, and the
    type of each column as delivered (``columns``) with where that type came from
    (``types_origin``: "source" = kept as in the source, "inferred", or "declared")."""

    path: Path
    rows: int
    fingerprint: dict
    columns: dict[str, str]
    types_origin: dict[str, str]
    source_sha256: str | None = None
    shuffled: bool = False
    kind: str = "parquet"  # "parquet": path is data.parquet; "offsets": path is the offsets index
    text: Path | None = None  # "offsets": the text file releases are cut from (source or staged copy)


# --- public API --------------------------------------------------------------------------------


def stage(challenge: Challenge) -> StagedSource:
    """The staged copy of the challenge's source, made now unless a finished one exists.

    Idempotent: an existing staged copy is returned as is when the source is unchanged;
    SourceError when the source changed (or vanished) since staging, or cannot be read.
    """
    existing = load_staged(challenge)
    if existing is not None:
        _compare(challenge.source, existing.fingerprint)
        return existing
    return _stage_now(challenge)


def check_source_unchanged(challenge: Challenge) -> None:
    """None if the source still matches the staged fingerprint; SourceError if it changed,
    disappeared, or was never staged."""
    existing = load_staged(challenge)
    if existing is None:
        raise SourceError(sources.display_url(challenge.source), "has not been staged yet")
    _compare(challenge.source, existing.fingerprint)


def load_staged(challenge: Challenge) -> StagedSource | None:
    """The finished staged copy recorded in ``staged.json``, or None if there is none."""
    folder = settings.staging_dir(challenge.name)
    meta = folder / META
    if not meta.is_file():
        return None
    record = json.loads(meta.read_text())
    if record.get("kind", "parquet") == "offsets":
        copied = not Path(record["text"]).is_absolute()  # a staged copy, not the source itself
        record["path"], record["text"] = folder / INDEX, folder / record["text"]  # absolute stays absolute
        if not ((folder / INDEX).is_file() and (folder / BLOCKS).is_file()):
            return None
        if copied and not record["text"].is_file():
            return None
    else:
        record["path"] = folder / DATA
        if not record["path"].is_file():
            return None
    return StagedSource(**record)


def byte_range_eligible(challenge: Challenge) -> bool:
    """True when releases can be byte ranges of the source: CSV to CSV or NDJSON to NDJSON,
    no shuffle, no row_id, and (NDJSON) no declared type to convert to."""
    source, output = challenge.source, challenge.output
    if output.shuffle or output.row_id:
        return False
    if source.format == "csv":
        return output.format == "csv"
    return source.format == "ndjson" and output.format == "ndjson" and not source.column_types


# --- staging -------------------------------------------------------------------------------------


def _compare(source: Source, recorded: dict) -> None:
    current = sources.fingerprint(source)
    if current != recorded:
        changed = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
        raise SourceError(
            sources.display_url(source),
            f"changed since it was staged ({', '.join(changed)} differ): releases would mix two versions; "
            "restore the original or make a new challenge",
        )


def _stage_now(challenge: Challenge) -> StagedSource:
    folder = settings.staging_dir(challenge.name)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _stage_into(challenge, folder)
    except BaseException:
        if made_folder:  # a refused source leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _stage_into(challenge: Challenge, folder: Path) -> StagedSource:
    source = challenge.source
    before = sources.fingerprint(source)
    local, sha = sources.fetch(source)
    lf = sources.scan_local(source, local)
    _check_columns(challenge, lf)
    if byte_range_eligible(challenge):
        staged = _stage_offsets(challenge, folder, local, sha, before, lf)
        if staged is not None:
            sources.discard_fetched(source)
            return staged
    tmp = folder / f".{DATA}.{uuid.uuid4().hex}.tmp"
    shuffled_tmp = tmp.with_suffix(".shuffled")
    try:
        with sources.source_errors(source, "cannot stage"):
            lf.sink_parquet(tmp, compression="lz4", row_group_size=ROW_GROUP, statistics=False)
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(tmp).metadata.num_rows
        if rows == 0:
            raise SourceError(sources.display_url(source), "has no data rows")
        if challenge.output.shuffle:
            shuffle_parquet(tmp, shuffled_tmp, challenge.output.seed or 0)
            shuffled_tmp.replace(tmp)
        columns, origin = column_types(challenge, tmp)
        if sha is None:  # local, uncompressed: hash now, it is still in the page cache
            sha = sources.sha256_file(local)
        if sources.fingerprint(source) != before:
            raise SourceError(sources.display_url(source), "changed while it was being staged; try again")
        durable.fsync_file(tmp)
        tmp.replace(folder / DATA)
        staged = StagedSource(
            path=folder / DATA, rows=rows, fingerprint=before, columns=columns, types_origin=origin,
            source_sha256=sha, shuffled=challenge.output.shuffle,
        )
        write_json_atomically(folder / META, {k: v for k, v in asdict(staged).items() if k != "path"})
    finally:
        tmp.unlink(missing_ok=True)
        shuffled_tmp.unlink(missing_ok=True)
    sources.discard_fetched(source)
    return staged


# --- the "offsets" kind: a byte-offset index of the source's text -----------------------------

_NL, _CR, _QUOTE, _COMMA, _BRACE = 10, 13, 34, 44, 123
_EOF = -1  # stands for "before the first byte" / "after the last byte" in the quote checks


def _stage_offsets(
    challenge: Challenge, folder: Path, local: Path, sha: str | None, before: dict, lf: pl.LazyFrame
) -> StagedSource | None:
    """Stage ``local`` (the source's bytes) as a byte-offset index; None when its text is not
    one ppipe cuts by bytes (then the caller stages Parquet). SourceError as the Parquet path."""
    source = challenge.source
    url = sources.display_url(source)
    token = uuid.uuid4().hex
    tmp_index, tmp_blocks = folder / f".{INDEX}.{token}.tmp", folder / f".{BLOCKS}.{token}.tmp"
    try:
        # polars (its own threads) counts the rows (CSV) or parses every record (NDJSON) while
        # the byte pass indexes, hashes and (CSV) validates the text.
        with ThreadPoolExecutor(1) as pool:
            parsed = pool.submit(_polars_rows, source, lf)
            try:
                with sources.source_errors(source, "cannot stage"):
                    try:
                        scanned = index_text(local, tmp_index, tmp_blocks, source.format, hash_it=sha is None)
                    except BadText as exc:
                        raise SourceError(url, f"cannot stage: {exc}") from None
            except Exception:
                parsed.result()  # polars' error, when there is one, says more
                raise
            schema, polars_rows = parsed.result()
        if scanned is None:  # the Parquet path decides (and says what is wrong, if anything)
            return None
        if polars_rows == 0:
            raise SourceError(url, "has no data rows")
        rows, digest = scanned
        if rows != polars_rows:  # never cut by an index that disagrees with polars
            raise SourceError(url, f"cannot be indexed safely: {rows} rows by line breaks, {polars_rows} counted by polars")
        if sources.fingerprint(source) != before:
            raise SourceError(url, "changed while it was being staged; try again")
        if sources.needs_fetch(source):  # the fetched (decompressed) copy becomes the staged text
            text = folder / f"source.{source.format}"
            durable.fsync_file(local)
            os.replace(local, text)
            text_record = text.name
        else:  # local and uncompressed: cut from the source itself, every block CRC-checked
            text, text_record = Path(local).resolve(), str(Path(local).resolve())
        for tmp, final in ((tmp_blocks, BLOCKS), (tmp_index, INDEX)):
            durable.fsync_file(tmp)
            tmp.replace(folder / final)
        names = list(schema.names())
        if source.format == "csv":
            columns = {n: "string" for n in names}
        else:
            columns = {n: _type_name(schema[n]) for n in names}
        staged = StagedSource(
            path=folder / INDEX, rows=rows, fingerprint=before, columns=columns,
            types_origin={n: "source" for n in names}, source_sha256=sha or digest, shuffled=False,
            kind="offsets", text=text,
        )
        record = {k: v for k, v in asdict(staged).items() if k != "path"}
        write_json_atomically(folder / META, {**record, "text": text_record})
    finally:
        tmp_index.unlink(missing_ok=True)
        tmp_blocks.unlink(missing_ok=True)
    return staged


def _polars_rows(source: Source, lf: pl.LazyFrame) -> tuple[pl.Schema, int]:
    """(schema, rows) as polars reads the source. CSV: ``len()`` only, which counts records
    (quote-aware) without splitting fields: cheap; the fields are checked by :func:`index_text`.
    NDJSON: one full parse that writes nothing (null_count needs every column built), so a
    malformed record fails as it does when staging Parquet."""
    with sources.source_errors(source, "cannot stage"):
        schema = lf.collect_schema()
        if source.format == "csv":
            return schema, int(lf.select(pl.len()).collect().item())
        counts = lf.select(pl.len().alias("\x00ppipe_rows"), pl.all().null_count()).collect(engine="streaming")
    return schema, int(counts.item(0, 0))


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
            if not (self.carry == 0 and length == 1 and last == _CR):
                self._ragged(self.lines, self.carry)

    def _ragged(self, row: int, delimiters: int) -> None:
        if self.ragged is None:
            more = "more" if delimiters > self.header else "fewer"
            n = delimiters + 1
            self.ragged = (f"has a row with {more} fields than the header (ragged CSV): "
                           f"row {row} has {n} field{'s' * (n != 1)}, the header has {self.header + 1}")


def index_text(path: Path, index_out: Path, blocks_out: Path, fmt: str, hash_it: bool = True):
    """Write the row offsets of text file ``path`` to ``index_out`` and the CRC-32 of each of its
    BLOCK-byte blocks to ``blocks_out``; returns (rows, sha256 hex or None).

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
    """
    csv = fmt == "csv"
    check = _CsvCheck() if csv else None
    digest = hashlib.sha256() if hash_it else None
    parity, base, rows, prev_byte = 0, 0, 0, _EOF
    with open(path, "rb", buffering=0) as f, open(index_out, "wb") as index, open(blocks_out, "wb") as blocks, \
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
            checksums = hasher.submit(_checksum, current, digest)
            upcoming = hasher.submit(read, k)  # into the other buffer, whose checksums are done
            data = np.frombuffer(current, np.uint8)
            if csv:
                # separators: delimiters and line breaks, in order; those inside quotes dropped
                seps = np.flatnonzero((data == _NL) | (data == _COMMA))
                if parity or current.find(b'"') != -1:
                    next_byte = _first_byte(upcoming.result())
                    quotes = np.flatnonzero(data == _QUOTE)
                    if not _quotes_well_formed(data, quotes, parity, prev_byte, next_byte):
                        return None
                    seps = seps[((parity + np.searchsorted(quotes, seps)) & 1) == 0]
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
            if check.ragged:
                raise BadText(check.ragged)
        index.write(np.array([base], "<i8").tobytes())
    return (rows if csv else rows + 1), (digest.hexdigest() if digest is not None else None)


def _first_byte(chunk: bytearray) -> int:
    return chunk[0] if chunk else _EOF


def _checksum(chunk: bytearray, digest) -> bytes:
    """Feed ``chunk`` to ``digest`` (if any); the CRC-32 of each of its BLOCK-byte blocks, as bytes."""
    if digest is not None:
        digest.update(chunk)
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


def read_offsets(staged: StagedSource, *rows: int) -> list[int]:
    """Byte offsets of the given rows (``staged.rows`` = the end of the data) in the staged text."""
    return [int(np.fromfile(staged.path, dtype="<i8", count=1, offset=8 * r)[0]) for r in rows]


def copy_text(challenge: Challenge, staged: StagedSource, ranges: list[tuple[int, int]], out: BinaryIO) -> tuple[str, int]:
    """Write the bytes of each [lo, hi) range of the staged text to ``out``; returns the sha256
    (hex) and size of what was written. Each block read is checked against its CRC-32 from
    staging (while the previous piece is being written): SourceError if the text changed since
    staging, and then what was written must be thrown away."""
    crcs = np.fromfile(staged.path.with_name(BLOCKS), dtype="<u4")
    digest, size, per_chunk = hashlib.sha256(), 0, SCAN_CHUNK // BLOCK
    buffer = memoryview(bytearray(SCAN_CHUNK))  # reused: no fresh pages to fault in per chunk
    with open(staged.text, "rb", buffering=0) as f, ThreadPoolExecutor(1) as checker:
        for lo, hi in ranges:
            if lo >= hi:
                continue
            first, last = lo // BLOCK, (hi - 1) // BLOCK
            f.seek(first * BLOCK)
            for block in range(first, last + 1, per_chunk):
                chunk = buffer[:_read_into(f, buffer[:min(per_chunk, last + 1 - block) * BLOCK])]
                piece = chunk[max(lo - block * BLOCK, 0):hi - block * BLOCK]
                check = checker.submit(_check_and_hash, challenge, chunk, block, crcs, digest, piece)
                out.write(piece)  # hashlib, zlib and file writes release the GIL: both run at once
                check.result()
                size += len(piece)
    return digest.hexdigest(), size


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
    digest.update(piece)


def _check_columns(challenge: Challenge, lf: pl.LazyFrame) -> None:
    with sources.source_errors(challenge.source):
        names = lf.collect_schema().names()
    url = sources.display_url(challenge.source)
    if challenge.output.row_id and ROW_ID in names:
        raise SourceError(url, f"already has a column named {ROW_ID!r}: set output.row_id to false or rename it")
    unknown = sorted(set(challenge.source.column_types) - set(names))
    if unknown:
        raise SourceError(url, f"source.column_types names columns it does not have: {', '.join(unknown)}")


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` via a fsynced temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    durable.fsync_dir(path.parent)


# --- shuffle -----------------------------------------------------------------------------------


def shuffle_parquet(src: Path, dst: Path, seed: int) -> None:
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
        for batch in parquet.iter_batches(batch_size=ROW_GROUP):
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
                out.write_table(bucket.take(rng.permutation(len(bucket))), row_group_size=ROW_GROUP)
                path.unlink()
    finally:
        for path in bucket_paths:
            path.unlink(missing_ok=True)


def _schema_with_row_id(parquet: pq.ParquetFile) -> pa.Schema:
    import pyarrow as pa

    return parquet.schema_arrow.append(pa.field(STAGED_ROW_ID, pa.int64()))


# --- column types ------------------------------------------------------------------------------


def needs_types(challenge: Challenge) -> bool:
    """True when text (CSV/TSV) is converted to a typed format, so column types must be chosen."""
    return challenge.source.format in sources.TEXT_FORMATS and challenge.output.format != "csv"


def column_types(challenge: Challenge, staged_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(column -> type name as delivered, column -> "source" | "inferred" | "declared").

    Text kept as text: every column "string" from the "source". Text converted: declared
    types, others inferred over *all* staged rows (one streaming pass); a declared type that
    some value does not fit is a SourceError now rather than a failed release later. Typed
    sources (Parquet, JSON, NDJSON) keep their types unless declared.
    """
    schema = pl.scan_parquet(staged_path).collect_schema()
    names = [n for n in schema.names() if n != STAGED_ROW_ID]
    declared = challenge.source.column_types
    if challenge.source.format in sources.TEXT_FORMATS and not needs_types(challenge):
        return {n: "string" for n in names}, {n: "source" for n in names}
    if challenge.source.format not in sources.TEXT_FORMATS:
        _check_declared(challenge.source, staged_path, declared, text=False)
        columns = {n: declared.get(n) or _type_name(schema[n]) for n in names}
        return columns, {n: "declared" if n in declared else "source" for n in names}
    _check_declared(challenge.source, staged_path, declared, text=True)
    inferred = _infer_text_types(staged_path, [n for n in names if n not in declared])
    columns = {n: declared.get(n) or inferred[n] for n in names}
    return columns, {n: "declared" if n in declared else "inferred" for n in names}


def _type_name(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "string"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return str(dtype)


_INT_LIKE_WITH_LEADING_ZERO = r"^[+-]?0\d"
INFERENCE_ORDER = ("bool", "int", "float", "date", "datetime")


def text_to(column: str, type_name: str) -> pl.Expr:
    """Expression converting text column ``column`` to ``type_name``; an empty field becomes null,
    a value that does not fit becomes null (the staging checks made sure none of those exist)."""
    text = pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column))
    if type_name == "string":
        return pl.col(column)
    if type_name == "int":
        return text.str.to_integer(strict=False)
    if type_name == "float":
        return text.cast(pl.Float64, strict=False)
    if type_name == "bool":
        lower = text.str.to_lowercase()
        return pl.when(lower == "true").then(True).when(lower == "false").then(False).otherwise(None)
    if type_name == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    if type_name == "datetime":
        return text.str.replace(" ", "T", literal=True).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
    raise ValueError(f"unknown type {type_name!r}")


def _misfits(column: str, type_name: str) -> pl.Expr:
    """Number of non-empty values of text column ``column`` that ``type_name`` cannot hold exactly."""
    present = pl.col(column).is_not_null() & (pl.col(column) != "")
    bad = present & text_to(column, type_name).is_null()
    if type_name in ("int", "float"):  # "00501" is an identifier, not the number 501
        bad = bad | (present & pl.col(column).str.contains(_INT_LIKE_WITH_LEADING_ZERO))
    return bad.sum().alias(f"{column}\x00{type_name}")


def _infer_text_types(staged_path: Path, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    checks = [_misfits(n, t) for n in names for t in INFERENCE_ORDER]
    checks += [(pl.col(n).is_not_null() & (pl.col(n) != "")).sum().alias(f"{n}\x00present") for n in names]
    counts = pl.scan_parquet(staged_path).select(checks).collect(engine="streaming").row(0, named=True)
    result = {}
    for n in names:
        fits = [t for t in INFERENCE_ORDER if counts[f"{n}\x00{t}"] == 0]
        result[n] = fits[0] if fits and counts[f"{n}\x00present"] > 0 else "string"
    return result


def _check_declared(source: Source, staged_path: Path, declared: dict[str, str], text: bool) -> None:
    if not declared:
        return
    lf = pl.scan_parquet(staged_path)
    if text:
        checks = [_misfits(n, t).alias(n) for n, t in declared.items()]
    else:
        checks = [
            (pl.col(n).is_not_null() & pl.col(n).cast(TYPE_DTYPES[t], strict=False).is_null()).sum().alias(n)
            for n, t in declared.items()
        ]
    with sources.source_errors(source, "checking source.column_types"):
        counts = lf.select(checks).collect(engine="streaming").row(0, named=True)
    bad = {n: c for n, c in counts.items() if c}
    if bad:
        detail = ", ".join(f"{n} ({c} values are not {declared[n]})" for n, c in bad.items())
        raise SourceError(sources.display_url(source), f"does not fit source.column_types: {detail}")


def declared_or_inferred_cast(staged: StagedSource, text_source: bool) -> list[pl.Expr]:
    """Expressions turning staged columns into their delivered types (identity for kept columns)."""
    exprs = []
    for name, type_name in staged.columns.items():
        origin = staged.types_origin[name]
        if origin == "source":
            exprs.append(pl.col(name))
        elif text_source:
            exprs.append(text_to(name, type_name).alias(name))
        else:
            exprs.append(pl.col(name).cast(TYPE_DTYPES[type_name]).alias(name))
    return exprs
