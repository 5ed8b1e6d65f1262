"""The Python API: what the CLI commands (and the flow) call. Thin over the ledger and data path."""

from __future__ import annotations

from dataclasses import dataclass

from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import Challenge, Grant
from ppipe.delivery.challenges import create, delete, ensure_registered, load, open_ledger
from ppipe.ledger import ChallengeRecord, Ledger, ReleaseRecord


def plan(challenge: Challenge) -> tuple[int, list[PlannedRelease]]:
    """Count the source's rows and plan the releases; nothing is written."""
    from ppipe.data.sources import count_rows

    n_rows = count_rows(challenge.source)
    return n_rows, challenge.plan(n_rows)


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


# --- deployments and runs (Prefect, against PREFECT_API_URL or the standing local server) ----


def deploy(challenge: Challenge | str, *, work_pool: str | None = None, ledger: Ledger | None = None):
    """Publish as a Prefect deployment (against PREFECT_API_URL, else the standing local
    server, started if needed); returns the deployment id. Registers the challenge first if needed."""
    from ppipe.orchestration import deploy as deployments, server

    with server.connect():
        return deployments.deploy(challenge, work_pool=work_pool, ledger=ledger)
