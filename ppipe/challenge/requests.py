"""The challenge spec's ``requests:`` and ``leaderboard:`` keys (pure pydantic, no I/O).

The participant side (:mod:`ppipe.participants`) acts on them; they live with the rest of the
model so the challenge layer needs nothing above it.

```yaml
output: {row_id: true}
requests:
  validation: {rows: 20, deadline: 1h, attempts: 3, tolerance: {rtol: 1e-6, atol: 1e-6}}
  prediction: {label: label, metric: accuracy}
  endpoint: {health_every: 5m, timeout: 2s, rows: 50}   # participants' own model services (docs/endpoints.md)
leaderboard: {public: true}
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from ppipe.challenge.durations import format_duration, positive_duration
from ppipe.challenge.endpoints import EndpointSettings
from ppipe.validation import Model

Metric = Literal["accuracy", "macro_f1", "rmse", "mae"]
#: Metrics where a lower value is better (the leaderboard sorts by them ascending).
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


class Tolerance(Model):
    """Numbers match when ``|got - expected| <= atol + rtol * |expected|``."""

    rtol: float = Field(default=1e-6, ge=0, le=1, description="Relative tolerance.")
    atol: float = Field(default=1e-6, ge=0, description="Absolute tolerance.")


class ValidationRequests(Model):
    """After each release, every participant is asked to send back ``rows`` rows exactly as ingested."""

    rows: int = Field(default=20, ge=1, le=10_000, description="Row ids per request, sampled from everything delivered.")
    deadline: timedelta = Field(default=timedelta(hours=1), description="Time to answer after the request opens.")
    attempts: int = Field(default=3, ge=1, le=100, description="Answers accepted before the deadline; the latest counts.")
    tolerance: Tolerance = Field(default_factory=Tolerance)

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> timedelta:
        return positive_duration(value, "the deadline")

    @field_serializer("deadline")
    def _show_deadline(self, value: timedelta) -> str:
        return format_duration(value)


class PredictionRequests(Model):
    """When release k is delivered, the features of release k+1 go out; predictions are scored when its labels do."""

    label: str = Field(min_length=1, max_length=256, description="The label column (never sent before its release).")
    metric: Metric = Field(default="accuracy", description="accuracy, macro_f1, rmse or mae.")
    attempts: int = Field(default=3, ge=1, le=100, description="Answers accepted before release k+1 is due.")


class Requests(Model):
    validation: ValidationRequests | None = None
    prediction: PredictionRequests | None = None
    endpoint: EndpointSettings | None = None

    @model_validator(mode="after")
    def _endpoint_needs_the_label(self) -> "Requests":
        if self.endpoint is not None and self.prediction is None:
            raise ValueError("endpoint: needs requests.prediction (its label column is what is never sent)")
        return self


class Leaderboard(Model):
    public: bool = Field(default=True, description="Serve the HTML leaderboard at /leaderboard without a token.")


def requests_need_row_ids(requests: Requests | None, row_id: bool) -> str | None:
    """The rule the challenge model checks: requests key rows by ``row_id``; None when satisfied."""
    if requests is None or row_id:
        return None
    kind = "validation" if requests.validation else "prediction" if requests.prediction else None
    if kind is None:
        return None
    return f"output.row_id: requests.{kind} needs row ids in the released files: set output: {{row_id: true}}"
