"""What the scenario tests share: the example data, challenge builders, binomial bounds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl

from ppipe.scenario.perturb import ROW
from ppipe.challenge.specfile import parse_challenge

ROOT = Path(__file__).resolve().parents[2]
SENSORS = ROOT / "deployments" / "data" / "sensors.csv"
SHAPES = ROOT / "deployments" / "data" / "shapes"


def sensors(start: int = 0, stop: int = 10_000, typed: bool = True) -> pl.DataFrame:
    """Rows [start, stop) of the example sensors with the hidden source-row column, as the cut has them."""
    frame = pl.read_csv(SENSORS, infer_schema=typed).slice(start, stop - start)
    return frame.with_columns(pl.int_range(start, stop, dtype=pl.Int64).alias(ROW))


def challenge(tmp_path: Path, *, events: list[dict] | None = None, seed: int = 11, name: str = "scen",
              source: Path = SENSORS, releases: int = 7, destinations: list[dict] | None = None,
              **extra: Any):
    """A challenge over the example sensors with ``events`` as its scenario (row ids on)."""
    data = {
        "name": name, "source": str(source), "releases": releases,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": destinations or [{"kind": "local", "path": str(tmp_path / "out")}],
        "output": {"row_id": True},
    }
    if events is not None:
        data["scenario"] = {"seed": seed, "events": events}
    data.update(extra)
    return parse_challenge(data, base_dir=tmp_path)


def binomial_bounds(n: int, p: float, tail: float = 1e-6) -> tuple[int, int]:
    """The smallest and largest counts of a Binomial(n, p) outside which each tail holds < ``tail``."""
    if p in (0, 1):
        return (0, 0) if p == 0 else (n, n)
    log_pmf = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
               + (n - k) * math.log1p(-p) for k in range(n + 1)]
    pmf = [math.exp(v) for v in log_pmf]
    low, cumulative = 0, 0.0
    while cumulative + pmf[low] < tail:
        cumulative += pmf[low]
        low += 1
    high, cumulative = n, 0.0
    while cumulative + pmf[high] < tail:
        cumulative += pmf[high]
        high -= 1
    return low, high
