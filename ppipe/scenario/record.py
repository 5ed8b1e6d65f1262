"""The organiser-only record of a scenario: what was done to which rows and columns.

One JSON file per cut release, ``PPIPE_HOME/scenario/<challenge>/<release>.json`` (folders
0700, files 0600), written when the release is cut and never uploaded: participants see the
effects, never the script. It also keeps what the release ships beside its table (files and
late labels, with sha256 and size), which the manifest lists without saying why.

The source rows an event touched (``rows``, a missing event's ``rows_per_column``) can be many
thousands of numbers: the file keeps them packed (:func:`pack`: the first number, then the
differences in the narrowest integer type that holds them, base64), which costs a fraction of
writing them as JSON numbers; :func:`read` gives them back as lists.
"""

from __future__ import annotations

import array
import base64
import itertools
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from ppipe import durable, settings


def folder(challenge: str) -> Path:
    return settings.home() / "scenario" / challenge


def write(challenge: str, release: str, record: dict) -> Path:
    """Store the record of one release (atomically, private)."""
    where = folder(challenge)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(where.parent, 0o700)
    os.chmod(where, 0o700)
    path = where / f"{release}.json"
    tmp = where / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        text = json.dumps(_rows_packed(record), separators=(",", ":"), ensure_ascii=False)
        with durable.open_private(tmp) as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    durable.fsync_dir(where)
    return path


def read(challenge: str, release: str) -> dict | None:
    """The record of one release, or None if it was not cut (with a scenario or files) yet."""
    path = folder(challenge) / f"{release}.json"
    return _rows_unpacked(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def read_all(challenge: str) -> list[dict]:
    """Every release's record, in release order."""
    where = folder(challenge)
    records = [_rows_unpacked(json.loads(p.read_text(encoding="utf-8"))) for p in where.glob("*.json")] \
        if where.is_dir() else []
    return sorted(records, key=lambda r: r["index"])


def shipment(challenge: str, release: str) -> dict:
    """What release ``release`` ships beside its table (``files``, ``labels``), for the manifest."""
    path = folder(challenge) / f"{release}.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}  # rows stay packed
    return record.get("shipment") or {}


def remove(challenge: str) -> None:
    """Forget a deleted challenge's records."""
    import shutil

    shutil.rmtree(folder(challenge), ignore_errors=True)


# --- row numbers, packed --------------------------------------------------------------------

_TYPECODES = {array.array(code).itemsize: code for code in "bhilq"}  # width in bytes -> array typecode


def pack(rows: Any) -> dict:
    """Row numbers (a numpy array or a list, in their order) as ``{"packed": "i<width>", "first",
    "base64"}``: the first number, then each one's difference to the one before, little-endian."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    steps = np.diff(rows)
    width = next(w for w in (1, 2, 4, 8) if not len(steps) or
                 (int(steps.min()) >= -(1 << (8 * w - 1)) and int(steps.max()) < 1 << (8 * w - 1)))
    return {"packed": f"i{width}", "first": int(rows[0]) if len(rows) else None,
            "base64": base64.b64encode(steps.astype(f"<i{width}").tobytes()).decode("ascii")}


def unpack(packed: dict) -> list[int]:
    """The row numbers :func:`pack` packed, as a list (numpy not needed)."""
    if packed["first"] is None:
        return []
    steps = array.array(_TYPECODES[int(packed["packed"][1:])], base64.b64decode(packed["base64"]))
    if sys.byteorder == "big":
        steps.byteswap()
    return list(itertools.accumulate(steps, initial=packed["first"]))


def _rows_packed(record: dict) -> dict:
    events = []
    for event in record.get("events", []):
        event = dict(event)
        if not isinstance(event.get("rows"), str):  # "all" stays as it is
            event["rows"] = pack(event["rows"])
        if "rows_per_column" in event:
            event["rows_per_column"] = {c: pack(rows) for c, rows in event["rows_per_column"].items()}
        events.append(event)
    return {**record, "events": events}


def _rows_unpacked(record: dict) -> dict:
    for event in record.get("events", []):
        if isinstance(event.get("rows"), dict):
            event["rows"] = unpack(event["rows"])
        if "rows_per_column" in event:
            event["rows_per_column"] = {c: unpack(rows) for c, rows in event["rows_per_column"].items()}
    return record
