"""The feed: what happened that a participant may know, in order, read with a cursor (``after=seq``).

Events are written while holding a lock that serialises feed writers (SQLite serialises
writers anyway; PostgreSQL takes a transaction-scoped advisory lock), so ``seq`` values
become visible in increasing order and a reader that saw ``seq = n`` never misses an
event numbered below ``n`` later on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from ppipe.ledger import utcnow
from ppipe.participants.records import FeedEvent

_LOCK_KEY = 0x70706970  # "ppip": the advisory lock that orders feed writers on PostgreSQL
MAX_LIMIT = 500


def lock_feed(session: Session) -> None:
    """Serialise feed writers until this transaction ends (a no-op where writers are serial already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def add_event(session: Session, challenge_id: uuid.UUID, key: str, kind: str, payload: dict, *,
              participant_id: int | None = None, at: datetime | None = None) -> None:
    """Add an event to the session's transaction unless one with ``key`` exists (idempotent).

    The caller commits; :func:`lock_feed` must have been called in this transaction.
    """
    exists = session.exec(select(FeedEvent.seq).where(FeedEvent.challenge_id == challenge_id, FeedEvent.key == key))
    if exists.first() is None:
        session.add(FeedEvent(challenge_id=challenge_id, participant_id=participant_id, key=key, kind=kind,
                              at=at or utcnow(), payload=payload))


@dataclass(frozen=True)
class Page:
    events: list[dict]
    next_after: int
    has_more: bool


_PAGE = (
    sa_select(FeedEvent.seq, FeedEvent.kind, FeedEvent.at, FeedEvent.payload)
    .where(FeedEvent.challenge_id == bindparam("challenge"), FeedEvent.seq > bindparam("after"),
           or_(FeedEvent.participant_id.is_(None), FeedEvent.participant_id == bindparam("participant")))
    .order_by(FeedEvent.seq).limit(bindparam("limit"))
)


def read(connection: Connection, challenge_id: uuid.UUID, participant_id: int, *, after: int = 0,
         limit: int = 100) -> Page:
    """Events for one participant (theirs and the challenge's) with ``seq > after``, oldest first."""
    rows = connection.execute(_PAGE, {"challenge": challenge_id, "after": after, "participant": participant_id,
                                      "limit": limit + 1}).all()
    page = rows[:limit]
    events = [{**row.payload, "seq": row.seq, "kind": row.kind, "at": row.at.isoformat()} for row in page]
    return Page(events, page[-1].seq if page else after, len(rows) > limit)
