"""Live endpoints in the participants' HTTP API and on the leaderboard.

``PUT /v1/endpoint`` registers the caller's model service: the URL is checked (422 naming
the rule when refused), recorded, probed at once; the answer carries the probe's result and
the signing secret, shown this once. ``GET /v1/endpoint`` shows the registration and its
figures (never the secret).

:func:`install` adds the route and the leaderboard columns (uptime, p50, p95, endpoint
score) to the participant side; :func:`create_app` is the API with them (what ``ppipe api``
serves).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ppipe.endpoints import engine, side, store
from ppipe.endpoints.guard import RefusedURL
from ppipe.ledger import Ledger
from ppipe.participants import leaderboard
from ppipe.participants.http import EXTRA_ROUTERS
from ppipe.participants.http import create_app as participants_app
from ppipe.participants.http.auth import Participant
from ppipe.participants.http.models import Problem

router = APIRouter(prefix="/v1", tags=["endpoint"])

COLUMNS = [
    (leaderboard.Column("uptime", "uptime", "rate"), "uptime"),
    (leaderboard.Column("p50_ms", "p50 ms", "number", higher_is_better=False, short="p50 ms"), "p50_ms"),
    (leaderboard.Column("p95_ms", "p95 ms", "number", higher_is_better=False, short="p95 ms"), "p95_ms"),
    (leaderboard.Column("endpoint_score", "endpoint score", "score", short="endpt score"), "endpoint_score"),
]


class EndpointIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048, description="https URL of your model service.")
    protocol: Literal["ppipe", "v2"] = Field(default="ppipe", description="ppipe, or v2 (Open Inference Protocol).")


class Probe(BaseModel):
    outcome: str
    status: int | None
    error: str | None
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    first_byte_ms: float | None
    total_ms: float | None
    rows_sent: int
    rows_answered: int
    started_at: str


class EndpointOut(BaseModel):
    url: str
    protocol: str
    secret: str = Field(description="Verify X-Ppipe-Signature with it; shown only now.")
    probe: Probe


class EndpointView(BaseModel):
    url: str
    protocol: str
    uptime: float | None
    p50_ms: float | None
    p95_ms: float | None
    endpoint_score: float | None


@router.put("/endpoint", response_model=EndpointOut,
            responses={status: {"model": Problem} for status in (401, 409, 422)})
def put_endpoint(body: EndpointIn, request: Request, who: Participant) -> Any:
    """Register (or replace) your model service; it is probed at once. A new secret each time."""
    try:
        done = side.register(request.app.state.ledger, who.challenge, who.participant, body.url, body.protocol)
    except RefusedURL as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return done.to_json()


@router.get("/endpoint", response_model=EndpointView, responses={401: {"model": Problem}, 404: {"model": Problem}})
def get_endpoint(request: Request, who: Participant) -> dict:
    ledger = request.app.state.ledger
    record = store.get(ledger, who.challenge, who.participant)
    figures = engine.board_columns(ledger, who.challenge).get(who.participant, {})
    return {"url": record.url, "protocol": record.protocol, **{k: figures.get(k) for k in
                                                               ("uptime", "p50_ms", "p95_ms", "endpoint_score")}}


def install() -> None:
    """Add the route and the leaderboard columns to the participant side (idempotent)."""
    if router not in EXTRA_ROUTERS:
        EXTRA_ROUTERS.append(router)
    for column, key in COLUMNS:
        leaderboard.register(column, _column(key))


def create_app(ledger: Ledger | None = None, **options: Any) -> FastAPI:
    install()
    return participants_app(ledger, **options)


def _column(key: str):
    def compute(ledger: Ledger, challenge_id: uuid.UUID) -> dict[int, Any]:
        name = next((r.name for r in ledger.list_challenges() if r.id == challenge_id), None)
        if name is None:
            return {}
        spec = ledger.challenge(name)
        if spec.requests is None or spec.requests.endpoint is None:
            return {}
        lower = spec.requests.prediction.metric in ("rmse", "mae")
        figures = engine.board_columns(ledger, name, higher_is_better=not lower)
        ids = {r.participant: r.participant_id for r in store.active(ledger, name)}
        out = {}
        for participant, values in figures.items():
            value = values.get(key)
            if key == "uptime" and value is not None:
                value = round(value / 100, 4)  # a rate, as the other rate columns
            if ids.get(participant) is not None:
                out[ids[participant]] = value
        return out

    return compute
