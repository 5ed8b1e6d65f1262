"""Calling participants' model services: one call, or a round to many at once.

A call resolves the URL once (guard), connects to the checked address only, signs the
body, never follows a redirect, stops reading at ``max_bytes``, and ends at ``timeout``
whatever the other side does. Its :class:`CallResult` says what happened in one word
(:data:`OUTCOMES`) plus the DNS / connect / TLS / first-byte / total milliseconds.

A round sends the same rows to every endpoint concurrently (at most ``max_concurrency``
calls in flight) and returns when all have finished or the round's deadline,
``ROUND_FACTOR`` x the call timeout, has passed: one hanging endpoint never holds up
the others, and calls still queued at the deadline end as ``timeout``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import httpx

from ppipe.endpoints import guard, protocols, signing
from ppipe.endpoints.guard import Policy, RefusedURL, Resolver

OUTCOMES = ("ok", "timeout", "refused", "http_error", "bad_body", "wrong_rows", "too_large", "tls_error", "redirect")
MAX_BYTES = 1 << 20
ROUND_FACTOR = 1.25
DEFAULT_CONCURRENCY = 256
_ERROR_CHARS = 300


@dataclass(frozen=True)
class Endpoint:
    """One registered service: where, how, and the secret its calls are signed with."""

    key: str  # who it belongs to (a participant's name); results carry it back
    url: str
    protocol: str = "ppipe"
    secret: str | None = None


@dataclass(frozen=True)
class CallSettings:
    timeout: float = 2.0  # seconds, the whole call: DNS, connect, TLS, request, answer
    policy: Policy = field(default_factory=Policy)
    label: str | None = None  # the column that must never leave
    max_bytes: int = MAX_BYTES
    ssl_context: ssl.SSLContext | None = None  # default: certifi's CAs
    resolver: Resolver | None = None  # default: the system's (getaddrinfo)


@dataclass
class CallResult:
    key: str
    started_at: datetime
    outcome: str = "ok"
    status: int | None = None
    error: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    rows_sent: int = 0
    rows_answered: int = 0
    predictions: dict[Any, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "predictions"}
        out["started_at"] = self.started_at.isoformat()
        return out


class _TooLarge(Exception):
    pass


class _Clock:
    """Millisecond marks of one call, fed by httpcore's trace extension."""

    def __init__(self):
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    async def trace(self, name: str, info: dict) -> None:
        self.marks[name] = time.perf_counter()

    def since_start(self, when: float | None = None) -> float:
        return round(((when or time.perf_counter()) - self.start) * 1000, 3)

    def span(self, step: str) -> float | None:
        began, ended = self.marks.get(f"connection.{step}.started"), self.marks.get(f"connection.{step}.complete")
        return round((ended - began) * 1000, 3) if began and ended else None

    def fill(self, result: CallResult) -> None:
        result.connect_ms, result.tls_ms = self.span("connect_tcp"), self.span("start_tls")
        headers = self.marks.get("http11.receive_response_headers.complete")
        result.first_byte_ms = self.since_start(headers) if headers else None
        result.total_ms = self.since_start()

    @property
    def tls_failed(self) -> bool:
        return "connection.start_tls.failed" in self.marks


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


async def call(endpoint: Endpoint, rows: Sequence[dict], settings: CallSettings, *,
               request_id: str = "probe", deadline: float | None = None) -> CallResult:
    """Send ``rows`` (label dropped) to one endpoint and judge its answer's shape."""
    protocol = protocols.get(endpoint.protocol)
    sent = protocols.features(rows, settings.label)
    row_ids = [row[protocols.ROW_ID] for row in sent]
    body = protocol.encode(sent, request_id)
    return await _exchange(
        endpoint, "POST", protocol.predict_url(endpoint.url), body, settings,
        decode=lambda data: protocol.decode(data, row_ids), rows_sent=len(row_ids), deadline=deadline,
    )


async def ready(endpoint: Endpoint, settings: CallSettings) -> CallResult | None:
    """The protocol's readiness check (v2: ``GET /v2/health/ready``); None if it has none."""
    url = protocols.get(endpoint.protocol).ready_url(endpoint.url)
    if url is None:
        return None
    return await _exchange(endpoint, "GET", url, b"", settings, decode=None, rows_sent=0)


