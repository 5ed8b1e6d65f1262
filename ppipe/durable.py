"""Durable local files and their hashes: written under a temporary name, fsynced, renamed, the
folder fsynced; :func:`file_sha256` is the one way ppipe hashes a file.

A crash then leaves either nothing or the whole file under the final name. The temporaries a
killed run leaves behind belong to no live run once they are older than a claim lease, and
are removed by the next run that writes there.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from ppipe.settings import claim_lease, make_private

T = TypeVar("T")


def open_private(path: Path, mode: str = "w", encoding: str | None = "utf-8"):
    """``path`` opened for writing (created or truncated), readable by its owner only whatever the
    umask: what ppipe writes under PPIPE_HOME. ``mode`` "w" (text) or "wb"."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file already there keeps its mode through O_CREAT
    return open(fd, mode, encoding=None if "b" in mode else encoding)


def fsync_file(path: Path) -> None:
    """Flush a written file's bytes to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); silently skipped where the OS cannot."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale(folder: Path, pattern: str) -> int:
    """Delete files in ``folder`` matching ``pattern`` older than a claim lease; returns how many."""
    cutoff = time.time() - claim_lease().total_seconds()
    removed = 0
    for path in folder.glob(pattern):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # removed meanwhile by another run
            continue
    return removed


def write_private(final: Path, write: Callable[[Path], T]) -> T:
    """``write(tmp)`` to a temporary name beside ``final``, then the file made private (polars and
    pyarrow write with the process umask) and renamed to ``final``, and the folder fsynced; returns
    what ``write`` returned. A failure leaves nothing under either name."""
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        written = write(tmp)
        make_private(tmp)  # before it takes its final name: never readable by others
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(final.parent)
    return written


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` via a fsynced temporary file in the same folder and a
    rename; the file is readable by its owner only (everything written this way is under PPIPE_HOME)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open_private(tmp) as f:
            json.dump(payload, f, indent=2, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def sha256_of(stream: BinaryIO, chunk: int = 1 << 20) -> tuple[int, str]:
    """(size, sha256 hex) of a binary stream, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while block := stream.read(chunk):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def file_sha256(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a local file: the one way ppipe hashes a file."""
    with open(path, "rb") as stream:
        return sha256_of(stream)
