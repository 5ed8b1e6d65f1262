"""The Python API of the participant side: what the ``ppipe participant`` commands, the HTTP API and
the flow call. Every function takes an optional ledger (default: the configured one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select

from ppipe.errors import SpecError
from ppipe.ledger import Ledger, utcnow
from ppipe.participants import answers, feed, leaderboard as boards, roster, rounds
from ppipe.participants.records import JudgementRecord, ParticipantRecord, RequestRecord, ensure_tables
from ppipe.participants.roster import Added, Who

__all__ = [
    "Added", "Who", "add", "answer", "authenticate", "get_request", "judge", "leaderboard", "list_participants",
    "list_requests", "me", "read_feed", "revoke", "rotate",
]


def _ledger(ledger: Ledger | None) -> Ledger:
    ledger = ledger or Ledger()
    ensure_tables(ledger.engine)
    return ledger


# --- the organiser's side ------------------------------------------------------------------


def add(challenge: str, name: str, *, email: str | None = None, s3: str | None = None, gcs: str | None = None,
        drive: str | None = None, ledger: Ledger | None = None) -> Added:
    """Register a participant; returns their token (shown once) and the grants applied."""
    return roster.add(_ledger(ledger), challenge, name, email=email, s3=s3, gcs=gcs, drive=drive)


def list_participants(challenge: str, *, ledger: Ledger | None = None) -> list[ParticipantRecord]:
    return roster.list_participants(_ledger(ledger), challenge)


def revoke(challenge: str, name: str, *, ledger: Ledger | None = None) -> list[str]:
    """Stop the participant's token now and revoke their storage grants."""
    return roster.revoke(_ledger(ledger), challenge, name)


def rotate(challenge: str, name: str, *, ledger: Ledger | None = None) -> str:
    """A new token (the old one stops working)."""
    return roster.rotate(_ledger(ledger), challenge, name)


def judge(challenge: str, *, now: datetime | None = None, ledger: Ledger | None = None) -> rounds.Round:
    """Open due requests, mark misses, score predictions whose labels are out."""
    return rounds.judge(_ledger(ledger), challenge, now=now)


def leaderboard(challenge: str, *, ledger: Ledger | None = None) -> boards.Board:
    return boards.build(_ledger(ledger), challenge)


# --- a participant's side ------------------------------------------------------------------


def authenticate(token: str | None, *, ledger: Ledger | None = None) -> Who | None:
    return roster.authenticate(_ledger(ledger), token)


def me(who: Who, *, ledger: Ledger | None = None) -> dict:
    """Who the token is, and where they read the challenge's files (``storage``)."""
    return {"participant": who.participant, "challenge": who.challenge,
            "storage": roster.storage(_ledger(ledger), who)}


def read_feed(who: Who, *, after: int = 0, limit: int = 100, ledger: Ledger | None = None) -> feed.Page:
    if not 1 <= limit <= feed.MAX_LIMIT:
        raise SpecError("limit", f"must be between 1 and {feed.MAX_LIMIT}")
    if after < 0:
        raise SpecError("after", "must be 0 or more")
    with _ledger(ledger).reads.connect() as connection:
        return feed.read(connection, who.challenge_id, who.participant_id, after=after, limit=limit)


def list_requests(who: Who, *, status: str = "open", ledger: Ledger | None = None,
                  now: datetime | None = None) -> list[dict]:
    """The participant's requests, newest first: ``open`` (still answerable) or ``all``."""
    if status not in ("open", "all"):
        raise SpecError("status", "must be open or all")
    parameters = {"participant": who.participant_id, "now": now or utcnow()}
    with _ledger(ledger).reads.connect() as connection:  # plain rows and prepared statements: participants poll this
        requests = connection.execute(_OPEN if status == "open" else _ALL, parameters).all()
        latest = {row.request_id: row for row in connection.execute(_JUDGEMENTS, parameters)} if requests else {}
    return [view(r, latest.get(r.id)) for r in requests]


_REQUESTS, _VERDICTS = RequestRecord.__table__, JudgementRecord.__table__
_ALL = (sa_select(_REQUESTS).where(_REQUESTS.c.participant_id == bindparam("participant"))
        .order_by(_REQUESTS.c.opened_at.desc(), _REQUESTS.c.kind, _REQUESTS.c.id))
_OPEN = _ALL.where(_REQUESTS.c.closed.is_(False), _REQUESTS.c.deadline >= bindparam("now"))
#: Every judgement of a participant's requests, oldest first (the last one per request wins).
_JUDGEMENTS = (sa_select(_VERDICTS).join(_REQUESTS, _REQUESTS.c.id == _VERDICTS.c.request_id)
               .where(_REQUESTS.c.participant_id == bindparam("participant")).order_by(_VERDICTS.c.id))


def get_request(who: Who, request_id: str, *, ledger: Ledger | None = None) -> dict:
    """One of the participant's requests; NotFoundError for anyone else's, as for a missing one."""
    ledger = _ledger(ledger)
    request = answers.find(ledger, who, request_id)
    with ledger.reads.connect() as connection:
        latest = _latest_judgements(connection, [request.id])
    return view(request, latest.get(request.id))


def answer(who: Who, request_id: str, rows: pl.DataFrame | list[dict[str, Any]], *,
           content_type: str = "application/json", size: int = 0, now: datetime | None = None,
           ledger: Ledger | None = None) -> dict:
    """Answer a request with rows (validation) or predictions; returns the judgement."""
    frame = rows if isinstance(rows, pl.DataFrame) else frame_of(rows)
    return answers.answer(_ledger(ledger), who, request_id, frame, content_type=content_type, size=size, now=now)


def frame_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows (dicts) as a frame; columns of mixed types are kept as text and judged by the column's type."""
    try:
        return pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        keys = list(dict.fromkeys(k for row in rows for k in row))
        return pl.DataFrame({k: [None if row.get(k) is None else str(row.get(k)) for row in rows] for k in keys},
                            schema={k: pl.String for k in keys})


def view(request, judgement) -> dict:
    """A request as the API shows it (from a RequestRecord or a row of its table, and its latest judgement)."""
    doc = {
        "id": request.id, "kind": request.kind, "release": request.release, "row_ids": request.row_ids,
        "features": request.features if request.kind == "prediction" else None,
        "deadline": request.deadline.isoformat(), "attempts_left": max(0, request.attempts - request.attempts_used),
        "status": request.status, "closed": request.closed,
    }
    if request.closed:
        doc["attempts_left"] = 0
    if judgement is not None:
        doc["judgement"] = {**judgement.detail, "status": judgement.status, "score": judgement.score,
                            "judged_at": judgement.judged_at.isoformat()}
    return doc


def _latest_judgements(connection, request_ids: list[str]) -> dict[str, Any]:
    """The latest judgement of each request (rows with the judgements table's columns)."""
    if not request_ids:
        return {}
    table = JudgementRecord.__table__
    rows = connection.execute(sa_select(table).where(table.c.request_id.in_(request_ids)).order_by(table.c.id))
    return {row.request_id: row for row in rows}
