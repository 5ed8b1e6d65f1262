"""Durations as organisers write them: ``"90s"``, ``"6h"``, ``"1d"``, ``"1h30m"``, ISO 8601 or seconds."""

from __future__ import annotations

import re
from datetime import timedelta
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
