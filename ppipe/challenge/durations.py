"""Durations and times as organisers write them.

Durations: ``"90s"``, ``"6h"``, ``"1d"``, ``"1h30m"``, ISO 8601 or seconds. Times: ISO 8601
with a timezone (a naive time is refused, never guessed).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

_COMPACT = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_timedelta = TypeAdapter(timedelta)


def parse_duration(value: Any) -> timedelta:
    """``"90s"``, ``"6h"``, ``"1d"``, ``"1h30m"``, ISO 8601 (``"PT6H"``) or seconds -> timedelta.

    Pydantic already parses ISO 8601 and numbers; the compact form is ours (a few lines, no
    well-kept library offers exactly this grammar without extra baggage).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-") and len(text) > 1:
            return -parse_duration(text[1:])
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and _COMPACT.sub("", text).strip() == "":
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _COMPACT.findall(text)))
    if isinstance(value, bool):
        raise ValueError("a duration, such as '90s', '6h', '1d', 'PT6H' or a number of seconds")
    try:
        return _timedelta.validate_python(value)
    except Exception:
        raise ValueError(
            f"{value!r} is not a duration: use '90s', '6h', '1d', ISO 8601 such as 'PT6H', or seconds"
        ) from None


def format_duration(delta: timedelta) -> str:
    """The compact form of a duration (``"1d"``, ``"90s"``), the inverse of parse_duration."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{delta.total_seconds():g}s"


def positive_duration(value: Any, what: str) -> timedelta:
    delta = parse_duration(value)
    if delta <= timedelta(0):
        raise ValueError(f"{what} must be greater than zero")
    return delta


def parse_time(value: Any) -> datetime:
    """An aware datetime from ISO 8601 text (``Z`` allowed) or a datetime; ValueError saying
    what is wrong: not a date-time, or no timezone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time such as 2026-12-01T09:00:00Z") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("has no timezone: write it with one, such as 2026-12-01T09:00:00Z or +01:00")
    return value
