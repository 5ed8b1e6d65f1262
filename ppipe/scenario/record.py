"""The organiser-only record of a scenario: what was done to which rows and columns.

One JSON file per cut release, ``PPIPE_HOME/scenario/<challenge>/<release>.json`` (folders
0700, files 0600), written when the release is cut and never uploaded: participants see the
effects, never the script. It also keeps what the release ships beside its table (files and
late labels, with sha256 and size), which the manifest lists without saying why.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

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
        # compact: row lists can hold many thousands of numbers (the C encoder only runs without indent)
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
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
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_all(challenge: str) -> list[dict]:
    """Every release's record, in release order."""
    where = folder(challenge)
    records = [json.loads(p.read_text(encoding="utf-8")) for p in where.glob("*.json")] if where.is_dir() else []
    return sorted(records, key=lambda r: r["index"])


def shipment(challenge: str, release: str) -> dict:
    """What release ``release`` ships beside its table (``files``, ``labels``), for the manifest."""
    record = read(challenge, release) or {}
    return record.get("shipment") or {}


def remove(challenge: str) -> None:
    """Forget a deleted challenge's records."""
    import shutil

    shutil.rmtree(folder(challenge), ignore_errors=True)
