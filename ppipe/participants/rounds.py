"""A judging round: what the dispatch flow runs after delivering, and ``ppipe judge NAME`` runs on demand.

1. announce delivered releases and open their requests (:mod:`ppipe.participants.requests`);
2. close validation requests whose deadline passed: unanswered ones are ``missed``;
3. score prediction requests whose release (with its labels) is delivered: the latest on-time
   answer counts; none is ``missed``; a challenge cancelled before that release makes them ``void``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from sqlalchemy import update
from sqlmodel import Session, select

from ppipe.ledger import Ledger, utcnow
from ppipe.challenge.spec import Challenge
from ppipe.participants import feed
from ppipe.participants.delivered import delivered, labels, labels_arrive_with
from ppipe.participants.judging import PREDICTION, ROW_ID, score
from ppipe.participants.records import AnswerRecord, JudgementRecord, RequestRecord, ensure_tables
from ppipe.participants.requests import Opened, open_due


@dataclass
class Round:
    """What one judging round did."""

    challenge: str
    opened: list[Opened] = field(default_factory=list)
    closed: int = 0
    missed: int = 0
    scored: int = 0
    void: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        opened = sum(o.validation + o.prediction for o in self.opened)
        return (f"{self.challenge}: {opened} request(s) opened, {self.scored} scored, {self.missed} missed, "
                f"{self.closed} closed, {self.void} void")


def judge(ledger: Ledger, name: str, *, now: datetime | None = None) -> Round:
    """One round over challenge ``name`` (idempotent: a second round right after changes nothing)."""
    ensure_tables(ledger.engine)
    now = now or utcnow()
    result = Round(name)
    record = ledger.get(name)
    challenge = record.challenge()
    if record.state != "cancelled":
        result.opened = open_due(ledger, name, now=now)
        result.problems = [p for o in result.opened for p in o.problems]
    done = delivered(ledger, name)
    with ledger.session() as session:
        open_requests = list(session.exec(select(RequestRecord).where(
            RequestRecord.challenge_id == record.id, RequestRecord.closed.is_(False))))
    for request in open_requests:
        if request.kind == "validation" and request.deadline < now:
            _close_validation(ledger, request, now, result)
        elif request.kind == "prediction" and labels_arrive_with(challenge, request.release_index) is None:
            _finish(ledger, request, "void", now, {"status": "void", "reason": "its labels are never released"})
            result.void += 1
        elif request.kind == "prediction" and labels_arrive_with(challenge, request.release_index) in done:
            _score(ledger, challenge, request, now, result)
        elif request.kind == "prediction" and record.state == "cancelled":
            _finish(ledger, request, "void", now, {"status": "void", "reason": "the challenge was cancelled"})
            result.void += 1
    return result


def _close_validation(ledger: Ledger, request: RequestRecord, now: datetime, result: Round) -> None:
    if request.attempts_used == 0:
        _finish(ledger, request, "missed", now, {"status": "missed", "reason": "no answer before the deadline"})
        result.missed += 1
    else:  # the latest answer's verdict stands
        _finish(ledger, request, request.status, now, None)
        result.closed += 1


def _score(ledger: Ledger, challenge: Challenge, request: RequestRecord, now: datetime, result: Round) -> None:
    with ledger.session() as session:
        latest = _latest_on_time(session, request.id)
    if latest is None:
        _finish(ledger, request, "missed", now, {"status": "missed", "reason": "no prediction before the deadline"})
        result.missed += 1
        return
    if latest.predictions is None:  # the latest on-time answer was invalid: it stands
        _finish(ledger, request, "invalid", now, None)
        result.closed += 1
        return
    spec = challenge.requests.prediction
    truth = labels(challenge, request.release_index, spec.label).filter(
        pl.col(ROW_ID).is_in(pl.Series(request.row_ids, dtype=pl.Int64).implode()))
    predicted = pl.read_parquet(io.BytesIO(latest.predictions))
    joined = truth.join(predicted, on=ROW_ID, how="left")
    value = score(spec.metric, joined[spec.label], joined[PREDICTION])
    _finish(ledger, request, "scored", now, {"status": "scored", "metric": spec.metric, "score": value,
                                             "rows": truth.height, "answered": predicted.height}, score=value)
    result.scored += 1


def _latest_on_time(session: Session, request_id: str) -> AnswerRecord | None:
    return session.exec(select(AnswerRecord).where(AnswerRecord.request_id == request_id, AnswerRecord.on_time)
                        .order_by(AnswerRecord.attempt.desc(), AnswerRecord.id.desc())).first()


def _finish(ledger: Ledger, request: RequestRecord, status: str, now: datetime, detail: dict | None, *,
            score: float | None = None) -> None:
    """Close ``request`` with ``status``; a new verdict (``detail``) is recorded and told to the feed."""
    with ledger.session() as session:
        feed.lock_feed(session)
        values = {"status": status, "closed": True, "judged_at": now}
        if score is not None:
            values["score"] = score
        changed = session.exec(update(RequestRecord).where(RequestRecord.id == request.id,
                                                           RequestRecord.closed.is_(False)).values(**values))
        if changed.rowcount == 1 and detail is not None:
            judgement = JudgementRecord(request_id=request.id, status=status, score=score, detail=detail, judged_at=now)
            session.add(judgement)
            session.flush()
            feed.add_event(session, request.challenge_id, f"judgement:{judgement.id}", "judgement",
                           {"request": request.id, "status": status, "score": score},
                           participant_id=request.participant_id, at=now)
        session.commit()
