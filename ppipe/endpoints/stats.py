"""What the leaderboard shows about live endpoints: uptime, latency, endpoint score.

- **uptime %**: the share of calls (health checks and prediction rounds) whose outcome is ``ok``;
- **p50 / p95**: total milliseconds of the ``ok`` calls (linear interpolation between ranks);
  a failed call has no meaningful latency, its cost is in the uptime;
- **endpoint score**: the mean prediction metric over the prediction rounds that have been
  scored. A round an endpoint failed (no usable answer) counts as ``failed`` when the metric
  has a worst value (0 for accuracy and macro F1); for error metrics (rmse, mae), which have
  none, as the worst score any endpoint got in that round. Failing never beats answering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class EndpointStats:
    calls: int
    ok: int
    uptime: float | None  # percent
    p50_ms: float | None
    p95_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 3)


def summarise(calls: Iterable[Any]) -> EndpointStats:
    """Stats of one endpoint's calls (anything with ``outcome`` and ``total_ms``)."""
    calls = list(calls)
    ok = [c for c in calls if c.outcome == "ok"]
    latencies = [c.total_ms for c in ok if c.total_ms is not None]
    return EndpointStats(
        calls=len(calls), ok=len(ok),
        uptime=round(100 * len(ok) / len(calls), 2) if calls else None,
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95),
    )


def by_participant(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, EndpointStats]:
    """(participant, call) pairs -> stats per participant."""
    grouped: dict[Any, list] = {}
    for participant, call in pairs:
        grouped.setdefault(participant, []).append(call)
    return {participant: summarise(calls) for participant, calls in grouped.items()}


def endpoint_scores(rounds: Mapping[str, Mapping[Any, float | None]], *, higher_is_better: bool,
                    failed: float | None = None) -> dict[Any, float | None]:
    """Mean round score per participant; a failed round (None) counts as ``failed``, else the round's worst.

    ``rounds``: round -> participant -> score (None: the endpoint failed that round). A round
    nobody answered is left out.
    """
    totals: dict[Any, list[float]] = {}
    for scores in rounds.values():
        answered = [s for s in scores.values() if s is not None and not math.isnan(s)]
        if not answered:
            continue
        worst = failed if failed is not None else min(answered) if higher_is_better else max(answered)
        for participant, score in scores.items():
            usable = score is not None and not math.isnan(score)
            totals.setdefault(participant, []).append(score if usable else worst)
    return {participant: round(sum(values) / len(values), 6) for participant, values in totals.items()}
