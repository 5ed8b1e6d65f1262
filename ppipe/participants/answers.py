"""Answering a request: attempts, deadlines, and judging validation answers at once.

Rules: a closed request takes no answer (409). Before the deadline an answer uses one of the
request's attempts (409 when none is left); the latest answer counts. After the deadline a
request that had no answer takes one ``late`` answer (recorded, never scored), then closes.
Attempts are taken with one conditional UPDATE, so two answers racing cannot both use the last.
"""

from __future__ import annotations

import io
from datetime import datetime

import polars as pl
from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import select

from ppipe.errors import ConflictError, NotFoundError
from ppipe.ledger import Ledger, utcnow
from ppipe.challenge.spec import Challenge
from ppipe.participants import feed
from ppipe.participants.delivered import delivered, expected_rows, known_row_ids
from ppipe.participants.judging import Invalid, Verdict, check_predictions, judge_validation
from ppipe.participants.records import AnswerRecord, JudgementRecord, RequestRecord
from ppipe.participants.roster import Who


_TABLE = RequestRecord.__table__
_BY_ID = sa_select(_TABLE).where(_TABLE.c.id == bindparam("id"), _TABLE.c.participant_id == bindparam("participant"))


def find(ledger: Ledger, who: Who, request_id: str):
    """The participant's own request (a row of the requests table); another participant's is
    "not found", exactly like a missing one."""
    with ledger.reads.connect() as connection:
        request = connection.execute(_BY_ID, {"id": request_id, "participant": who.participant_id}).first() \
            if len(request_id) <= 32 else None
    if request is None:
        raise NotFoundError(f"no request {request_id!r}")
    return request


def answer(ledger: Ledger, who: Who, request_id: str, frame: pl.DataFrame, *, content_type: str = "application/json",
           size: int = 0, now: datetime | None = None) -> dict:
    """Take an answer to a request; returns its judgement (validation) or ``pending`` (prediction)."""
    now = now or utcnow()
    request = find(ledger, who, request_id)
    if request.closed:
        raise ConflictError(f"request {request_id} is closed ({request.status})")
    on_time = now <= request.deadline
    _take_attempt(ledger, request, on_time)
    if not on_time:
        return _record(ledger, request, frame, content_type, size, now, on_time, "late", {"status": "late",
                       "reason": f"the deadline was {request.deadline.isoformat()}: recorded, never scored"})
    challenge = ledger.challenge(who.challenge)
    if request.kind == "validation":
        verdict = _judge(ledger, challenge, request, frame)
        return _record(ledger, request, frame, content_type, size, now, on_time, verdict.status, verdict.to_json(),
                       score=verdict.matched / verdict.expected if verdict.expected else None)
    return _take_predictions(ledger, challenge, request, frame, content_type, size, now)


def _take_attempt(ledger: Ledger, request: RequestRecord, on_time: bool) -> None:
    """Use an attempt (on time), or the one late answer (no on-time answer yet); ConflictError otherwise."""
    condition = [RequestRecord.id == request.id, RequestRecord.closed.is_(False)]
    if on_time:
        condition.append(RequestRecord.attempts_used < RequestRecord.attempts)
        values = {"attempts_used": RequestRecord.attempts_used + 1}
    else:
        condition.append(RequestRecord.attempts_used == 0)
        values = {"status": "late", "closed": True, "judged_at": utcnow()}
    with ledger.session() as session:
        taken = session.exec(update(RequestRecord).where(*condition).values(**values)).rowcount == 1
        session.commit()
    if not taken:
        why = "no attempts left" if on_time else "the deadline has passed and your on-time answer stands"
        raise ConflictError(f"request {request.id}: {why}")


def _judge(ledger: Ledger, challenge: Challenge, request: RequestRecord, frame: pl.DataFrame) -> Verdict:
    indexes = sorted(i for i in delivered(ledger, challenge.name) if i <= request.release_index)
    expected = expected_rows(challenge, indexes, request.row_ids)
    tolerance = challenge.requests.validation.tolerance
    return judge_validation(expected, frame, rtol=tolerance.rtol, atol=tolerance.atol,
                            known_ids=known_row_ids(challenge, indexes))


def _take_predictions(ledger: Ledger, challenge: Challenge, request: RequestRecord, frame: pl.DataFrame,
                      content_type: str, size: int, now: datetime) -> dict:
    numeric = challenge.requests.prediction.metric in ("rmse", "mae")
    try:
        predictions = check_predictions(frame, pl.Series(request.row_ids, dtype=pl.Int64), numeric=numeric)
    except Invalid as exc:
        return _record(ledger, request, frame, content_type, size, now, True, "invalid",
                       {"status": "invalid", "reason": str(exc)})
    buffer = io.BytesIO()
    predictions.write_parquet(buffer, compression="zstd")
    detail = {"status": "pending", "rows": predictions.height, "expected": len(request.row_ids),
              "reason": f"scored when {request.release} and its labels are delivered"}
    return _record(ledger, request, frame, content_type, size, now, True, "pending", detail, payload=buffer.getvalue())


def _record(ledger: Ledger, request: RequestRecord, frame: pl.DataFrame, content_type: str, size: int,
            now: datetime, on_time: bool, status: str, detail: dict, *, score: float | None = None,
            payload: bytes | None = None) -> dict:
    """Store the answer and its judgement, set the request's status, and tell the participant's feed."""
    with ledger.session() as session:
        feed.lock_feed(session)
        attempt = session.exec(select(RequestRecord.attempts_used).where(RequestRecord.id == request.id)).one()
        row = AnswerRecord(request_id=request.id, attempt=attempt, received_at=now, on_time=on_time,
                           content_type=content_type[:64], rows=frame.height, bytes=size, predictions=payload)
        session.add(row)
        session.flush()
        judgement = JudgementRecord(request_id=request.id, answer_id=row.id, status=status, score=score,
                                    detail=detail, judged_at=now)
        session.add(judgement)
        values = {"status": status, "score": score, "judged_at": now} if on_time else {}
        if values:
            session.exec(update(RequestRecord).where(RequestRecord.id == request.id).values(**values))
        session.flush()
        feed.add_event(session, request.challenge_id, f"judgement:{judgement.id}", "judgement",
                       {"request": request.id, "status": status, "score": score},
                       participant_id=request.participant_id, at=now)
        session.commit()
    return {**detail, "request": request.id, "attempt": attempt,
            "attempts_left": max(0, request.attempts - attempt) if on_time else 0}

