"""The participants' HTTP API (FastAPI): ``create_app()``; served by ``ppipe api``.

Every ``/v1`` route needs ``Authorization: Bearer TOKEN``. Errors are ``{"detail": one line}``:
401 bad token, 404 not found (also another participant's request: existence never leaks),
409 closed or out of attempts, 413 body too large, 415 unknown content type, 422 bad input.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.concurrency import run_in_threadpool

from ppipe.errors import ConflictError, NotFoundError, PpipeError, SpecError
from ppipe.ledger import Ledger
from ppipe.participants import service
from ppipe.participants.http import bodies, pages
from ppipe.participants.http.auth import Participant
from ppipe.participants.http.models import (
    AnswerOut, Board, FeedPage, Me, PredictionAnswer, Problem, RequestOut, ValidationAnswer,
)
from ppipe.participants.records import ensure_tables

DEFAULT_BODY_LIMIT = 16 << 20
ERRORS = {status: {"model": Problem} for status in (401, 404, 409, 413, 415, 422)}
#: Routers other parts of ppipe add to the API (a live-endpoint registration, for instance).
EXTRA_ROUTERS: list[APIRouter] = []

v1 = APIRouter(prefix="/v1", responses={401: {"model": Problem}})
public = APIRouter()


# The read routes are polled by every participant's pipeline: they run on the event loop (their
# ledger reads are prepared statements of a fraction of a millisecond, cheaper than a thread
# hop) and return pre-serialised JSON; their response models document them in /openapi.json.


def json_response(document) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


@v1.get("/me", response_model=Me)
async def me(request: Request, who: Participant) -> Response:
    return json_response(service.me(who, ledger=request.app.state.ledger))


@v1.get("/feed", response_model=FeedPage, responses={422: {"model": Problem}})
async def feed(request: Request, who: Participant, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    page = service.read_feed(who, after=after, limit=limit, ledger=request.app.state.ledger)
    return json_response({"events": page.events, "next_after": page.next_after, "has_more": page.has_more})


@v1.get("/requests", response_model=list[RequestOut], responses={422: {"model": Problem}})
async def requests(request: Request, who: Participant, status: Literal["open", "all"] = "open") -> Response:
    return json_response(service.list_requests(who, status=status, ledger=request.app.state.ledger))


@v1.get("/requests/{request_id}", response_model=RequestOut, responses={404: {"model": Problem}})
async def one_request(request: Request, who: Participant, request_id: str) -> Response:
    return json_response(service.get_request(who, request_id, ledger=request.app.state.ledger))


ANSWER_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"oneOf": [
            {"$ref": "#/components/schemas/ValidationAnswer"}, {"$ref": "#/components/schemas/PredictionAnswer"}]}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    },
}


@v1.put("/requests/{request_id}/answer", response_model=AnswerOut, responses=ERRORS,
        openapi_extra={"requestBody": ANSWER_BODY})
async def answer(request: Request, who: Participant, request_id: str) -> Response:
    """Answer with rows (validation) or predictions, as JSON, CSV or Parquet; returns the judgement."""
    ledger = request.app.state.ledger
    found = await run_in_threadpool(service.get_request, who, request_id, ledger=ledger)
    content_type = bodies.media_type(request)
    bodies.check_type(content_type)
    body = await bodies.read_limited(request, request.app.state.body_limit)
    frame = await run_in_threadpool(bodies.parse, body, found["kind"], content_type)
    return json_response(await run_in_threadpool(service.answer, who, request_id, frame,
                                                 content_type=content_type, size=len(body), ledger=ledger))


@v1.get("/leaderboard", response_model=Board)
def leaderboard(request: Request, who: Participant) -> Response:
    return json_response(service.leaderboard(who.challenge, ledger=request.app.state.ledger).to_json())


@public.get("/leaderboard", response_class=HTMLResponse, responses={404: {"model": Problem}})
def leaderboard_page(request: Request, challenge: str | None = None, sort: str | None = None,
                     order: Literal["asc", "desc"] | None = None) -> HTMLResponse:
    """The public leaderboard of ``challenge`` (or the list of public ones)."""
    ledger = request.app.state.ledger
    names = public_challenges(ledger)
    if challenge is None and len(names) != 1:
        return HTMLResponse(pages.index(names))
    name = challenge or names[0]
    if name not in names:
        raise NotFoundError(f"no public leaderboard for {name!r}")
    return HTMLResponse(pages.render(service.leaderboard(name, ledger=ledger), sort=sort, order=order))


def public_challenges(ledger: Ledger) -> list[str]:
    names = []
    for record in ledger.list_challenges():
        spec = record.spec
        if spec.get("requests") and (spec.get("leaderboard") or {}).get("public", True):
            names.append(record.name)
    return names


@public.get("/healthz", include_in_schema=False)
def healthz() -> dict:
    return {"ok": True}


def create_app(ledger: Ledger | None = None, *, body_limit: int = DEFAULT_BODY_LIMIT) -> FastAPI:
    """The API over ``ledger`` (default: the configured one)."""
    app = FastAPI(title="ppipe participants API", version="1",
                  description="Releases, requests, answers and the leaderboard of a ppipe challenge.")
    app.state.ledger = ledger or Ledger()
    app.state.body_limit = body_limit
    ensure_tables(app.state.ledger.engine)
    for router in (v1, public, *EXTRA_ROUTERS):
        app.include_router(router)
    _error_handlers(app)
    return app


def _error_handlers(app: FastAPI) -> None:
    def problem(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(NotFoundError)
    async def not_found(_request, exc: NotFoundError):
        return problem(404, str(exc))

    @app.exception_handler(ConflictError)
    async def conflict(_request, exc: ConflictError):
        return problem(409, str(exc))

    @app.exception_handler(SpecError)
    async def bad_input(_request, exc: SpecError):
        return problem(422, str(exc))

    @app.exception_handler(bodies.BodyError)
    async def bad_body(_request, exc: bodies.BodyError):
        return problem(exc.status, exc.detail)

    @app.exception_handler(PpipeError)
    async def ppipe_error(_request, exc: PpipeError):
        return problem(503, str(exc))  # the ledger or a release file is unavailable: not the client's fault

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return problem(422, f"{where}: {first.get('msg', 'invalid')}")
