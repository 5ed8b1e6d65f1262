"""The HTTP API's request and response bodies (typed; they make /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool | None


class Problem(BaseModel):
    detail: str = Field(description="One line naming the field, row or rule at fault.")


class Place(BaseModel):
    """Where the participant reads one destination's files: ``read_at`` is the destination
    itself, or another address of it (an S3 access point's ``s3://<alias>/<prefix>``)."""

    service: str
    destination: str
    read_at: str


class Me(BaseModel):
    participant: str
    challenge: str
    storage: list[Place] = []


class Event(BaseModel):
    """A feed event: ``seq``, ``kind`` and ``at``, plus the fields of its kind."""

    model_config = ConfigDict(extra="allow")

    seq: int
    kind: Literal["release", "request", "judgement"]
    at: str


class FeedPage(BaseModel):
    events: list[Event]
    next_after: int = Field(description="Pass as ?after= to read on.")
    has_more: bool


class Judgement(BaseModel):
    """A verdict: validation counts and mismatches, or a prediction's status and score."""

    model_config = ConfigDict(extra="allow")

    status: str
    score: float | None = None
    matched: int | None = None
    expected: int | None = None
    missing: int | None = None
    extra: int | None = None
    mismatches: list[dict[str, Any]] | None = None
    reason: str | None = None


class RequestOut(BaseModel):
    id: str
    kind: Literal["validation", "prediction"]
    release: str
    row_ids: list[int]
    features: dict[str, str] | None = Field(default=None, description="Prediction: the features file's URI per destination.")
    deadline: str
    attempts_left: int
    status: str
    closed: bool
    judgement: Judgement | None = None


class AnswerOut(Judgement):
    request: str
    attempt: int
    attempts_left: int


class ValidationAnswer(BaseModel):
    rows: list[dict[str, Scalar]] = Field(description="The requested rows as ingested, each with its row_id.")


class Prediction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    row_id: int
    prediction: Scalar


class PredictionAnswer(BaseModel):
    predictions: list[Prediction]


class Column(BaseModel):
    key: str
    title: str
    kind: str
    higher_is_better: bool


class Board(BaseModel):
    challenge: str
    metric: str | None
    columns: list[Column]
    rows: list[dict[str, Any]]
