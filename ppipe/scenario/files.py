"""Releases that carry files: a source column references files shipped beside each release.

``files: {column, root}``: each value of ``column`` is a path relative to ``root`` (a folder
or an fsspec URL) or an absolute path/URL. Release k ships the files its rows reference under
``<release name>/`` beside the table, and the released column holds that relative path
(``release_3/images/cat_01.png``), so a participant opens it next to the table. A file
outside ``root`` goes to ``<release name>/_external/<12 hex of its URL's sha256>/<name>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import polars as pl

from ppipe import durable, settings
from ppipe.errors import SourceError, SpecError
from ppipe.challenge.scenario import Files

INDEX = "files.json"  # in the staged folder: each local referenced file's size, mtime and sha256
HASH_CHUNK = 1 << 20
THREADS = 4  # hashing releases the GIL; a few threads keep the disk busy


@dataclass(frozen=True)
class Referenced:
    """One referenced file: where it is read from and the path it ships as under the release."""

    source: str  # a local path or an fsspec URL
    relative: str  # posix path under the release folder


@dataclass(frozen=True)
class Shipped:
    """A file in a release: its name under the challenge location, the local copy, sha256, size."""

    name: str
    path: str
    sha256: str
    bytes: int

    def to_json(self) -> dict:
        return {"path": self.name, "sha256": self.sha256, "bytes": self.bytes}


def _is_url(value: str) -> bool:
    return "://" in value


def resolve(files: Files, value: str) -> Referenced:
    """Where ``value`` (a cell of the files column) is read from, and its path in the release.

    ValueError when a relative path leaves the root (``..``) or is empty.
    """
    value = value.strip()
    if not value:
        raise ValueError("an empty path")
    if value.startswith("file://"):
        value = value[len("file://"):]
    if _is_url(value) or os.path.isabs(value):
        root = files.root.rstrip("/") + "/"
        if value.startswith(root):
            return Referenced(value, _inside(value[len(root):], value))
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return Referenced(value, f"_external/{digest}/{posixpath.basename(value.rstrip('/'))}")
    relative = _inside(value, value)
    where = f"{files.root}/{relative}" if files.is_remote else os.path.join(files.root, relative)
    return Referenced(where, relative)


def _inside(relative: str, shown: str) -> str:
    normal = posixpath.normpath(relative.replace("\\", "/"))
    if normal in (".", "") or normal == ".." or normal.startswith("../") or normal.startswith("/"):
        raise ValueError(f"{shown!r} leaves the files root")
    return normal


# --- at create: every referenced file exists ------------------------------------------------


def check_exist(files: Files, values: Iterable[tuple[int, str | None]]) -> list[str]:
    """SpecError naming the row and the path of the first referenced file that does not exist
    (or leaves the root); returns the distinct files referenced (where each is read from).

    ``values`` are (source row number, cell) pairs; null cells reference nothing.
    """
    seen: dict[str, int] = {}
    for row, value in values:
        if value is None:
            continue
        try:
            referenced = resolve(files, value)
        except ValueError as exc:
            raise SpecError("files.column", f"{files.column} at source row {row}: {exc}") from None
        seen.setdefault(referenced.source, row)
    missing = _missing(list(seen), files)
    if missing:
        row = seen[missing[0]]
        more = f" ({len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise SpecError("files.column", f"{files.column} at source row {row}: {missing[0]} does not exist{more}")
    return list(seen)


def fingerprint(sources: list[str], folder: Path) -> Path:
    """Hash every local referenced file once, at create, into ``folder/files.json`` (size,
    mtime, sha256): the cut reuses a hash while size and mtime are unchanged, and refuses a file
    whose content changed since (releases would mix two versions, as with a changed source)."""
    local = [s for s in sources if not _is_url(s)]
    with ThreadPoolExecutor(THREADS) as pool:
        entries = dict(zip(local, pool.map(_stat_and_hash, local)))
    path = folder / INDEX
    tmp = folder / f".{INDEX}.tmp"
    with durable.open_private(tmp) as out:
        out.write(json.dumps(entries, separators=(",", ":")))
    durable.fsync_file(tmp)
    tmp.replace(path)
    return path


def known_hashes(folder: Path) -> dict[str, list]:
    """What :func:`fingerprint` recorded in ``folder`` (empty when nothing was)."""
    path = folder / INDEX
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _stat_and_hash(path: str) -> list:
    info = os.stat(path)
    size, digest = hash_file(Path(path))
    return [size, info.st_mtime_ns, digest]


def _missing(sources: list[str], files: Files) -> list[str]:
    local = [s for s in sources if not _is_url(s)]
    absent = [s for s in local if not os.path.isfile(s)]
    remote = [s for s in sources if _is_url(s)]
    if remote:
        import fsspec

        fs, _ = fsspec.core.url_to_fs(remote[0])
        listed = {fs.unstrip_protocol(p) for p in fs.find(files.root)} if files.is_remote else set()
        absent += [s for s in remote if s not in listed and not fs.isfile(s)]
    order = {s: i for i, s in enumerate(sources)}
    return sorted(absent, key=order.__getitem__)


# --- at the cut: the release's files, hashed --------------------------------------------------


def ship(files: Files, column: pl.Series, release_name: str, copies: Path,
         known: dict[str, list] | None = None) -> tuple[pl.Series, list[Shipped]]:
    """The released column (paths under ``release_name/``) and the files to ship, hashed.

    Local files are shipped from where they are, with the hash :func:`fingerprint` recorded
    (``known``) while they are unchanged; remote ones are fetched into ``copies`` (the
    release's local audit folder) first. A file referenced by several rows ships once.
    """
    referenced: dict[str, Referenced] = {}
    released = []
    for value in column.to_list():
        if value is None:
            released.append(None)
            continue
        ref = resolve(files, value)
        referenced.setdefault(ref.relative, ref)
        released.append(f"{release_name}/{ref.relative}")
    with ThreadPoolExecutor(THREADS) as pool:
        shipped = list(pool.map(lambda ref: _hashed(ref, release_name, copies, known or {}), referenced.values()))
    return pl.Series(column.name, released, pl.String), sorted(shipped, key=lambda s: s.name)


def _hashed(ref: Referenced, release_name: str, copies: Path, known: dict[str, list]) -> Shipped:
    name = f"{release_name}/{ref.relative}"
    if _is_url(ref.source):
        local = copies / ref.relative
        settings.private_dir(local.parent)
        import fsspec

        with fsspec.open(ref.source, "rb") as remote, durable.open_private(local, "wb") as out:
            size, digest = _copy_hashing(remote, out)
        return Shipped(name, str(local), digest, size)
    entry, info = known.get(ref.source), os.stat(ref.source)
    if entry and (entry[0], entry[1]) == (info.st_size, info.st_mtime_ns):
        return Shipped(name, ref.source, entry[2], entry[0])
    size, digest = hash_file(Path(ref.source))
    if entry and digest != entry[2]:
        raise SourceError(ref.source, "changed since the challenge was created: releases would mix two versions; "
                                      "restore it or make a new challenge")
    return Shipped(name, ref.source, digest, size)


def hash_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a local file."""
    with open(path, "rb") as stream:
        return _copy_hashing(stream, None)


def _copy_hashing(stream, out) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while block := stream.read(HASH_CHUNK):
        digest.update(block)
        size += len(block)
        if out is not None:
            out.write(block)
    return size, digest.hexdigest()
