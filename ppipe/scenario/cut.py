"""Cutting a release of a challenge with a scenario or files: the table and what ships beside it.

Called by the release cut (:meth:`ppipe.data.staged_parquet.StagedParquet.cut`) with two
callables, so this package does not depend on the data path (it sits below it): ``frame_of(planned)`` gives a release's rows
as delivered plus the hidden :data:`~ppipe.scenario.perturb.ROW`, and ``write(frame, path)``
writes a frame in the output format. What only waits on the disk (the labels files' fsyncs,
hashes and names, then the organiser's record with their hashes) is done in a thread while
the table is written; the cut waits for it (:attr:`Table.written`) before the table takes its
name, so a delivered release always has its labels files and its record.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from ppipe import durable, settings
from ppipe.scenario import files as files_
from ppipe.scenario import labels as labels_
from ppipe.scenario import record
from ppipe.scenario.perturb import ROW, Perturbed, perturb
from ppipe.challenge.scenario import Scenario

ROW_ID = "row_id"

FrameOf = Callable[[Any], pl.LazyFrame]
Write = Callable[[pl.LazyFrame, Path], None]


@dataclass(frozen=True)
class Extra:
    """A file shipped beside the release table: local path, name at the destination, sha256, size."""

    path: Path
    name: str
    sha256: str
    bytes: int


@dataclass
class Table:
    """The release table to write (lazy), how many rows it has, and the files shipped beside it."""

    frame: pl.LazyFrame
    rows: int
    extras: list[Extra] = field(default_factory=list)
    beside: Callable[[], list[Extra]] = list  # waits for the files written beside the table, gives them

    def written(self) -> None:
        """Called once the table is written: waits for what is written beside it, adds it to ``extras``."""
        self.extras = self.extras + self.beside()


def applies(challenge: Any) -> bool:
    """True when the challenge's releases are cut here (a scenario with events, or files)."""
    scenario = getattr(challenge, "scenario", None)
    return bool(scenario and scenario.events) or getattr(challenge, "files", None) is not None


def cut(challenge: Any, staged: Any, release: Any, frame_of: FrameOf, write: Write) -> Table:
    """Release ``release`` perturbed and its files shipped; its late labels and record are being
    written (:attr:`Table.written` waits for them and adds the labels files to ``extras``)."""
    names = labels_.release_names(challenge)
    scenario = challenge.scenario or Scenario()
    in_order = None if staged.shuffled else np.arange(release.start, release.stop, dtype=np.int64)
    done = perturb(frame_of(release), scenario, release.index, names, in_order)
    table, shipped = _ship_files(challenge, staged, release, done.frame)
    written = [_write_labels(challenge, staged, j, frame_of, write) for j in
               labels_.labels_shipped_with(challenge, release.index)]
    table = table.rename({ROW: ROW_ID}) if challenge.output.row_id else table.drop(ROW)
    columns = table.collect_schema().names()
    extras = [Extra(Path(s.path), s.name, s.sha256, s.bytes) for s in shipped]

    def keep() -> list[Extra]:
        labels = [labels_file.keep() for labels_file in written]
        record.write(challenge.name, release.name, _record(challenge, release, done, columns, shipped, labels))
        return [extra for extra, _ in labels]

    # no reference back to the Table: a cycle would keep the release's frame until the cyclic
    # collector ran, and the next cut would take fresh memory (page faults: ~15 ms a reordered release)
    return Table(table, done.height, extras, _in_background(keep))


def _in_background(work: Callable[[], Any]) -> Callable[[], Any]:
    """``work`` in this process's one scenario thread; returns the function that waits for its
    result. A forked child makes its own thread (it does not inherit its parent's)."""
    global _worker
    if _worker is None or _worker[0] != os.getpid():
        _worker = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="ppipe-scenario"))
    return _worker[1].submit(work).result


_worker: tuple[int, ThreadPoolExecutor] | None = None


def _ship_files(challenge: Any, staged: Any, release: Any, table: pl.LazyFrame) -> tuple[pl.LazyFrame, list]:
    spec = challenge.files
    if spec is None or spec.column not in table.collect_schema().names():
        return table, []
    copies = settings.releases_dir(challenge.name) / release.name
    paths = table.select(pl.col(spec.column).cast(pl.String)).collect().to_series()
    column, shipped = files_.ship(spec, paths, release.name, copies, files_.known_hashes(staged.path.parent))
    return table.with_columns(pl.lit(column).alias(spec.column)), shipped


@dataclass(frozen=True)
class _LabelsFile:
    """A labels file written under a temporary name, to be synced, hashed and named."""

    tmp: Path
    final: Path
    entry: dict  # file, release, rows (sha256 and bytes once kept)

    def keep(self) -> tuple[Extra, dict]:
        try:
            durable.fsync_file(self.tmp)
            size, digest = files_.hash_file(self.tmp)
            self.tmp.replace(self.final)
        finally:
            self.tmp.unlink(missing_ok=True)
        return Extra(self.final, self.final.name, digest, size), {**self.entry, "sha256": digest, "bytes": size}


def _write_labels(challenge: Any, staged: Any, index: int, frame_of: FrameOf, write: Write) -> _LabelsFile:
    """``labels_<index>``: (row_id, label) of release ``index`` as in the source, by row_id."""
    planned = challenge.plan(staged.rows)[index]
    label = labels_.withheld_label(challenge, index)
    frame = frame_of(planned).select(pl.col(ROW).alias(ROW_ID), pl.col(label))
    if staged.shuffled:  # otherwise the rows are in source order already: a sort would hold them all
        frame = frame.sort(ROW_ID)
    folder = settings.private_dir(settings.releases_dir(challenge.name))
    name = labels_.labels_file_name(challenge, index)
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(frame, tmp)
        settings.make_private(tmp)  # polars writes with the process umask
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _LabelsFile(tmp, folder / name, {"file": name, "release": planned.name, "rows": planned.rows})


def _record(challenge: Any, release: Any, done: Perturbed, columns: list[str], shipped: list,
            labels: list[tuple[Extra, dict]]) -> dict:
    later = labels_.labels_release(challenge, release.index)
    withheld = labels_.withheld_label(challenge, release.index)
    return {
        "challenge": challenge.name, "release": release.name, "index": release.index,
        "seed": challenge.scenario.seed if challenge.scenario else None,
        "rows": {"planned": release.rows, "delivered": done.height},
        "columns": columns,
        "events": [applied.to_json() for applied in done.applied],
        "labels": {"withheld": withheld,
                   "ship_with": (challenge.release_name(later) if later is not None else None) if withheld else None},
        "shipment": {
            "files": [s.to_json() for s in shipped],
            "labels": [entry for _, entry in labels],
        },
    }
