"""Ledger tables for live endpoints: who registered which service, and every call made to it.

They live on the ledger's metadata and are named in ``ppipe.ledger.TABLE_MODULES``, so
every ledger creates them with the rest, on SQLite and PostgreSQL. No secret is stored: an endpoint's signing secret is
derived from the installation key and ``secret_version`` (see ``signing``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ppipe.ledger import UTCDateTime, utcnow

ENDPOINT_STATES = ("active", "removed")
CALL_KINDS = ("register", "health", "round")


def _when(**kwargs):
    return Field(sa_type=UTCDateTime, **kwargs)


class EndpointRecord(SQLModel, table=True):
    """A participant's model service (one per participant and challenge)."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("challenge_id", "participant", name="uq_endpoint_participant"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    participant_id: int | None = Field(default=None, foreign_key="participants.id", ondelete="CASCADE", index=True)
    participant: str = Field(max_length=64)  # the name, as shown on the leaderboard
    url: str = Field(max_length=2048)
    protocol: str = Field(default="ppipe", max_length=8)
    secret_version: int = 1
    state: str = Field(default="active", max_length=16)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class EndpointCall(SQLModel, table=True):
    """One call to an endpoint and what came of it (``probe.CallResult`` as stored)."""

    __tablename__ = "endpoint_calls"
    __table_args__ = (
        Index("ix_endpoint_calls_endpoint_started", "endpoint_id", "started_at"),
        Index("ix_endpoint_calls_round", "endpoint_id", "kind", "round"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)  # register | health | round
    round: str | None = Field(default=None, max_length=255)  # the prediction batch a round answers
    started_at: datetime = _when()
    outcome: str = Field(max_length=16)
    status: int | None = None
    error: str | None = Field(default=None, max_length=400)
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    rows_sent: int = 0
    rows_answered: int = 0
    # A round's answers, kept until the labels arrive to score them: [[row_id, prediction], ...]
    predictions: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    score: float | None = None

