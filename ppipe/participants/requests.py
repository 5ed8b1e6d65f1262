"""Opening requests after a release is delivered.

For every release delivered that has not been announced yet (oldest first):
- a ``release`` event in the feed;
- with ``requests.prediction`` and a next release still to come: ``predict_{k+1}`` delivered
  (see :mod:`ppipe.participants.batches`) and a prediction request per participant, due when
  release k+1 is;
- with ``requests.validation``, for the newest delivered release only (a catch-up run does
  not flood anyone): a validation request per participant, a seeded sample of row ids drawn
  from everything delivered so far, different for every participant.

Idempotent: running it twice opens nothing twice (unique keys in the ledger), so the flow
may call it after every run and ``ppipe judge`` may call it too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ppipe.ledger import Ledger, utcnow
from ppipe.challenge.spec import Challenge
from ppipe.participants import batches, feed
from ppipe.participants.delivered import Delivered, delivered, known_row_ids, read_batch_row_ids
from ppipe.participants.records import FeedEvent, ParticipantRecord, PredictionBatch, RequestRecord


@dataclass
class Opened:
    """What opening requests after one release did."""

    release: str
    validation: int = 0
    prediction: int = 0
    batch: str | None = None
    problems: list[str] = field(default_factory=list)


def new_request_id() -> str:
    return "req_" + secrets.token_urlsafe(12)


def unannounced(ledger: Ledger, name: str) -> list[int]:
    """Indexes of delivered releases whose requests are not opened yet, oldest first."""
    announced = _announced(ledger, ledger.get(name).id)
    return sorted(index for index in delivered(ledger, name) if index not in announced)


def open_due(ledger: Ledger, name: str, *, now: datetime | None = None) -> list[Opened]:
    """Announce every delivered release not announced yet and open its requests; oldest first."""
    return [open_release(ledger, name, index, now=now) for index in unannounced(ledger, name)]


def open_release(ledger: Ledger, name: str, index: int, *, now: datetime | None = None) -> Opened:
    """Announce delivered release ``index`` and open its requests (what the flow's task
    ``open requests release_k`` does); validation only when it is the newest release delivered."""
    challenge = ledger.challenge(name)
    done = delivered(ledger, name)
    opened = open_for_release(ledger, challenge, done, index, now=now or utcnow(), validation=index == max(done))
    opened.problems += batches.republish_manifest(ledger, challenge)  # a dispatch run rewrote manifest.json
    return opened


def _announced(ledger: Ledger, challenge_id) -> set[int]:
    with ledger.session() as session:
        keys = session.exec(select(FeedEvent.key).where(FeedEvent.challenge_id == challenge_id,
                                                        FeedEvent.kind == "release"))
        return {int(key.split(":", 1)[1]) for key in keys}


def open_for_release(ledger: Ledger, challenge: Challenge, done: dict[int, Delivered], index: int, *,
                     now: datetime, validation: bool = True) -> Opened:
    release = done[index]
    record = ledger.get(challenge.name)
    opened = Opened(release.name)
    batch = _prediction_batch(ledger, challenge, done, index, now, opened)
    with ledger.session() as session:
        feed.lock_feed(session)
        event = {"name": release.name, "index": index, "rows": release.rows, "sha256": release.sha256,
                 "uris": sorted(release.uris.values())}
        if batch is not None and batch.uris:
            event["predict"] = {"index": batch.index, "file": batch.file, "uris": sorted(batch.uris.values()),
                                "deadline": batch.deadline.isoformat()}
        feed.add_event(session, record.id, f"release:{index}", "release", event, at=now)
        participants = list(session.exec(select(ParticipantRecord).where(
            ParticipantRecord.challenge_id == record.id, ParticipantRecord.state == "active")))
        spec = challenge.requests
        if validation and spec is not None and spec.validation is not None:
            population = known_row_ids(challenge, sorted(i for i in done if i <= index)).to_numpy()
            for participant in participants:
                ids = sample(population, spec.validation.rows, seed_of(challenge, participant.id, index))
                opened.validation += _open(session, RequestRecord(
                    id=new_request_id(), challenge_id=record.id, participant_id=participant.id, kind="validation",
                    release_index=index, release=release.name, row_ids=ids, opened_at=now,
                    deadline=now + spec.validation.deadline, attempts=spec.validation.attempts))
        if batch is not None:
            ids = read_batch_row_ids(challenge, batch.file)
            for participant in participants:
                opened.prediction += _open(session, RequestRecord(
                    id=new_request_id(), challenge_id=record.id, participant_id=participant.id, kind="prediction",
                    release_index=batch.index, release=challenge.release_name(batch.index), row_ids=ids,
                    features=dict(batch.uris), opened_at=now, deadline=batch.deadline,
                    attempts=spec.prediction.attempts, status="pending" if batch.uris else "void",
                    closed=not batch.uris))
        try:
            session.commit()
        except IntegrityError:  # a concurrent run announced this release first
            session.rollback()
            return Opened(release.name)
    return opened


def _open(session, request: RequestRecord) -> int:
    """Add ``request`` unless the participant already has one of that kind for that release."""
    taken = session.exec(select(RequestRecord.id).where(
        RequestRecord.participant_id == request.participant_id, RequestRecord.kind == request.kind,
        RequestRecord.release_index == request.release_index)).first()
    if taken:
        return 0
    session.add(request)
    feed.add_event(session, request.challenge_id, f"request:{request.id}", "request",
                   {"id": request.id, "request_kind": request.kind, "release": request.release,
                    "deadline": request.deadline.isoformat()},
                   participant_id=request.participant_id, at=request.opened_at)
    return 1


def _prediction_batch(ledger: Ledger, challenge: Challenge, done: dict[int, Delivered], index: int,
                      now: datetime, opened: Opened) -> PredictionBatch | None:
    """Deliver ``predict_{index+1}`` when predictions are asked for and release index+1 is still to come."""
    spec = challenge.requests
    target = index + 1
    if spec is None or spec.prediction is None or target >= challenge.release_count or target in done:
        return None
    deadline = challenge.schedule.time_of(target)
    if deadline <= now:
        return None  # release k+1 is already due: its labels are about to go out, nothing left to predict
    batch, problems = batches.deliver(ledger, challenge, target, deadline)
    opened.batch, opened.problems = batch.file, problems
    return batch


def seed_of(challenge: Challenge, participant_id: int, index: int) -> int:
    """A per-(challenge, participant, release) seed: samples differ between participants, reproducibly."""
    digest = hashlib.sha256(f"{challenge.id}/{participant_id}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sample(population: np.ndarray, rows: int, seed: int) -> list[int]:
    """``rows`` distinct row ids (all of them if fewer), sorted."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(population, size=min(rows, len(population)), replace=False) if len(population) else []
    return sorted(int(x) for x in chosen)
