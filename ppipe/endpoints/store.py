"""Reading and writing endpoints and their calls in the ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import func, update
from sqlmodel import select

from ppipe.endpoints.probe import CallResult
from ppipe.endpoints.records import CALL_KINDS, EndpointCall, EndpointRecord
from ppipe.errors import NotFoundError
from ppipe.ledger import Ledger, utcnow


def _challenge_id(ledger: Ledger, challenge: str) -> uuid.UUID:
    return ledger.get(challenge).id


def upsert(ledger: Ledger, challenge: str, participant: str, url: str, protocol: str, *,
           participant_id: int | None = None) -> EndpointRecord:
    """Register (or re-register) a participant's endpoint; each registration issues a new secret version."""
    challenge_id = _challenge_id(ledger, challenge)
    with ledger.session() as session:
        record = session.exec(select(EndpointRecord).where(
            EndpointRecord.challenge_id == challenge_id, EndpointRecord.participant == participant)).first()
        if record is None:
            record = EndpointRecord(challenge_id=challenge_id, participant=participant, url=url, protocol=protocol,
                                    participant_id=participant_id)
        else:
            record.url, record.protocol, record.state = url, protocol, "active"
            record.secret_version += 1
            record.updated_at = utcnow()
        session.add(record)
        session.commit()
        session.refresh(record)
    return record


def get(ledger: Ledger, challenge: str, participant: str) -> EndpointRecord:
    challenge_id = _challenge_id(ledger, challenge)
    with ledger.session() as session:
        record = session.exec(select(EndpointRecord).where(
            EndpointRecord.challenge_id == challenge_id, EndpointRecord.participant == participant,
            EndpointRecord.state == "active")).first()
    if record is None:
        raise NotFoundError(f"participant {participant!r} of {challenge!r} has no endpoint registered")
    return record


def active(ledger: Ledger, challenge: str) -> list[EndpointRecord]:
    challenge_id = _challenge_id(ledger, challenge)
    with ledger.session() as session:
        return list(session.exec(select(EndpointRecord).where(
            EndpointRecord.challenge_id == challenge_id, EndpointRecord.state == "active",
        ).order_by(EndpointRecord.participant)))


def remove(ledger: Ledger, challenge: str, participant: str) -> None:
    """Stop calling a participant's endpoint (its calls stay, for the record)."""
    record = get(ledger, challenge, participant)
    with ledger.session() as session:
        session.exec(update(EndpointRecord).where(EndpointRecord.id == record.id)
                     .values(state="removed", updated_at=utcnow()))
        session.commit()


def record_calls(ledger: Ledger, calls: Iterable[tuple[EndpointRecord, CallResult]], kind: str,
                 round: str | None = None) -> list[EndpointCall]:
    """Store call results in one transaction; a round keeps its predictions for scoring."""
    if kind not in CALL_KINDS:
        raise ValueError(f"unknown call kind {kind!r}")
    rows = [_call_row(endpoint.id, result, kind, round) for endpoint, result in calls]
    with ledger.session() as session:
        session.add_all(rows)
        session.commit()
    return rows


def _call_row(endpoint_id: uuid.UUID, result: CallResult, kind: str, round: str | None) -> EndpointCall:
    keep = kind == "round" and result.predictions
    return EndpointCall(
        endpoint_id=endpoint_id, kind=kind, round=round, started_at=result.started_at,
        outcome=result.outcome, status=result.status, error=(result.error or None) and result.error[:400],
        dns_ms=result.dns_ms, connect_ms=result.connect_ms, tls_ms=result.tls_ms,
        first_byte_ms=result.first_byte_ms, total_ms=result.total_ms, rows_sent=result.rows_sent,
        rows_answered=result.rows_answered,
        predictions=[[k, v] for k, v in result.predictions.items()] if keep else None,
    )


def calls(ledger: Ledger, challenge: str, *, participant: str | None = None, kinds: Sequence[str] | None = None,
          since: datetime | None = None) -> list[tuple[str, EndpointCall]]:
    """(participant, call) pairs of a challenge's endpoints, oldest first."""
    challenge_id = _challenge_id(ledger, challenge)
    query = (select(EndpointRecord.participant, EndpointCall)
             .join(EndpointRecord, EndpointRecord.id == EndpointCall.endpoint_id)
             .where(EndpointRecord.challenge_id == challenge_id))
    if participant is not None:
        query = query.where(EndpointRecord.participant == participant)
    if kinds:
        query = query.where(EndpointCall.kind.in_(list(kinds)))
    if since is not None:
        query = query.where(EndpointCall.started_at >= since)
    with ledger.session() as session:
        return [(name, call) for name, call in session.exec(query.order_by(EndpointCall.started_at, EndpointCall.id))]


def round_calls(ledger: Ledger, challenge: str, round: str) -> list[tuple[str, EndpointCall]]:
    """The calls of one prediction round, by participant."""
    return [(p, c) for p, c in calls(ledger, challenge, kinds=["round"]) if c.round == round]


def set_scores(ledger: Ledger, scores: dict[int, float | None]) -> None:
    """Store the metric of each scored round call (call id -> score)."""
    with ledger.session() as session:
        for call_id, score in scores.items():
            session.exec(update(EndpointCall).where(EndpointCall.id == call_id).values(score=score))
        session.commit()


def unscored_rounds(ledger: Ledger, challenge: str) -> list[str]:
    """Rounds with answers kept for scoring that have not been scored yet."""
    challenge_id = _challenge_id(ledger, challenge)
    query = (select(EndpointCall.round).join(EndpointRecord, EndpointRecord.id == EndpointCall.endpoint_id)
             .where(EndpointRecord.challenge_id == challenge_id, EndpointCall.kind == "round",
                    EndpointCall.predictions.is_not(None), EndpointCall.score.is_(None)).distinct())
    with ledger.session() as session:
        return sorted(name for name in session.exec(query) if name)


def last_call(ledger: Ledger, challenge: str, kind: str) -> datetime | None:
    """When the latest call of ``kind`` to any of the challenge's endpoints started."""
    challenge_id = _challenge_id(ledger, challenge)
    query = (select(func.max(EndpointCall.started_at)).join(EndpointRecord, EndpointRecord.id == EndpointCall.endpoint_id)
             .where(EndpointRecord.challenge_id == challenge_id, EndpointCall.kind == kind))
    with ledger.session() as session:
        return session.exec(query).one()
