"""Participants of a challenge: add, list, revoke, rotate, and who a token belongs to.

A participant's storage identities become ordinary grants (``ppipe.access``): recorded in the
ledger, applied at once where the destination answers, otherwise by the next run; revoking
the participant revokes them the same way.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ppipe.delivery.access import Applied, change_grant, destinations_of
from ppipe.errors import ConflictError, NotFoundError, SpecError
from ppipe.ledger import ChallengeRecord, Ledger, utcnow
from ppipe.challenge.spec import Grant
from ppipe.participants import tokens
from ppipe.participants.records import ParticipantRecord, ensure_tables

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Who:
    """The participant a token belongs to."""

    participant_id: int
    participant: str
    challenge_id: uuid.UUID
    challenge: str


@dataclass(frozen=True)
class Added:
    participant: str
    token: str  # shown once, never stored
    grants: list[str]  # one line per grant applied or left for the next run


def _ready(ledger: Ledger) -> Ledger:
    ensure_tables(ledger.engine)
    return ledger


def identity_grants(s3: str | None = None, gcs: str | None = None, drive: str | None = None) -> list[Grant]:
    """The grants a participant's identities ask for; SpecError naming the option when one is malformed."""
    grants = []
    for option, service, identity in (("--s3", "s3", s3), ("--gcs", "gcs", gcs), ("--drive", "drive", drive)):
        if identity is None:
            continue
        try:
            grants.append(Grant(service=service, identity=identity, via=_s3_via(identity) if service == "s3" else None))
        except ValidationError as exc:
            raise SpecError(option, exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")) from None
    return grants


def _s3_via(identity: str) -> str:
    """An ARN or account id is granted by bucket policy; a bare IAM user name by that user's own policy."""
    return "bucket-policy" if identity.startswith("arn:") or identity.isdigit() else "iam-user-policy"


def add(ledger: Ledger, challenge: str, name: str, *, email: str | None = None, s3: str | None = None,
        gcs: str | None = None, drive: str | None = None) -> Added:
    """Register ``name`` in ``challenge`` with a fresh token; grant its identities read access."""
    _ready(ledger)
    if not NAME.match(name):
        raise SpecError("NAME", f"{name!r} is not a participant name: 1-64 lowercase letters, digits, '-' or '_'")
    if email is not None and not EMAIL.match(email):
        raise SpecError("--email", f"{email!r} is not an e-mail address")
    record = ledger.get(challenge)
    grants = identity_grants(s3, gcs, drive)
    spec = record.challenge()
    for grant in grants:
        if not destinations_of(spec, grant.service):
            raise SpecError(f"--{grant.service}", f"challenge {challenge!r} has no {grant.service} destination")
    token = tokens.new_token()
    participant = ParticipantRecord(challenge_id=record.id, name=name, email=email, token_hash=tokens.token_hash(token),
                                    identities=[g.model_dump(mode="json", exclude_none=True) for g in grants])
    with ledger.session() as session:
        session.add(participant)
        try:
            session.commit()
        except IntegrityError:
            raise ConflictError(f"challenge {challenge!r} already has a participant named {name!r}") from None
    return Added(name, token, change_grants(ledger, challenge, grants))


def change_grants(ledger: Ledger, challenge: str, grants: list[Grant], *, revoke: bool = False) -> list[str]:
    """Record each grant (or revocation) and apply it at once where the destination answers;
    one line each. What cannot be applied now stays recorded and the next run applies it."""
    return [_line(applied) for grant in grants for applied in change_grant(ledger, challenge, grant, revoke=revoke)]


def _line(applied: Applied) -> str:
    if applied.action == "failed":
        return f"not applied yet on {applied.destination} (the next run retries): {applied.detail}"
    return f"{applied.action} {applied.grant.identity} on {applied.destination}" + (
        f": {applied.detail}" if applied.detail else "")


def get(ledger: Ledger, challenge: str, name: str) -> ParticipantRecord:
    _ready(ledger)
    record = ledger.get(challenge)
    with ledger.session() as session:
        participant = session.exec(select(ParticipantRecord).where(
            ParticipantRecord.challenge_id == record.id, ParticipantRecord.name == name)).first()
    if participant is None:
        raise NotFoundError(f"challenge {challenge!r} has no participant named {name!r} (see 'ppipe participant list')")
    return participant


def list_participants(ledger: Ledger, challenge: str) -> list[ParticipantRecord]:
    _ready(ledger)
    record = ledger.get(challenge)
    with ledger.session() as session:
        return list(session.exec(select(ParticipantRecord).where(ParticipantRecord.challenge_id == record.id)
                                 .order_by(ParticipantRecord.id)))


def revoke(ledger: Ledger, challenge: str, name: str) -> list[str]:
    """The token stops working now; the participant's storage grants are revoked."""
    participant = get(ledger, challenge, name)
    with ledger.session() as session:
        session.exec(update(ParticipantRecord).where(ParticipantRecord.id == participant.id)
                     .values(state="revoked", revoked_at=utcnow()))
        session.commit()
    return change_grants(ledger, challenge, [Grant(**g) for g in participant.identities], revoke=True)


def rotate(ledger: Ledger, challenge: str, name: str) -> str:
    """A new token for an active participant; the old one stops working now."""
    participant = get(ledger, challenge, name)
    if participant.state != "active":
        raise ConflictError(f"participant {name!r} is {participant.state}: add them again under another name")
    token = tokens.new_token()
    with ledger.session() as session:
        session.exec(update(ParticipantRecord).where(ParticipantRecord.id == participant.id)
                     .values(token_hash=tokens.token_hash(token), rotated_at=utcnow()))
        session.commit()
    return token


_BY_TOKEN = (
    sa_select(ParticipantRecord.id, ParticipantRecord.name, ParticipantRecord.token_hash, ParticipantRecord.state,
              ChallengeRecord.id, ChallengeRecord.name)
    .join(ChallengeRecord, ChallengeRecord.id == ParticipantRecord.challenge_id)
    .where(ParticipantRecord.token_hash == bindparam("digest"))
)


def storage(ledger: Ledger, who: Who) -> list[dict]:
    """Where ``who`` reads: one entry per destination an identity of theirs is granted on, with
    the place to read at (the destination itself, or e.g. the S3 access point it was put in)."""
    with ledger.session() as session:
        identities = session.exec(select(ParticipantRecord.identities).where(
            ParticipantRecord.id == who.participant_id)).first() or []
    keys = {Grant(**spec).key for spec in identities}
    granted = [row for row in ledger.grants(who.challenge) if row.key in keys]
    applications = ledger.applications(who.challenge) if granted else {}
    return [{"service": row.service, "destination": place.destination, "read_at": place.access or place.destination}
            for row in granted for place in applications.get(row.id, [])
            if place.state == "active" and place.version == row.version]


def authenticate(ledger: Ledger, token: str | None) -> Who | None:
    """The active participant holding ``token``, or None (missing, wrong, rotated away or revoked)."""
    if not token or not tokens.looks_like_token(token):
        return None
    digest = tokens.token_hash(token)
    with ledger.reads.connect() as connection:  # a plain connection: this runs on every API call
        row = connection.execute(_BY_TOKEN, {"digest": digest}).first()
    if row is None or row[3] != "active" or not tokens.matches(token, row[2]):
        return None
    return Who(row[0], row[1], row[4], row[5])
