"""What ``ppipe endpoints NAME`` shows the organiser: every endpoint, its figures, its latest call."""

from __future__ import annotations

from ppipe.endpoints import engine, store
from ppipe.ledger import Ledger


def rows(ledger: Ledger, challenge: str) -> list[dict]:
    spec = ledger.challenge(challenge)
    lower = spec.requests is not None and spec.requests.prediction is not None and \
        spec.requests.prediction.metric in ("rmse", "mae")
    figures = engine.board_columns(ledger, challenge, higher_is_better=not lower)
    latest: dict[str, object] = {}
    counts: dict[str, int] = {}
    for participant, call in store.calls(ledger, challenge):
        latest[participant] = call
        counts[participant] = counts.get(participant, 0) + 1
    out = []
    for record in store.active(ledger, challenge):
        last = latest.get(record.participant)
        out.append({
            "participant": record.participant, "url": record.url, "protocol": record.protocol,
            **figures.get(record.participant, {}), "calls": counts.get(record.participant, 0),
            "last_outcome": getattr(last, "outcome", None),
            "last_at": last.started_at.isoformat() if last is not None else None,
            "last_error": getattr(last, "error", None),
        })
    return out
