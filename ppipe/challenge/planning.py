"""Release planning: which rows go out when, and where. Pure functions, no I/O."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Iterable, Protocol, Sequence, TypeVar

from ppipe.errors import SpecError


class Plannable(Protocol):
    """What planning reads of a challenge (ppipe.challenge.spec.Challenge), so that the model
    can offer ``challenge.plan(n)`` without the two modules importing each other."""

    name: str
    assign: str
    proportions: list[Fraction]

    @property
    def schedule(self): ...

    @property
    def output(self): ...

    def destination_labels(self) -> list[str]: ...

    def release_name(self, index: int) -> str: ...


@dataclass(frozen=True)
class PlannedRelease:
    """One release: rows [start, stop) of the source, due at ``scheduled_at``, sent to ``destinations``."""

    index: int
    name: str
    start: int
    stop: int
    scheduled_at: datetime
    destinations: tuple[str, ...]

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "start": self.start,
            "stop": self.stop,
            "rows": self.rows,
            "scheduled_at": self.scheduled_at.isoformat(),
            "destinations": list(self.destinations),
        }


def round_half_away(x: Fraction) -> int:
    """Round a non-negative or negative fraction to the nearest integer, halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + Fraction(1, 2)), x))


def boundaries(proportions: Sequence[Fraction], n_rows: int) -> list[int]:
    """Row boundaries 0 = b_0 <= b_1 <= ... <= b_n = n_rows.

    b_k = round_half_away(cumulative proportion up to k * n_rows), computed exactly; the last
    one is n_rows even when the proportions sum to 1 only within the 1e-9 tolerance.
    """
    cuts, cumulative = [0], Fraction(0)
    for p in proportions[:-1]:
        cumulative += p
        cuts.append(min(n_rows, round_half_away(cumulative * n_rows)))
    cuts.append(n_rows)
    return cuts


def assign(strategy: str, n_releases: int, n_destinations: int, seed: int | None) -> list[tuple[int, ...]]:
    """Destination indexes per release: all of them, round robin, or a seeded non-empty random subset."""
    everything = tuple(range(n_destinations))
    if strategy == "all":
        return [everything] * n_releases
    if strategy == "round_robin":
        return [(i % n_destinations,) for i in range(n_releases)]
    rng = random.Random(seed if seed is not None else 0)
    picks = []
    for _ in range(n_releases):
        size = rng.randint(1, n_destinations)
        picks.append(tuple(sorted(rng.sample(everything, size))))
    return picks


def plan(challenge: Plannable, n_rows: int) -> list[PlannedRelease]:
    """The releases of ``challenge`` for a source of ``n_rows`` rows.

    Raises SpecError naming the release when one would be empty.
    """
    if n_rows < 0:
        raise ValueError("n_rows must be >= 0")
    proportions = challenge.proportions
    cuts = boundaries(proportions, n_rows)
    labels = challenge.destination_labels()
    targets = assign(challenge.assign, len(proportions), len(labels), challenge.output.seed)
    releases = []
    for index, (start, stop) in enumerate(zip(cuts, cuts[1:])):
        name = challenge.release_name(index)
        if stop <= start:
            raise SpecError(
                "releases",
                f"{name} would have 0 rows (proportion {float(proportions[index]):g} of {n_rows} rows): "
                "use fewer releases or larger proportions",
            )
        releases.append(
            PlannedRelease(
                index=index,
                name=name,
                start=start,
                stop=stop,
                scheduled_at=challenge.schedule.time_of(index),
                destinations=tuple(labels[d] for d in targets[index]),
            )
        )
    return releases


Row = TypeVar("Row")


def by_release(rows: Iterable[Row]) -> list[list[Row]]:
    """Ledger rows (one per release and destination, each with its ``index``) grouped by release,
    in the order first seen."""
    groups: dict[int, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.index, []).append(row)
    return list(groups.values())
