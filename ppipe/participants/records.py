"""The participant side's ledger tables, on the ledger's own metadata (SQLite and PostgreSQL).

- ``participants``: who takes part in a challenge; the API token is kept only as its sha256.
- ``requests``: one validation or prediction request per participant and release.
- ``answers``: every answer received (prediction answers keep their rows until scored).
- ``judgements``: every verdict (an answer judged, a miss, a score, a void).
- ``prediction_batches``: the ``predict_k`` feature files delivered ahead of release k.
- ``feed_events``: what each participant's feed shows, numbered by a strictly increasing ``seq``.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from ppipe.ledger import UTCDateTime, utcnow

PARTICIPANT_STATES = ("active", "revoked")
REQUEST_KINDS = ("validation", "prediction")
#: pending: open; the rest are verdicts. ``late``, ``missed``, ``scored`` and ``void`` close a request.
REQUEST_STATUSES = ("pending", "correct", "partial", "incorrect", "invalid", "late", "missed", "scored", "void")
CLOSED_STATUSES = ("late", "missed", "scored", "void")


def _when(**kwargs):
    return Field(sa_type=UTCDateTime, **kwargs)


class ParticipantRecord(SQLModel, table=True):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("challenge_id", "name", name="uq_participant_name"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    token_hash: str = Field(max_length=64, unique=True, index=True)  # sha256 hex of the token, never the token
    state: str = Field(default="active", max_length=16)
    identities: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # grant specs
    created_at: datetime = _when(default_factory=utcnow)
    rotated_at: datetime | None = _when(default=None)
    revoked_at: datetime | None = _when(default=None)


class RequestRecord(SQLModel, table=True):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("participant_id", "kind", "release_index", name="uq_request_per_release"),
        Index("ix_requests_open", "challenge_id", "status", "deadline"),
    )

    id: str = Field(primary_key=True, max_length=32)  # random, so ids say nothing about others' requests
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participants.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)
    release_index: int  # validation: the release whose delivery opened it; prediction: the release predicted
    release: str = Field(max_length=255)
    row_ids: list = Field(sa_column=Column(JSON, nullable=False))
    features: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # prediction: URIs
    opened_at: datetime = _when(default_factory=utcnow)
    deadline: datetime = _when()
    attempts: int
    attempts_used: int = 0
    status: str = Field(default="pending", max_length=16)
    closed: bool = False  # no answer is accepted any more (deadline passed and judged, late, missed, scored, void)
    score: float | None = None
    judged_at: datetime | None = _when(default=None)


class AnswerRecord(SQLModel, table=True):
    __tablename__ = "answers"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="requests.id", ondelete="CASCADE", index=True, max_length=32)
    attempt: int
    received_at: datetime = _when(default_factory=utcnow)
    on_time: bool
    content_type: str = Field(max_length=64)
    rows: int
    bytes: int
    predictions: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))  # Parquet


class JudgementRecord(SQLModel, table=True):
    __tablename__ = "judgements"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="requests.id", ondelete="CASCADE", index=True, max_length=32)
    answer_id: int | None = Field(default=None, foreign_key="answers.id", ondelete="CASCADE")
    status: str = Field(max_length=16)
    score: float | None = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    judged_at: datetime = _when(default_factory=utcnow)


class PredictionBatch(SQLModel, table=True):
    """The features of release ``index`` (label removed), delivered with release ``index - 1``."""

    __tablename__ = "prediction_batches"
    __table_args__ = (UniqueConstraint("challenge_id", "index", name="uq_prediction_batch"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    index: int
    file: str = Field(max_length=255)
    rows: int
    sha256: str = Field(max_length=64)
    bytes: int
    uris: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # destination -> URI
    deadline: datetime = _when()
    created_at: datetime = _when(default_factory=utcnow)


class FeedEvent(SQLModel, table=True):
    """One line of a participant's feed; ``participant_id`` None means every participant of the challenge.

    ``seq`` is assigned while holding the feed lock (see :mod:`ppipe.participants.feed`), so
    the order of ``seq`` is the order of commits and a cursor never skips an event.
    """

    __tablename__ = "feed_events"
    __table_args__ = (
        UniqueConstraint("challenge_id", "key", name="uq_feed_key"),
        Index("ix_feed_cursor", "challenge_id", "seq"),
    )

    # SQLite autoincrements only an INTEGER primary key; PostgreSQL gets a BIGINT identity.
    seq: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    participant_id: int | None = Field(default=None, foreign_key="participants.id", ondelete="CASCADE")
    key: str = Field(max_length=128)  # makes recording an event idempotent
    kind: str = Field(max_length=16)
    at: datetime = _when(default_factory=utcnow)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


TABLES = [t.__table__ for t in (ParticipantRecord, RequestRecord, AnswerRecord, JudgementRecord,
                                PredictionBatch, FeedEvent)]
_ready: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def ensure_tables(engine: Engine) -> None:
    """Create this side's tables on a ledger opened before this module was imported (once per engine)."""
    if engine not in _ready:
        SQLModel.metadata.create_all(engine, tables=TABLES)
        _ready.add(engine)
