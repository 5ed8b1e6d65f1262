"""The leaderboard: per participant, how their pipeline did over the requests that are due.

A request counts once it is answered or closed (a void one never counts). Columns:
validation correct rate, on-time rate, latest and mean prediction score. Other parts of
ppipe add columns with :func:`register` (a live-endpoint prober adds uptime and latency).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from sqlmodel import select

from ppipe.ledger import Ledger
from ppipe.participants.records import ParticipantRecord, RequestRecord, ensure_tables
from ppipe.challenge.requests import LOWER_IS_BETTER


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "number"  # rate | score | count | text | number
    higher_is_better: bool = True
    short: str = ""  # a narrower title for 80-column tables

    @property
    def narrow_title(self) -> str:
        return self.short or self.title

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "kind": self.kind, "higher_is_better": self.higher_is_better}


#: ``compute(ledger, challenge_id) -> {participant_id: value}`` for each extra column.
Compute = Callable[[Ledger, uuid.UUID], dict[int, Any]]
_extra: list[tuple[Column, Compute]] = []


def register(column: Column, compute: Compute) -> None:
    """Add a column to every leaderboard (once per key)."""
    if all(existing.key != column.key for existing, _ in _extra):
        _extra.append((column, compute))


@dataclass(frozen=True)
class Board:
    challenge: str
    metric: str | None
    columns: list[Column]
    rows: list[dict]

    def to_json(self) -> dict:
        return {"challenge": self.challenge, "metric": self.metric,
                "columns": [c.to_json() for c in self.columns], "rows": self.rows}


def build(ledger: Ledger, name: str) -> Board:
    ensure_tables(ledger.engine)
    record = ledger.get(name)
    spec = record.challenge().requests
    metric = spec.prediction.metric if spec is not None and spec.prediction is not None else None
    lower = metric in LOWER_IS_BETTER
    with ledger.session() as session:
        participants = list(session.exec(select(ParticipantRecord).where(
            ParticipantRecord.challenge_id == record.id, ParticipantRecord.state == "active")
            .order_by(ParticipantRecord.name)))
        requests = list(session.exec(select(RequestRecord).where(RequestRecord.challenge_id == record.id)))
    by_participant: dict[int, list[RequestRecord]] = {p.id: [] for p in participants}
    for request in requests:
        by_participant.setdefault(request.participant_id, []).append(request)
    score_title = metric or "score"
    columns = [
        Column("rank", "rank", "count", higher_is_better=False),
        Column("participant", "participant", "text"),
        Column("validation_correct_rate", "validation correct", "rate", short="valid"),
        Column("on_time_rate", "on time", "rate", short="on time"),
        Column("latest_score", f"latest {score_title}", "score", not lower, short="latest"),
        Column("mean_score", f"mean {score_title}", "score", not lower, short="mean"),
        Column("requests", "requests due", "count", short="due"),
    ] + [column for column, _ in _extra]
    rows = [{"participant": p.name, **_stats(by_participant[p.id])} for p in participants]
    for column, compute in _extra:
        values = compute(ledger, record.id)
        for participant, row in zip(participants, rows):
            row[column.key] = values.get(participant.id)
    rows.sort(key=lambda row: _rank_key(row, lower))
    for position, row in enumerate(rows, 1):
        row["rank"] = position
    return Board(name, metric, columns, [{c.key: row.get(c.key) for c in columns} for row in rows])


def _stats(requests: list[RequestRecord]) -> dict:
    due = [r for r in requests if r.status != "void" and (r.closed or r.attempts_used > 0)]
    validation = [r for r in due if r.kind == "validation"]
    scored = sorted((r for r in requests if r.status == "scored" and r.score is not None), key=lambda r: r.release_index)
    return {
        "validation_correct_rate": _rate(sum(r.status == "correct" for r in validation), len(validation)),
        "on_time_rate": _rate(sum(r.attempts_used > 0 for r in due), len(due)),
        "latest_score": scored[-1].score if scored else None,
        "mean_score": sum(r.score for r in scored) / len(scored) if scored else None,
        "requests": len(due),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rank_key(row: dict, lower: bool) -> tuple:
    """Best mean score first (no score last), then validation correct rate, then on-time rate."""
    def desc(value):
        return math.inf if value is None else -value

    mean = row["mean_score"]
    score_key = (math.inf if mean is None else mean) if lower else desc(mean)
    return (score_key, desc(row["validation_correct_rate"]), desc(row["on_time_rate"]), row["participant"])
