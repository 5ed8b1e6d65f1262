"""``requests.endpoint`` in a challenge spec: how often, how long, how many rows, what is allowed (pure pydantic)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_serializer, field_validator

from ppipe.challenge.durations import format_duration, positive_duration
from ppipe.validation import Model

MAX_TIMEOUT = timedelta(seconds=60)
MIN_HEALTH_EVERY = timedelta(seconds=10)


class EndpointSettings(Model):
    """Live endpoints (:mod:`ppipe.endpoints`): health checks every ``health_every``, each call ended after ``timeout``."""

    health_every: timedelta = Field(default=timedelta(minutes=5), description="Time between health checks.")
    timeout: timedelta = Field(default=timedelta(seconds=2), description="Time limit of one call, everything included.")
    rows: int = Field(default=50, ge=1, le=10_000, description="Rows sent in a health check.")
    allow_http: bool = Field(default=False, description="Accept plain-http URLs (a classroom network).")
    allow_private: bool = Field(
        default=False, description="Accept loopback and private addresses (tests only; metadata addresses never)."
    )

    @field_validator("health_every", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return positive_duration(value, "the duration")

    @field_serializer("health_every", "timeout")
    def _compact(self, value: timedelta) -> str:
        return format_duration(value)

    @field_validator("timeout")
    @classmethod
    def _bounded_timeout(cls, value: timedelta) -> timedelta:
        if value > MAX_TIMEOUT:
            raise ValueError(f"at most {MAX_TIMEOUT.total_seconds():g}s: a round waits for its slowest call")
        return value

    @field_validator("health_every")
    @classmethod
    def _not_too_often(cls, value: timedelta) -> timedelta:
        if value < MIN_HEALTH_EVERY:
            raise ValueError(f"at least {MIN_HEALTH_EVERY.total_seconds():g}s")
        return value
