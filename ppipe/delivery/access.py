"""Who may read what: applying the ledger's grants to destinations (permission-only changes).

A grant is recorded in the ledger first, then applied to every destination of its service;
each application is recorded, so a grant is applied once per destination, and again only
when it changed (re-granted or revoked).
"""

from __future__ import annotations

from dataclasses import dataclass

from ppipe.destinations import Destination, open_destination
from ppipe.errors import SpecError
from ppipe.ledger import GrantRecord, Ledger
from ppipe.challenge.spec import Challenge, Grant


@dataclass(frozen=True)
class Applied:
    """One grant (or revocation) applied at one destination."""

    grant: Grant
    destination: str
    action: str  # "granted" | "revoked"
    detail: str = ""


def destinations_of(challenge: Challenge, service: str) -> list[Destination]:
    return [open_destination(spec, challenge.name) for spec in challenge.destinations if spec.kind == service]


def apply_pending(ledger: Ledger, challenge: Challenge, destination: Destination) -> list[Applied]:
    """Apply at ``destination`` every grant whose current state is not applied there yet."""
    if not destination.spec.can_grant:
        return []
    done = []
    for row in ledger.unapplied_grants(challenge.name, destination.uri, destination.kind):
        done.append(_apply(ledger, row, destination))
    return done


def _apply(ledger: Ledger, row: GrantRecord, destination: Destination) -> Applied:
    grant = row.grant()
    if row.state == "active":
        result = destination.grant(grant.identity, grant.role, via=grant.via, notify=grant.notify)
        detail = result.description
        if result.credentials_file:
            detail += f" (access key written to {result.credentials_file})"
    else:
        destination.revoke(grant.identity, via=grant.via)
        detail = "access removed"
    ledger.record_grant_applied(row.id, destination.uri, row.state)
    return Applied(grant, destination.uri, "granted" if row.state == "active" else "revoked", detail)


def change_grant(ledger: Ledger, name: str, grant: Grant, *, revoke: bool = False) -> list[Applied]:
    """Grant or revoke on every destination of the grant's service, now, with no data upload."""
    challenge = ledger.challenge(name)
    targets = destinations_of(challenge, grant.service)
    if not targets:
        raise SpecError("--service", f"challenge {name!r} has no {grant.service} destination")
    if revoke:
        ledger.revoke_grant(name, grant)
    else:
        ledger.add_grant(name, grant)
    # A destination that fails leaves its application unrecorded: the next run retries it.
    return [applied for destination in targets for applied in apply_pending(ledger, challenge, destination)]
