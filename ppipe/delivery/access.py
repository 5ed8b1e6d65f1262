"""Who may read what: applying the ledger's grants to destinations (permission-only changes).

A grant is recorded in the ledger first, then applied to every destination of its service.
Each grant state carries a version; an application is recorded for the version it applied,
and only while that version is still current, so a revoke that lands while a dispatch applies
the grant makes the dispatch apply again (the revoke), never record "active" over it. A
destination's access document (bucket policy, IAM policy) is changed only under the ledger's
access lock for it, so two runs never overwrite each other's changes.

Grants fail one by one: a refused grant (bad principal, a user ppipe did not make, a write
role) is recorded as failed for that version and not retried; a transient failure stays
pending for the next run. Either way it is reported, and never fails a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass

from ppipe.challenge.spec import Challenge, Grant
from ppipe.delivery.report import error_text
from ppipe.destinations import Destination, open_destination, registry
from ppipe.errors import ConflictError, GrantRefused, NotFoundError, SpecError
from ppipe.ledger import GrantRecord, Ledger

#: How often one application is retried when the grant keeps changing under it.
MAX_ROUNDS = 5


@dataclass(frozen=True)
class Applied:
    """One grant (or revocation) applied at one destination, or why it was not."""

    grant: Grant
    destination: str
    action: str  # "granted" | "revoked" | "failed"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def line(self) -> str:
        """One line for the organiser: what happened to whom, where."""
        what = f"{self.grant.service} {self.grant.identity}"
        if self.failed:
            return f"grant {what} -> {self.destination}: {self.detail}"
        return f"{self.action} {what} on {self.destination}" + (f": {self.detail}" if self.detail else "")


def destinations_of(challenge: Challenge, service: str) -> list[Destination]:
    return [open_destination(spec, challenge.name) for spec in challenge.destinations if spec.kind == service]


def apply_pending(ledger: Ledger, challenge: Challenge, destination: Destination) -> list[Applied]:
    """Apply at ``destination`` every grant whose current state is not applied there yet.

    Never raises for one grant: each failure is an ``Applied`` with action ``failed``.
    """
    if not destination.spec.can_grant:
        return []
    pending = ledger.unapplied_grants(challenge.name, destination.uri, destination.kind)
    if not pending:
        return []
    try:
        with ledger.access_lock(destination.access_scope):
            return [_apply(ledger, row.id, destination) for row in pending]
    except ConflictError as exc:  # another run holds the lock for long: they stay pending
        return [Applied(row.grant(), destination.uri, "failed", str(exc)) for row in pending]


def _apply(ledger: Ledger, grant_id: int, destination: Destination) -> Applied:
    """Apply the grant's current state at ``destination`` (under its access lock) and record it."""
    ledger.start_grant_application(grant_id, destination.uri)
    row = ledger.grant_record(grant_id)
    for _ in range(MAX_ROUNDS):
        try:
            detail, reads_at = _change(row, destination)
        except GrantRefused as exc:  # terminal: recorded, not retried until the grant changes
            if row.state != "active":  # nothing ppipe could have granted to it there: revoked
                if ledger.record_grant_applied(row.id, destination.uri, row.state, row.version):
                    return Applied(row.grant(), destination.uri, "revoked", "nothing to remove")
            elif ledger.record_grant_applied(row.id, destination.uri, "failed", row.version, error=str(exc)):
                return Applied(row.grant(), destination.uri, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - transient or unknown: stays pending, reported
            return Applied(row.grant(), destination.uri, "failed", error_text(exc))
        else:
            if ledger.record_grant_applied(row.id, destination.uri, row.state, row.version, access=reads_at):
                return Applied(row.grant(), destination.uri, "granted" if row.state == "active" else "revoked", detail)
        row = ledger.grant_record(grant_id)  # changed while we applied it: apply what it is now
    return Applied(row.grant(), destination.uri, "failed", "the grant kept changing while being applied; the next run retries")


def _change(row: GrantRecord, destination: Destination) -> tuple[str, str | None]:
    """(what was done, where the participant reads if not at the destination itself)."""
    grant = row.grant()
    if row.state != "active":
        destination.revoke(grant.identity, via=grant.via)
        return "access removed", None
    result = destination.grant(grant.identity, grant.role, via=grant.via, notify=grant.notify)
    return result.description, result.access


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
    return [applied for destination in targets for applied in apply_pending(ledger, challenge, destination)]


def find_grant(ledger: Ledger, name: str, service: str, identity: str, via: str | None = None) -> Grant:
    """The challenge's grant of ``service`` to ``identity`` however it was made (any ``via`` unless given).

    NotFoundError when there is none; SpecError (naming ``--via``) when it was made both ways.
    """
    spec = registry.spec_class(service)
    vias = [via] if via else (list(spec.grant_forms) if spec is not None and spec.grant_forms else [None])
    wanted = set()
    for how in vias:
        try:
            wanted.add((how, spec.check_identity(identity, how)))
        except (ValueError, AttributeError):  # malformed for this form (or no such service)
            continue
    if not wanted:  # malformed for every form: say why, as a grant would
        Grant(service=service, identity=identity, via=via)
    found = [row for row in ledger.find_grants(name, service) if (row.via, row.identity) in wanted]
    if not found:
        raise NotFoundError(f"challenge {name!r} has no {service} grant for {identity!r}")
    if len(found) > 1:
        raise SpecError("--via", f"{identity!r} was granted both ways ({', '.join(r.via for r in found)}): say which")
    return found[0].grant()


def revoke_everywhere(ledger: Ledger, name: str) -> list[Applied]:
    """Revoke every grant of a challenge on all its destinations (before it is deleted); the failures."""
    challenge = ledger.challenge(name)
    for row in ledger.grants(name):
        ledger.revoke_grant(name, row.grant())
    failed = []
    for service in registry.granting_kinds():
        for destination in destinations_of(challenge, service):
            failed += [a for a in apply_pending(ledger, challenge, destination) if a.failed]
    return failed
