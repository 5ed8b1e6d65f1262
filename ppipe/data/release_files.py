"""Release files: one release's rows cut from the staged copy and saved.

The staged copy writes the release itself (:meth:`ppipe.data.staged.StagedSource.cut`:
polars for a Parquet copy, byte ranges for a text index). Files go to
``PPIPE_HOME/releases/<challenge>/`` (the local audit copy that destinations upload). Every
file is written to a temporary name in the same folder, fsynced and renamed, so a crash
never leaves a half-written file under the final name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from ppipe import durable, settings
from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge
from ppipe.data import sources
from ppipe.data.staged import StagedSource
from ppipe.errors import SourceError


@dataclass(frozen=True)
class ReleaseFile:
    """A saved release: where it is, its file name, sha256 (hex), size in bytes and row count."""

    path: Path
    name: str
    sha256: str
    bytes: int
    rows: int
    extras: tuple = ()  # files shipped beside it (ppipe.scenario.cut.Extra): referenced files, late labels


def write_release(challenge: Challenge, staged: StagedSource, release: PlannedRelease) -> ReleaseFile:
    """Save release ``release`` in the challenge's output format; returns the file's path, name,
    sha256, size and rows. Overwrites an earlier file of the same name (same rows, same bytes)."""
    if not (0 <= release.start < release.stop <= staged.rows):
        raise SourceError(
            sources.display_url(challenge.source),
            f"{release.name} wants rows {release.start}..{release.stop} but the staged copy has {staged.rows}",
        )
    folder = settings.private_dir(settings.releases_dir(challenge.name))
    name = challenge.release_file_name(release.index)
    final = folder / name
    durable.remove_stale(folder, f".{name}.*.tmp")  # left by a run killed while saving
    cut = durable.write_private(final, lambda tmp: staged.cut(challenge, release, tmp))
    return ReleaseFile(path=final, name=name, sha256=cut.sha256, bytes=cut.bytes, rows=cut.rows, extras=cut.extras)