async def run_round(endpoints: Sequence[Endpoint], rows: Sequence[dict], settings: CallSettings, *,
                    request_id: str = "round", max_concurrency: int = DEFAULT_CONCURRENCY) -> list[CallResult]:
    """The same rows to every endpoint at once; one result per endpoint, in order."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout * ROUND_FACTOR
    slots = asyncio.Semaphore(max_concurrency)

    async def one(endpoint: Endpoint) -> CallResult:
        try:
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        except TimeoutError:
            return CallResult(endpoint.key, _now(), "timeout", error="not started: too many calls in flight until the round's deadline",
                              rows_sent=len(rows))
        try:
            return await call(endpoint, rows, settings, request_id=request_id, deadline=deadline)
        finally:
            slots.release()

    return list(await asyncio.gather(*(one(e) for e in endpoints)))


def run_round_sync(endpoints: Sequence[Endpoint], rows: Sequence[dict], settings: CallSettings, **kwargs) -> list[CallResult]:
    """:func:`run_round` from synchronous code (the flow's tasks, the CLI)."""
    return asyncio.run(run_round(endpoints, rows, settings, **kwargs))


async def _exchange(endpoint: Endpoint, method: str, url: str, body: bytes, settings: CallSettings, *,
                    decode: Callable[[bytes], protocols.Answer] | None, rows_sent: int,
                    deadline: float | None = None) -> CallResult:
    result = CallResult(endpoint.key, _now(), rows_sent=rows_sent)
    clock = _Clock()
    limit = asyncio.get_running_loop().time() + settings.timeout
    try:
        async with asyncio.timeout_at(min(limit, deadline) if deadline else limit):
            target = await guard.resolve(url, settings.policy, settings.resolver)
            result.dns_ms = round(target.dns_ms, 3)
            data = await _send(target, method, body, endpoint.secret, settings, clock, result)
        if data is not None and decode is not None:
            _judge(decode(data), result)
    except TimeoutError:
        _fail(result, "timeout", f"no complete answer within {settings.timeout:g}s")
    except RefusedURL as exc:
        _fail(result, "refused", exc.rule)
    except httpx.TimeoutException:
        _fail(result, "timeout", f"no complete answer within {settings.timeout:g}s")
    except httpx.TransportError as exc:
        if clock.tls_failed:
            _fail(result, "tls_error", _short(exc))
        else:
            _fail(result, "refused", _connection_problem(exc, clock))
    except _TooLarge:
        _fail(result, "too_large", f"answer over {settings.max_bytes} bytes")
    except protocols.BadBody as exc:
        _fail(result, "bad_body", _short(exc))
    clock.fill(result)
    return result


async def _send(target: guard.Target, method: str, body: bytes, secret: str | None, settings: CallSettings,
                clock: _Clock, result: CallResult) -> bytes | None:
    """The request over a pinned connection; the body read up to the cap (None: no body to judge)."""
    headers = {"user-agent": "ppipe", "accept": "application/json", "accept-encoding": "identity"}
    if method == "POST":
        headers["content-type"] = "application/json"
    if secret:
        headers.update(signing.signed_headers(secret, body))
    request = httpx.Request(method, target.url, content=body, headers=headers, extensions={
        "trace": clock.trace,
        "timeout": {"connect": settings.timeout, "read": settings.timeout, "write": settings.timeout, "pool": settings.timeout},
    })
    transport = guard.PinnedTransport(target, settings.ssl_context or default_ssl_context())
    async with transport:
        response = await transport.handle_async_request(request)
        try:
            result.status = response.status_code
            if 300 <= response.status_code < 400:
                where = _short(response.headers.get("location", "?"), 120)
                _fail(result, "redirect", f"HTTP {response.status_code} to {where} (redirects are not followed)")
                return None
            if response.status_code >= 400 or response.status_code < 200:
                _fail(result, "http_error", f"HTTP {response.status_code}")
                return None
            return await _read_capped(response, settings.max_bytes)
        finally:
            await response.aclose()


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _judge(answer: protocols.Answer, result: CallResult) -> None:
    result.rows_answered = answer.rows_answered
    result.predictions = answer.predictions
    if answer.problem:
        _fail(result, "wrong_rows", answer.problem)


def _fail(result: CallResult, outcome: str, error: str) -> None:
    result.outcome, result.error = outcome, error


def _connection_problem(exc: Exception, clock: _Clock) -> str:
    if "connection.connect_tcp.complete" in clock.marks:
        return f"connection dropped: {_short(exc)}"
    return f"connection refused: {_short(exc)}"


def _short(value: object, limit: int = _ERROR_CHARS) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _now() -> datetime:
    return datetime.now(timezone.utc)
