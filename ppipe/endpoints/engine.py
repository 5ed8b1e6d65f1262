"""Live endpoints end to end: register (checked, probed at once), health checks, prediction rounds, scores.

Synchronous functions over the ledger, for the CLI, the HTTP API (FastAPI runs them in its
thread pool) and the flow's tasks; the calls themselves run concurrently on an asyncio loop
of their own (:mod:`ppipe.endpoints.probe`).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ppipe.endpoints import protocols, signing, stats, store
from ppipe.challenge.endpoints import EndpointSettings
from ppipe.endpoints.guard import Policy, RefusedURL, Resolver, check_url, resolve
from ppipe.endpoints.probe import CallResult, CallSettings, Endpoint, call, ready, run_round
from ppipe.endpoints.records import EndpointRecord
from ppipe.ledger import Ledger

#: ``metric(truth, predicted) -> score``, same order; a None prediction is a wrong one.
Metric = Callable[[list, list], float]


@dataclass(frozen=True)
class Registration:
    endpoint: EndpointRecord
    secret: str  # shown once, to the participant; stored nowhere
    probe: CallResult

    def to_json(self) -> dict[str, Any]:
        return {"url": self.endpoint.url, "protocol": self.endpoint.protocol, "secret": self.secret,
                "probe": self.probe.to_dict()}


def call_settings(spec: EndpointSettings, *, label: str | None = None, ssl_context: ssl.SSLContext | None = None,
                  resolver: Resolver | None = None) -> CallSettings:
    return CallSettings(timeout=spec.timeout.total_seconds(), policy=policy(spec), label=label,
                        ssl_context=ssl_context, resolver=resolver)


def policy(spec: EndpointSettings) -> Policy:
    return Policy(allow_http=spec.allow_http, allow_private=spec.allow_private)


def validate(url: str, protocol: str, spec: EndpointSettings, *, resolver: Resolver | None = None) -> None:
    """RefusedURL (one line naming the rule) unless ppipe may call ``url`` with ``protocol``."""
    try:
        protocols.get(protocol).check_url(url)
    except protocols.ProtocolError as exc:
        raise RefusedURL(str(exc).removeprefix("url: ")) from None
    check_url(url, policy(spec))
    asyncio.run(resolve(url, policy(spec), resolver))


def register(ledger: Ledger, challenge: str, participant: str, url: str, protocol: str, spec: EndpointSettings, *,
             rows: Sequence[dict] = (), label: str | None = None, ssl_context: ssl.SSLContext | None = None,
             resolver: Resolver | None = None, participant_id: int | None = None) -> Registration:
    """Check the URL (nothing is written if it is refused), record it, probe it once; a new secret each time."""
    validate(url, protocol, spec, resolver=resolver)
    record = store.upsert(ledger, challenge, participant, url.strip(), protocol, participant_id=participant_id)
    secret = signing.endpoint_secret(str(record.id), record.secret_version)
    settings = call_settings(spec, label=label, ssl_context=ssl_context, resolver=resolver)
    result = asyncio.run(_first_probe(_endpoint(record, secret), rows, settings))
    store.record_calls(ledger, [(record, result)], "register")
    return Registration(record, secret, result)


async def _first_probe(endpoint: Endpoint, rows: Sequence[dict], settings: CallSettings) -> CallResult:
    """v2: the readiness check must pass before predictions are asked for."""
    readiness = await ready(endpoint, settings)
    if readiness is not None and readiness.outcome != "ok":
        return readiness
    return await call(endpoint, rows, settings, request_id="register")


def health_check(ledger: Ledger, challenge: str, rows: Sequence[dict], spec: EndpointSettings, **options: Any
                 ) -> list[tuple[str, CallResult]]:
    """One call to every active endpoint of the challenge, recorded as ``health``."""
    return _round(ledger, challenge, rows, spec, kind="health", round_name=None, **options)


def prediction_round(ledger: Ledger, challenge: str, round_name: str, rows: Sequence[dict], spec: EndpointSettings,
                     **options: Any) -> list[tuple[str, CallResult]]:
    """A prediction batch to every active endpoint; answers kept until the labels arrive."""
    return _round(ledger, challenge, rows, spec, kind="round", round_name=round_name, **options)


def _round(ledger: Ledger, challenge: str, rows: Sequence[dict], spec: EndpointSettings, *, kind: str,
           round_name: str | None, label: str | None = None, ssl_context: ssl.SSLContext | None = None,
           resolver: Resolver | None = None) -> list[tuple[str, CallResult]]:
    records = store.active(ledger, challenge)
    if not records:
        return []
    key = signing.signing_key()
    endpoints = [_endpoint(r, signing.endpoint_secret(str(r.id), r.secret_version, key)) for r in records]
    settings = call_settings(spec, label=label, ssl_context=ssl_context, resolver=resolver)
    results = asyncio.run(run_round(endpoints, rows, settings, request_id=round_name or kind))
    store.record_calls(ledger, zip(records, results), kind, round_name)
    return [(r.participant, result) for r, result in zip(records, results)]


def score_round(ledger: Ledger, challenge: str, round_name: str, truth: dict[Any, Any], metric: Metric
                ) -> dict[str, float | None]:
    """Score each endpoint's answer to a round now that its labels are known (None: no usable answer)."""
    scores, by_call = {}, {}
    row_ids = list(truth)
    for participant, recorded in store.round_calls(ledger, challenge, round_name):
        value = None
        if recorded.predictions is not None and recorded.outcome in ("ok", "wrong_rows"):
            answered = {row_id: prediction for row_id, prediction in recorded.predictions}
            value = metric([truth[r] for r in row_ids], [answered.get(r) for r in row_ids])
        scores[participant] = by_call[recorded.id] = value
    store.set_scores(ledger, by_call)
    return scores


def board_columns(ledger: Ledger, challenge: str, *, higher_is_better: bool = True) -> dict[str, dict[str, Any]]:
    """Per participant with an endpoint: uptime %, p50 and p95 ms, endpoint score.

    ``higher_is_better``: the metric is a rate in [0, 1] (accuracy, macro F1), so a failed
    round scores 0; otherwise (rmse, mae) it scores the round's worst answer.
    """
    pairs = store.calls(ledger, challenge, kinds=["health", "round"])
    summary = stats.by_participant(pairs)
    rounds: dict[str, dict[str, float | None]] = {}
    for participant, recorded in pairs:
        if recorded.kind == "round" and recorded.round and _scored(recorded):
            rounds.setdefault(recorded.round, {})[participant] = recorded.score
    scores = stats.endpoint_scores(rounds, higher_is_better=higher_is_better, failed=0.0 if higher_is_better else None)
    names = {r.participant for r in store.active(ledger, challenge)} | set(summary)
    empty = stats.summarise([])
    return {
        name: {"uptime": summary.get(name, empty).uptime, "p50_ms": summary.get(name, empty).p50_ms,
               "p95_ms": summary.get(name, empty).p95_ms, "endpoint_score": scores.get(name)}
        for name in sorted(names)
    }


def _scored(recorded) -> bool:
    """A round call has been through scoring (its score set, or it had nothing to score)."""
    return recorded.score is not None or recorded.outcome not in ("ok", "wrong_rows") or recorded.predictions is None


def _endpoint(record: EndpointRecord, secret: str) -> Endpoint:
    return Endpoint(key=record.participant, url=record.url, protocol=record.protocol, secret=secret)
