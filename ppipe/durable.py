"""Durable local files: written under a temporary name, fsynced, renamed, the folder fsynced.

A crash then leaves either nothing or the whole file under the final name. The temporaries a
killed run leaves behind belong to no live run once they are older than a claim lease, and
are removed by the next run that writes there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ppipe.settings import claim_lease


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
