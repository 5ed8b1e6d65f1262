"""Live endpoints on the participant side: who registers, which rows go out, when rounds run and are scored.

- registering: a participant's endpoint, probed at once with rows of the newest delivered
  release (label removed);
- a prediction round: when ``predict_k`` goes out, its rows go to every endpoint too;
- scoring: once release k's labels are delivered (with it, or later with late labels), each
  endpoint's answer to ``predict_k`` is scored with the challenge's metric, like a submitted prediction;
- health checks: rows of the newest release, every ``health_every``: a deployment of their own on that
  interval (``ppipe.orchestration.health``), and each dispatch run when one is overdue.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import Any

import polars as pl

from ppipe import settings
from ppipe.challenge.endpoints import EndpointSettings
from ppipe.challenge.spec import Challenge
from ppipe.endpoints import engine, store
from ppipe.endpoints.guard import Resolver
from ppipe.errors import ConflictError, PpipeError
from ppipe.ledger import Ledger, utcnow
from ppipe.participants import batches, roster
from ppipe.participants.delivered import delivered, labels, labels_arrive_with, read_release
from ppipe.participants.judging import PREDICTION, ROW_ID, score

ROUND_PREFIX = "predict_"


def endpoint_spec(challenge: Challenge) -> EndpointSettings:
    """The challenge's ``requests.endpoint``; ConflictError when it takes no endpoints."""
    spec = challenge.requests.endpoint if challenge.requests is not None else None
    if spec is None:
        raise ConflictError(f"challenge {challenge.name!r} takes no live endpoints (no requests.endpoint in its spec)")
    return spec


def register(ledger: Ledger, challenge: str, participant: str, url: str, protocol: str = "ppipe", *,
             ssl_context: ssl.SSLContext | None = None, resolver: Resolver | None = None) -> engine.Registration:
    """Register (or replace) ``participant``'s endpoint and probe it with rows of the newest release."""
    spec = ledger.challenge(challenge)
    person = roster.get(ledger, challenge, participant)
    return engine.register(ledger, challenge, participant, url, protocol, endpoint_spec(spec), rows=sample(ledger, spec),
                           label=spec.requests.prediction.label, ssl_context=ssl_context, resolver=resolver,
                           participant_id=person.id)


def sample(ledger: Ledger, challenge: Challenge) -> list[dict]:
    """The first ``rows`` rows of the newest delivered release, label dropped (none yet: no rows)."""
    done = delivered(ledger, challenge.name)
    if not done:
        return []
    frame = read_release(challenge, max(done)).drop(challenge.requests.prediction.label, strict=False)
    return _records(frame.head(endpoint_spec(challenge).rows))


def prediction_round(ledger: Ledger, challenge: str, index: int, **options: Any) -> list[str]:
    """Send batch ``predict_{index}`` to every endpoint; one line per outcome kind."""
    spec = ledger.challenge(challenge)
    if spec.requests is None or spec.requests.endpoint is None:
        return []
    batch = batches.existing(ledger, ledger.get(challenge).id, index)
    if batch is None:
        return []
    frame = _read_batch(spec, batch.file)
    results = engine.prediction_round(ledger, challenge, f"{ROUND_PREFIX}{index}", _records(frame),
                                      spec.requests.endpoint, label=spec.requests.prediction.label, **options)
    return [f"{ROUND_PREFIX}{index} -> {who}: {result.outcome}" for who, result in results]


def score_due(ledger: Ledger, challenge: str) -> dict[str, dict[str, float | None]]:
    """Score every round whose release is now delivered and not scored yet; round -> participant -> score."""
    spec = ledger.challenge(challenge)
    if spec.requests is None or spec.requests.endpoint is None:
        return {}
    done = delivered(ledger, challenge)
    scored = {}
    for name in store.unscored_rounds(ledger, challenge):
        index = int(name.removeprefix(ROUND_PREFIX))
        arrives = labels_arrive_with(spec, index)  # the release itself, or a later one with late labels
        if arrives is None or arrives not in done:
            continue
        try:
            truth = _truth(spec, index)
        except PpipeError:  # the labels are not in the delivered file (yet): the next run tries again
            continue
        scored[name] = engine.score_round(ledger, challenge, name, truth, _metric(spec))
    return scored


def health_if_due(ledger: Ledger, challenge: str, *, now: datetime | None = None, force: bool = False,
                  early: float = 0.0, **options: Any) -> list[tuple[str, Any]]:
    """A health check of every endpoint when the last one is ``health_every`` old (or ``force``).

    ``early``: the share of ``health_every`` a check may come early. The health deployment's
    runs start a few seconds apart from their interval, so they pass 0.5: each scheduled run
    checks, while late runs piled up behind a stopped worker do not check again and again.
    """
    spec = ledger.challenge(challenge)
    if spec.requests is None or spec.requests.endpoint is None:
        return []
    last = store.last_call(ledger, challenge, "health")
    due_after = spec.requests.endpoint.health_every * (1 - early)
    if not force and last is not None and (now or utcnow()) - last < due_after:
        return []
    return engine.health_check(ledger, challenge, sample(ledger, spec), spec.requests.endpoint,
                               label=spec.requests.prediction.label, **options)


def _truth(challenge: Challenge, index: int) -> dict:
    frame = labels(challenge, index, challenge.requests.prediction.label)
    return dict(zip(frame[ROW_ID].to_list(), frame[challenge.requests.prediction.label].to_list()))


def _metric(challenge: Challenge):
    metric = challenge.requests.prediction.metric

    def measure(truth: list, predicted: list) -> float:
        try:
            guess = pl.Series(PREDICTION, predicted, strict=False)
        except (TypeError, ValueError, pl.exceptions.PolarsError):  # mixed kinds: judged as text
            guess = pl.Series(PREDICTION, [None if v is None else str(v) for v in predicted], dtype=pl.String)
        return score(metric, pl.Series("truth", truth), guess)

    return measure


def _read_batch(challenge: Challenge, file: str) -> pl.DataFrame:
    path = settings.releases_dir(challenge.name) / file
    reader = {"parquet": pl.read_parquet, "csv": pl.read_csv, "ndjson": pl.read_ndjson}.get(challenge.output.format,
                                                                                           pl.read_json)
    return reader(path)


def _records(frame: pl.DataFrame) -> list[dict]:
    return frame.to_dicts()
