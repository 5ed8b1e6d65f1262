"""The Python API: what the CLI commands (and the flow) call. Thin over the ledger and data path."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ppipe import settings
from ppipe.errors import ConflictError
from ppipe.ledger import ChallengeRecord, Ledger, ReleaseRecord
from ppipe.challenge.spec import Challenge, Grant
from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.specfile import load_challenge


def open_ledger(ledger: Ledger | None = None) -> Ledger:
    return ledger or Ledger()


def load(path_or_challenge: str | Path | Challenge) -> Challenge:
    """A Challenge from a YAML file (or the Challenge itself)."""
    if isinstance(path_or_challenge, Challenge):
        return path_or_challenge
    return load_challenge(path_or_challenge)


def plan(challenge: Challenge) -> tuple[int, list[PlannedRelease]]:
    """Count the source's rows and plan the releases; nothing is written."""
    from ppipe.data.sources import count_rows

    n_rows = count_rows(challenge.source)
    return n_rows, challenge.plan(n_rows)


def create(challenge: Challenge, *, ledger: Ledger | None = None) -> ChallengeRecord:
    """Validate, stage the source once (counting its rows) and register the challenge.

    Nothing is left behind when it fails: a taken name is refused before any work, and the
    staged copy is removed when planning refuses the row count.
    """
    from ppipe.data.staging import stage

    ledger = open_ledger(ledger)
    if ledger.exists(challenge.name):
        raise ConflictError(f"challenge {challenge.name!r} already exists: delete it first or pick another name")
    staged = stage(challenge)
    try:
        return ledger.add_challenge(challenge, staged.rows)
    except ConflictError:
        raise  # a concurrent create won the name: the staged copy is theirs now
    except BaseException:
        shutil.rmtree(settings.staging_dir(challenge.name), ignore_errors=True)
        raise


def ensure_registered(name: str, *, ledger: Ledger | None = None, deployments: Path | None = None) -> Challenge:
    """The challenge from the ledger, registering ``deployments/<name>.yaml`` first if needed."""
    ledger = open_ledger(ledger)
    if not ledger.exists(name):
        path = (deployments or settings.deployments_dir()) / f"{name}.yaml"
        try:
            create(load_challenge(path), ledger=ledger)
        except ConflictError:
            pass  # a concurrent run registered it first: use theirs
    return ledger.challenge(name)


def delete(name: str, *, ledger: Ledger | None = None) -> None:
    """Forget a challenge: ledger rows, staged copy and local audit copies.

    Files already delivered to destinations are left where they are: participants keep them.
    """
    ledger = open_ledger(ledger)
    ledger.delete_challenge(name)
    for folder in (settings.staging_dir(name), settings.releases_dir(name)):
        shutil.rmtree(folder, ignore_errors=True)


def list_challenges(*, ledger: Ledger | None = None) -> list[ChallengeRecord]:
    return open_ledger(ledger).list_challenges()


@dataclass(frozen=True)
class ReleaseStatus:
    """One release with its per-destination rows, for ``ppipe show``."""

    index: int
    name: str
    start: int
    stop: int
    scheduled_at: object
    deliveries: list[ReleaseRecord]

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def status(self) -> str:
        states = {row.status for row in self.deliveries}
        for state in ("failed", "running", "planned"):
            if state in states:
                return "partial" if state == "planned" and "delivered" in states else state
        return "delivered"

    def to_json(self) -> dict:
        return {
            "index": self.index, "name": self.name, "start": self.start, "stop": self.stop,
            "rows": self.rows, "scheduled_at": self.scheduled_at.isoformat(), "status": self.status,
            "destinations": [row.destination for row in self.deliveries],
            "deliveries": [
                {
                    "destination": row.destination, "status": row.status, "sha256": row.sha256,
                    "uri": row.uri, "bytes": row.bytes, "attempts": row.attempts, "error": row.error,
                    "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
                }
                for row in self.deliveries
            ],
        }


def release_status(name: str, *, ledger: Ledger | None = None) -> list[ReleaseStatus]:
    rows = open_ledger(ledger).releases(name)
    by_index: dict[int, list[ReleaseRecord]] = {}
    for row in rows:
        by_index.setdefault(row.index, []).append(row)
    return [
        ReleaseStatus(group[0].index, group[0].name, group[0].start, group[0].stop, group[0].scheduled_at, group)
        for group in by_index.values()
    ]


def grant(name: str, grant: Grant, *, ledger: Ledger | None = None):
    """Give a participant access on every destination of the grant's service (no data upload)."""
    from ppipe.delivery.access import change_grant

    return change_grant(open_ledger(ledger), name, grant)


def revoke(name: str, grant: Grant, *, ledger: Ledger | None = None):
    """Remove a participant's access on every destination of the grant's service."""
    from ppipe.delivery.access import change_grant

    return change_grant(open_ledger(ledger), name, grant, revoke=True)
