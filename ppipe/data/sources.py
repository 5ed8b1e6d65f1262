"""Opening and reading a source: any format, local or remote, compressed or not.

Remote and compressed sources are first streamed into a plain local file (the "fetched
copy"), because polars reads local files fastest and hangs or buffers everything on some
compressed inputs; the raw bytes are hashed on the way. The fetched copy is cached under
``PPIPE_HOME/fetched`` keyed by URL and fingerprint, so counting rows at creation and
staging afterwards read a remote source once. Every failure becomes a one-line
:class:`SourceError` naming the source (URL without credentials) and the problem.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import uuid
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

import polars as pl

from ppipe import settings, urls
from ppipe.errors import SourceError
from ppipe.challenge.spec import Source

if TYPE_CHECKING:  # fsspec (and asyncio with it) is imported for remote sources only
    import fsspec

CHUNK = 1 << 20
SAMPLE = 1 << 20  # bytes hashed at each end of a local file by fingerprint()
TEXT_FORMATS = ("csv", "tsv")
NDJSON_INFER_ROWS = 10_000

try:  # zstandard is a dependency; the guard only keeps error mapping importable without it
    from zstandard import ZstdError
except ImportError:  # pragma: no cover
    ZstdError = OSError  # type: ignore[misc,assignment]


# --- naming and error mapping ----------------------------------------------------------------


def display_url(source: Source) -> str:
    """The source URL as shown in messages: no user:password@, no query string."""
    return urls.shown(source.url)


def _scrub(text: str, source: Source) -> str:
    """First line of ``text``, with every storage-option value and URL credential masked."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    for value in source.storage_options.values():
        if isinstance(value, str) and len(value) >= 3:
            line = line.replace(value, "***")
    line = re.sub(r"(://)[^/@\s]*@", r"\1***@", line)
    line = re.sub(r"(\w+://[^\s?#'\"]*)[?#][^\s'\")]*", r"\1", line)  # query strings may hold signatures
    return line[:300]


def _unreachable(exc: BaseException) -> str | None:
    """Why a store could not be reached, when that is what lies under ``exc`` (fsspec's HTTP
    filesystem reports a refused connection as FileNotFoundError): None when it was reached."""
    seen = exc
    while seen is not None:
        name = type(seen).__name__
        if isinstance(seen, (ConnectionError, TimeoutError)) or name.startswith(("ClientConnector", "ServerTimeout",
                                                                                 "ConnectTimeout", "EndpointConnection")):
            text = str(seen).lower()
            if "refused" in text or isinstance(seen, ConnectionRefusedError):
                return "cannot connect: connection refused"
            return "cannot connect: " + ("timed out" if "time" in text or isinstance(seen, TimeoutError)
                                         else "the host does not answer")
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: BaseException, source: Source) -> str:
    unreachable = _unreachable(exc)
    if unreachable:
        return unreachable
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, pl.exceptions.NoDataError):
        return "is empty"
    if isinstance(exc, EOFError):
        return f"is truncated or corrupt {source.compression or ''} data ({_scrub(exc, source)})".replace("  ", " ")
    if isinstance(exc, (gzip.BadGzipFile, zlib.error, ZstdError)):
        return f"is not valid {source.compression} data ({_scrub(exc, source)})"
    if isinstance(exc, UnicodeDecodeError) or "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
        return "is not valid UTF-8 text"
    if "more fields than defined" in str(exc):
        return "has a row with more fields than the header (ragged CSV)"
    return f"cannot be read as {source.format}: {type(exc).__name__}: {_scrub(exc, source)}"


@contextlib.contextmanager
def source_errors(source: Source, doing: str = "") -> Iterator[None]:
    """Turn any storage, decompression or parsing failure into a one-line SourceError."""
    try:
        yield
    except SourceError:
        raise
    except Exception as exc:  # polars, fsspec, botocore, gcsfs, aiohttp... all end up here
        problem = _describe(exc, source)
        raise SourceError(display_url(source), f"{doing}: {problem}" if doing else problem) from None


# --- filesystem access -----------------------------------------------------------------------


