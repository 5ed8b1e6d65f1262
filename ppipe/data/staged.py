"""What a staged source is, whatever its kind: one interface, two kinds.

A source is read once, at staging, into ``PPIPE_HOME/staged/<challenge>/<sha256 prefix>/`` with
``staged.json`` (fingerprint, rows, column types, kind) written last. Each kind is a class:

* :class:`ppipe.data.staged_parquet.StagedParquet` (``"parquet"``): a Parquet copy, sliced
  and written in the output format by polars;
* :class:`ppipe.data.staged_text.StagedText` (``"offsets"``): a byte-offset index of a CSV or
  NDJSON text released in its own format, cut as byte ranges of the source's own lines.

Callers never ask which kind they hold: :meth:`StagedSource.cut` writes a release,
:meth:`StagedSource.check_unchanged` compares the source with its fingerprint, and
:func:`ppipe.data.staging.load_staged` opens the finished copy of either kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge, Source
from ppipe.errors import SourceError

META = "staged.json"
ROW_ID = "row_id"


@dataclass(frozen=True)
class Cut:
    """A release written by :meth:`StagedSource.cut`: sha256 (hex), size in bytes, row count
    (the source rows it covers), and the files shipped beside it (a scenario's late labels,
    referenced files: :class:`ppipe.scenario.cut.Extra`)."""

    sha256: str
    bytes: int
    rows: int
    extras: tuple = ()


@dataclass(frozen=True)
class StagedSource(ABC):
    """The staged copy: its path, row count, the source fingerprint it was made from, and the
    type of each column as delivered (``columns``) with where that type came from
    (``types_origin``: "source" = kept as in the source, "inferred", or "declared")."""

    kind: ClassVar[str]

    path: Path
    rows: int
    fingerprint: dict
    columns: dict[str, str]
    types_origin: dict[str, str]
    source_sha256: str | None = None
    shuffled: bool = False
    #: The challenge (its ``id``) this copy was staged for: a copy left by a deleted challenge of
    #: the same name is not this one's (None: staged before copies were keyed).
    challenge_id: str | None = None

    @abstractmethod
    def cut(self, challenge: Challenge, release: PlannedRelease, out: Path) -> Cut:
        """Write release ``release`` in the challenge's output format to ``out``.

        SourceError when the source changed since staging (then ``out`` must be thrown away).
        """

    def cut_without(self, challenge: Challenge, release: PlannedRelease, out: Path, columns: list[str]) -> Cut:
        """Write release ``release`` minus ``columns`` to ``out`` (a prediction batch: the label
        removed). SourceError where this kind cannot drop columns."""
        raise SourceError(challenge.source.url, f"a {self.kind} staged copy cannot leave columns out of a release")

    def check_unchanged(self, source: Source) -> None:
        """None if ``source`` still matches the fingerprint recorded at staging; SourceError if
        it changed or disappeared."""
        check_fingerprint(source, self.fingerprint)

    def record(self) -> dict[str, Any]:
        """What ``staged.json`` holds (its kind, and everything but the folder-relative paths)."""
        return {"kind": self.kind, **{k: v for k, v in asdict(self).items() if k != "path"}}

    @classmethod
    def load(cls, folder: Path, record: dict[str, Any]) -> StagedSource | None:
        """The finished staged copy in ``folder`` from its ``staged.json`` record, or None when
        the files it names are gone (then the source is staged again)."""
        raise NotImplementedError

    @classmethod
    def from_record(cls, record: dict[str, Any], **paths: Path) -> StagedSource:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known and k not in paths}, **paths)


def check_fingerprint(source: Source, recorded: dict) -> None:
    """SourceError naming what differs when ``source`` no longer matches ``recorded``."""
    from ppipe.data import sources  # fsspec and polars: only when a source is really looked at

    current = sources.fingerprint(source)
    if current != recorded:
        changed = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
        raise SourceError(
            sources.display_url(source),
            f"changed since it was staged ({', '.join(changed)} differ): releases would mix two versions; "
            "restore the original or make a new challenge",
        )
