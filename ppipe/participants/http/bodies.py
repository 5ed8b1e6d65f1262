"""Answer bodies: JSON, CSV or Parquet, read into a frame with limits; a bad body is one line naming what."""

from __future__ import annotations

import io
import json
from typing import Any

import polars as pl
from starlette.requests import Request

from ppipe.participants.service import frame_of

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
MAX_ROWS = 1_000_000
MAX_UNCOMPRESSED = 256 << 20  # a small Parquet body must not unpack into gigabytes


class BodyError(ValueError):
    """The body cannot be read: ``status`` is the HTTP status (413, 415, 422)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is over ``limit`` bytes, whatever Content-Length claims."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"body: {int(declared)} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"body: over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_type(content_type: str) -> None:
    """415 unless the body is JSON, CSV or Parquet."""
    if content_type not in JSON_TYPES + CSV_TYPES + PARQUET_TYPES:
        raise BodyError(415, f"Content-Type {content_type or '(none)'!r}: use application/json, text/csv "
                             "or application/vnd.apache.parquet")


def parse(body: bytes, kind: str, content_type: str) -> pl.DataFrame:
    """The answer as a frame: rows (validation) or row_id + prediction (prediction)."""
    check_type(content_type)
    if content_type in JSON_TYPES:
        return _json(body, kind)
    if content_type in CSV_TYPES:
        return _guarded(lambda: pl.read_csv(io.BytesIO(body), infer_schema=False), "a CSV file with a header line")
    return _guarded(lambda: _parquet(body), "a Parquet file")


def _json(body: bytes, kind: str) -> pl.DataFrame:
    key = "rows" if kind == "validation" else "predictions"
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(422, f"body: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise BodyError(422, f"body.{key}: a {kind} answer is an object with a list '{key}'")
    rows: list[Any] = document[key]
    if len(rows) > MAX_ROWS:
        raise BodyError(422, f"body.{key}: at most {MAX_ROWS} rows")
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BodyError(422, f"body.{key}.{position}: must be an object")
        for column, value in row.items():
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise BodyError(422, f"body.{key}.{position}.{column}: must be a string, number, boolean or null")
    return frame_of(rows)


def _parquet(body: bytes) -> pl.DataFrame:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if metadata.num_rows > MAX_ROWS or unpacked > MAX_UNCOMPRESSED:
        raise BodyError(422, f"body: at most {MAX_ROWS} rows and {MAX_UNCOMPRESSED >> 20} MiB unpacked")
    return pl.from_arrow(pq.read_table(io.BytesIO(body)))


def _guarded(read, what: str) -> pl.DataFrame:
    """Run a reader on hostile bytes: any failure (a Rust panic included) is a 422, never a 500."""
    try:
        frame = read()
    except BodyError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - polars reports broken input as a PanicException (BaseException)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BodyError(422, f"body: not {what} ({first})") from None
    if not isinstance(frame, pl.DataFrame):
        raise BodyError(422, f"body: not {what}")
    return frame