def filesystem(source: Source) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and path of the source (local paths use the local filesystem)."""
    import fsspec.core

    with source_errors(source, "cannot open"):
        return fsspec.core.url_to_fs(source.url, **source.storage_options)


def fingerprint(source: Source) -> dict:
    """A JSON-able identity of the source's current content, cheap enough to check before each release.

    Local: ``{"size", "mtime_ns", "sample_sha256"}`` (sha256 of the first and last MiB).
    Remote: ``{"size", "etag"?, "mtime"?, "md5"?, "generation"?}`` from the store's metadata
    (an ETag or MD5 is the store's own checksum). SourceError if the source is missing.
    """
    if not source.is_remote:
        with source_errors(source):
            stat = os.stat(source.url)
            if not Path(source.url).is_file():
                raise IsADirectoryError(source.url)
            return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample_sha256": _sample_hash(source.url)}
    fs, path = filesystem(source)
    with source_errors(source):
        info = fs.info(path)
        if info.get("type") == "directory":
            raise IsADirectoryError(path)
    metadata_keys = {
        "etag": ("ETag", "etag"), "mtime": ("LastModified", "last_modified", "updated", "mtime", "Last-Modified"),
        "md5": ("md5Hash",), "generation": ("generation", "VersionId"),
    }
    result: dict = {"size": info.get("size")}
    for name, keys in metadata_keys.items():
        value = next((info[k] for k in keys if info.get(k) not in (None, "")), None)
        if value is not None:
            result[name] = str(value).strip('"')
    return result


def _sample_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(SAMPLE))
        size = os.fstat(f.fileno()).st_size
        if size > SAMPLE:
            f.seek(max(SAMPLE, size - SAMPLE))
            digest.update(f.read(SAMPLE))
    return digest.hexdigest()


def needs_fetch(source: Source) -> bool:
    """True when the source must be copied locally first (remote or compressed)."""
    return source.is_remote or source.compression is not None


class _HashingReader:
    """Wraps a binary file: every byte read also feeds a sha256 (so the raw source is hashed once)."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.sha256 = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        return data

    def readable(self) -> bool:
        return True


def _decompressed(reader: _HashingReader, compression: str | None):
    if compression == "gzip":
        return gzip.GzipFile(fileobj=reader, mode="rb")  # type: ignore[arg-type]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(reader, read_across_frames=True)
    return contextlib.nullcontext(reader)


def _fetch_dir(source: Source) -> Path:
    key = hashlib.sha256(source.url.encode()).hexdigest()[:24]
    return settings.home() / "fetched" / key


def fetch(source: Source) -> tuple[Path, str | None]:
    """A local, uncompressed file with the source's content, and the sha256 of the raw source bytes.

    Local uncompressed sources are used in place (the sha256 is then None: the caller hashes
    when it can afford to). Others are streamed (bounded memory) into a cached copy; a cached
    copy whose recorded fingerprint differs from the source's current one is replaced. The
    copy is written to a temporary name and renamed, so a failure leaves nothing behind.
    """
    if not needs_fetch(source):
        fingerprint(source)  # raises "not found" etc.
        return Path(source.url), None
    folder = _fetch_dir(source)
    data, meta = folder / "data", folder / "fetched.json"
    current = fingerprint(source)
    if meta.is_file() and data.is_file():
        recorded = json.loads(meta.read_text())
        if recorded.get("fingerprint") == current and recorded.get("url") == source.url:
            return data, recorded.get("sha256")
    settings.private_dir(folder)
    tmp = folder / f".data-{uuid.uuid4().hex}.tmp"
    fs, path = filesystem(source)
    try:
        with source_errors(source, "cannot fetch"):
            with fs.open(path, "rb") as raw:
                reader = _HashingReader(raw)
                with _decompressed(reader, source.compression) as stream, open(tmp, "wb") as out:
                    while block := stream.read(CHUNK):
                        out.write(block)
                    while reader.read(CHUNK):  # hash any trailing bytes the decompressor left unread
                        pass
        tmp.replace(data)
    finally:
        tmp.unlink(missing_ok=True)
    sha = reader.sha256.hexdigest()
    meta.write_text(json.dumps({"url": source.url, "fingerprint": current, "sha256": sha}))
    settings.make_private(folder)
    return data, sha


def discard_fetched(source: Source) -> None:
    """Delete the cached fetched copy of the source, if any (after staging, it is not needed)."""
    folder = _fetch_dir(source)
    for name in ("data", "fetched.json"):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


# --- scanning ----------------------------------------------------------------------------------


def scan_local(source: Source, path: Path) -> pl.LazyFrame:
    """A lazy scan of the local, uncompressed file ``path`` holding the source's content.

    CSV/TSV: every column a string (TSV fields are taken verbatim, no quoting); an unquoted empty field is null (missing) and a quoted
    ``""`` is the empty string, so the two stay distinguishable. Parquet and NDJSON keep their
    types. A JSON array is parsed in memory (polars has no streaming JSON-array reader).
    """
    with source_errors(source):
        if source.format in TEXT_FORMATS:
            tsv = source.format == "tsv"
            return pl.scan_csv(
                # TSV (IANA text/tab-separated-values) has no quoting: a '"' is an ordinary character
                path, separator="\t" if tsv else ",", quote_char=None if tsv else '"', infer_schema=False,
                empty_string_is_null=True, raise_if_empty=True, encoding="utf8", glob=False,
            )
        if source.format == "parquet":
            return pl.scan_parquet(path, glob=False)
        if source.format == "ndjson":
            return pl.scan_ndjson(path, infer_schema_length=NDJSON_INFER_ROWS)
        if source.format == "json":
            return pl.read_json(path).lazy()
    raise SourceError(display_url(source), f"unknown format {source.format!r}")


def scan_source(source: Source) -> pl.LazyFrame:
    """A lazy frame over the source's rows (fetching a remote or compressed source first)."""
    path, _ = fetch(source)
    return scan_local(source, path)


def count_rows(source: Source) -> int:
    """The number of data rows in the source (header excluded), streaming.

    SourceError if it cannot be read, is empty, or has a header but no rows.
    """
    path, _ = fetch(source)
    if os.path.getsize(path) == 0:
        raise SourceError(display_url(source), "is empty")
    with source_errors(source):
        if source.format == "parquet":
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(path).metadata.num_rows
        else:
            rows = scan_local(source, path).select(pl.len()).collect().item()
    if rows == 0:
        raise SourceError(display_url(source), "has no data rows")
    return int(rows)
