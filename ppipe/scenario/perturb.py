"""The perturbation engine: pure functions over one release's polars frame.

Every random choice comes from a numpy PCG64 generator seeded with
``(scenario seed, release index, event index)``: the same release gets the same bytes on
every run and every machine, and adding an event to one release changes no other release.
Events compose in spec order; each one sees the frame the previous ones left.

The frame carries the hidden column :data:`ROW` (the row's number in the source), so what an
event did is recorded by source row, whatever the shuffling and duplication before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np
import polars as pl

from ppipe.challenge.scenario import (
    Drift, Duplicates, LateLabels, Missing, OutOfOrder, Scenario, SchemaChange, TypeChange, events_for,
)

#: Hidden column: the source row number of each row, dropped (or renamed row_id) before writing.
ROW = "\x00ppipe_row"

#: Events that move rows: the release is read into memory once and gathered once.
REORDERINGS = ("duplicates", "out_of_order")

DTYPES = {"string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


@dataclass
class Applied:
    """What one event did to one release: its kind, the columns and source rows it touched."""

    event: int
    kind: str
    columns: list[str]
    rows: np.ndarray | None = None  # source row numbers (packed in the record file); None = every row
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        touched = "all" if self.rows is None else self.rows
        count = None if self.rows is None else len(self.rows)
        return {"event": self.event, "kind": self.kind, "columns": self.columns, "rows": touched,
                "count": count, **self.detail}


@dataclass
class Perturbed:
    """A release after its events: the lazy frame (with :data:`ROW`, nothing computed yet),
    its height, what was done, and the label withheld by late labels, if any."""

    frame: pl.LazyFrame
    height: int
    applied: list[Applied]
    withheld_label: str | None = None
    label_lag: int = 0


@dataclass
class Step:
    """One value change (missing, drift, types, schema, late labels), kept to be applied after
    the reordering: ``change(frame, *positional)``. ``positional`` holds what is per position
    (a missing mask, a drifted column), permuted with every later reordering so it follows its rows."""

    change: Callable[..., pl.LazyFrame]
    positional: tuple[pl.Series | np.ndarray, ...] = ()  # a drifted column; a mask (numpy: cheaper to gather)
    reordered: int = 0  # how many reorderings there had been when ``positional`` was last aligned


@dataclass
class State:
    """What the events work on: the release as staged (``source``, lazy), the source row of each
    position now (numpy, so recording which rows were touched never computes the frame), the
    reorderings so far composed into one ``order``, and the value changes in spec order.

    A release is ``steps(source.gather(order))``: value changes commute with reorderings once
    their per-position parts are permuted along, so the release is read once, gathered once
    (in memory, over one chunk: polars' lazy gather over a scan's many chunks cost more than
    the cut itself) and the value changes run in the streaming write after the gather. Without
    a reordering nothing is held in memory: the source streams through the value changes.
    """

    source: pl.LazyFrame
    rows: np.ndarray
    data: pl.DataFrame | None = None  # the source in memory, one chunk (a release that is reordered)
    order: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)
    reorders: list[np.ndarray] = field(default_factory=list)
    increasing: bool = False  # ``rows`` strictly increasing (an unshuffled copy not reordered yet): no sort needed

    @classmethod
    def of(cls, source: pl.LazyFrame, reordered: bool, rows: np.ndarray | None = None) -> State:
        """The state of a release before its events; ``reordered``: read it into memory now;
        ``rows``: its source rows when known without reading them (:func:`perturb`)."""
        increasing = rows is not None  # start..stop
        if reordered:
            data = source.collect().rechunk()
            return cls(source, data[ROW].to_numpy(), data, increasing=increasing)
        return cls(source, rows if increasing else source.select(ROW).collect()[ROW].to_numpy(), increasing=increasing)

    @property
    def height(self) -> int:
        return len(self.rows)

    def reorder(self, order: np.ndarray) -> None:
        self.order = order if self.order is None else self.order[order]
        self.rows = self.rows[order]
        self.reorders.append(order)
        self.increasing = False

    def change(self, change: Callable[..., pl.LazyFrame], *positional: pl.Series | np.ndarray) -> None:
        self.steps.append(Step(change, positional, len(self.reorders)))

    def _aligned(self, step: Step) -> tuple[pl.Series | np.ndarray, ...]:
        """``step``'s per-position parts moved along with every reordering since they were made
        (composed first, so each is gathered once)."""
        if step.positional and step.reordered < len(self.reorders):
            index = self.reorders[step.reordered]
            for later in self.reorders[step.reordered + 1:]:
                index = index[later]
            step.positional = tuple(values[index] for values in step.positional)
        step.reordered = len(self.reorders)
        return step.positional

    def frame(self, final: bool = False) -> pl.LazyFrame:
        """The release as it is now, lazy. ``final``: gathered now, for the write (otherwise
        the gather stays in the query, so a query of a few columns gathers only those)."""
        base = self.source if self.data is None else self.data.lazy()
        if self.order is not None:
            base = self.data[self.order].lazy() if final else base.select(pl.all().gather(self.order))
        for step in self.steps:
            base = step.change(base, *self._aligned(step))
        return base

    def dtype(self, column: str) -> pl.DataType:
        """The type of ``column`` now (the value changes over the empty source: nothing aligned)."""
        frame = self.source.head(0)
        for step in self.steps:
            frame = step.change(frame, *(values[:0] for values in step.positional))
        return frame.collect_schema()[column]


def rng_for(seed: int, release: int, event: int) -> np.random.Generator:
    """The generator of one event on one release (independent of every other pair)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, release, event])))


def perturb(frame: pl.LazyFrame | pl.DataFrame, scenario: Scenario, release: int, names: list[str],
            rows: np.ndarray | None = None) -> Perturbed:
    """Apply every event of release ``release`` to ``frame`` (which has :data:`ROW`), in spec order.

    The result stays lazy: the value changes run when the release is written, streaming to
    the file, so a perturbed cut reads and writes the data once, like a plain one. ``rows``:
    the frame's :data:`ROW` when the caller knows it (an unshuffled copy: start..stop), which
    saves reading it, and, increasing, saves sorting the rows an event records.
    """
    events = events_for(scenario, release, names)
    reordered = any(e.kind in REORDERINGS for _, e in events)
    source = frame.lazy()
    state = State.of(source.drop(_left_out(events), strict=False) if reordered else source, reordered, rows)
    result = Perturbed(state.source, 0, [])
    for index, event in events:
        applied = STEPS[event.kind](state, event.perturbation, rng_for(scenario.seed, release, index))
        applied.event = index
        result.applied.append(applied)
        if isinstance(event.perturbation, LateLabels):
            result.withheld_label, result.label_lag = event.perturbation.label, event.perturbation.lag
    result.frame, result.height = state.frame(final=True), state.height
    return result


def _left_out(events: list) -> list[str]:
    """Source columns the release drops (late labels, a schema drop) before any event names
    them: a release read into memory leaves them out (the streaming scan never reads them)."""
    named: set[str] = set()
    left_out = []
    for _, event in events:
        spec = event.perturbation
        dropped = [spec.label] if isinstance(spec, LateLabels) else list(spec.drop) if isinstance(spec, SchemaChange) else []
        if isinstance(spec, SchemaChange):
            named |= set(spec.rename) | set(spec.rename.values()) | set(spec.add)
        left_out += [column for column in dropped if column not in named]
        named |= set(spec.reads()) | set(dropped)
    return left_out


# --- one function per perturbation: (state, definition, rng) -> Applied ----------------------


#: Below this rate the picks are drawn as the gaps between them (one draw a pick); above it,
#: one draw a row is cheaper (a geometric draw costs about three uniform ones).
GAPS_BELOW = 0.25


def _picked(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """The positions (increasing) of the rows picked, each of ``n`` rows independently with
    probability ``rate``. At a low rate the gaps between picks are drawn (geometric: the same
    distribution as a draw per row), so a 5% event draws 5% of the numbers."""
    if rate <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if rate >= GAPS_BELOW:
        return np.flatnonzero(rng.random(n) < rate)
    expected = n * rate
    batch = int(expected + 6 * (expected * (1 - rate)) ** 0.5) + 16  # short only about once in 10^9
    positions = np.cumsum(rng.geometric(rate, size=batch)) - 1
    while positions[-1] < n:
        positions = np.concatenate([positions, positions[-1] + np.cumsum(rng.geometric(rate, size=batch))])
    return positions[:np.searchsorted(positions, n)]


def _mask(positions: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


def missing(state: State, spec: Missing, rng: np.random.Generator) -> Applied:
    rows: dict[str, np.ndarray] = {}
    nulled = []
    for column in spec.columns:
        picked = _picked(rng, state.height, spec.rate)
        rows[column] = state.rows[picked]
        nulled.append(picked)
        state.change(partial(_nulled, column), _mask(picked, state.height))
    every = _unique(state.rows[np.concatenate(nulled)])  # sorted, a row (or a copy's row) once
    return Applied(0, "missing", list(spec.columns), every, {"rate": spec.rate, "rows_per_column": rows})


def _unique(rows: np.ndarray) -> np.ndarray:
    """``np.unique(rows)``, by sorting (numpy's hashing unique was 20x slower on 50,000 rows)."""
    rows = np.sort(rows)
    return rows[np.concatenate(([True], rows[1:] != rows[:-1]))] if len(rows) else rows


def _nulled(column: str, frame: pl.LazyFrame, mask: np.ndarray) -> pl.LazyFrame:
    return frame.with_columns(pl.when(pl.lit(pl.Series(mask))).then(None).otherwise(pl.col(column)).alias(column))


def duplicates(state: State, spec: Duplicates, rng: np.random.Generator) -> Applied:
    n = state.height
    originals = _picked(rng, n, spec.rate)
    # each copy goes somewhere after its original: position in (original, n]
    places = originals + 1 + np.floor(rng.random(len(originals)) * (n - originals)).astype(np.int64)
    copied = state.rows[originals]
    state.reorder(np.insert(np.arange(n), places, originals))
    return Applied(0, "duplicates", [], copied, {"rate": spec.rate})


def drift(state: State, spec: Drift, rng: np.random.Generator) -> Applied:
    columns = list(dict.fromkeys(spec.columns))
    # the release as it is now (copies count twice), parsed once, in one chunk: summed over the
    # scan's pieces, which vary from run to run, the mean's last bits did too
    values = pl.DataFrame([as_float(series) for series in state.frame().select(columns).collect().rechunk()])
    means = values.mean().row(0, named=True)
    drifted = values.select([
        ((pl.col(c) - means[c]) * spec.scale + means[c] + spec.shift).alias(c) if means[c] is not None else pl.col(c)
        for c in columns])
    state.change(_replaced, *drifted.get_columns())
    return Applied(0, "drift", list(spec.columns), None, {"shift": spec.shift, "scale": spec.scale, "mean_before": means})


def _replaced(frame: pl.LazyFrame, *columns: pl.Series) -> pl.LazyFrame:
    return frame.with_columns([pl.lit(values).alias(values.name) for values in columns])


def schema(state: State, spec: SchemaChange, rng: np.random.Generator) -> Applied:
    state.change(partial(_schema_changed, spec))
    detail = {"rename": dict(spec.rename), "drop": list(spec.drop), "add": dict(spec.add)}
    return Applied(0, "schema", list(spec.rename) + list(spec.drop) + list(spec.add), None, detail)


def _schema_changed(spec: SchemaChange, frame: pl.LazyFrame) -> pl.LazyFrame:
    frame = frame.rename(dict(spec.rename)).drop(list(spec.drop), strict=False)  # perhaps not read (_left_out)
    if spec.add:
        frame = frame.with_columns([pl.lit(v).alias(k) for k, v in spec.add.items()])
        frame = frame.select(pl.exclude(ROW), pl.col(ROW))  # the hidden column stays last
    return frame


def late_labels(state: State, spec: LateLabels, rng: np.random.Generator) -> Applied:
    state.change(lambda frame: frame.drop(spec.label, strict=False))  # perhaps not read (_left_out)
    return Applied(0, "late_labels", [spec.label], None, {"lag": spec.lag})


def out_of_order(state: State, spec: OutOfOrder, rng: np.random.Generator) -> Applied:
    picked = _picked(rng, state.height, spec.rate)
    if len(picked) < 2:  # one row alone cannot leave its place
        return Applied(0, "out_of_order", [spec.column], state.rows[:0], {"rate": spec.rate})
    moved = state.rows[picked] if state.increasing else np.sort(state.rows[picked])
    cycle = rng.permutation(picked)
    order = np.arange(state.height)
    order[cycle] = np.roll(cycle, 1)  # each picked row takes the place of the next one in the cycle
    state.reorder(order)
    return Applied(0, "out_of_order", [spec.column], moved, {"rate": spec.rate})


def types(state: State, spec: TypeChange, rng: np.random.Generator) -> Applied:
    casts = [cast(pl.col(c), state.dtype(c), t).alias(c) for c, t in spec.columns.items()]
    state.change(lambda frame: frame.with_columns(casts))
    return Applied(0, "types", list(spec.columns), None, {"to": dict(spec.columns)})


STEPS: dict[str, Callable[[State, Any, np.random.Generator], Applied]] = {
    "missing": missing, "duplicates": duplicates, "drift": drift, "schema": schema,
    "late_labels": late_labels, "out_of_order": out_of_order, "types": types,
}


# --- conversions ----------------------------------------------------------------------------


def as_float(series: pl.Series) -> pl.Series:
    """A column as floats: text parsed as :func:`cast` parses it ("" is null, surrounding spaces
    ignored); numbers widened."""
    if series.dtype != pl.String:
        return series.cast(pl.Float64, strict=False)
    return _parsed("float", series)


def cast(column: pl.Expr, dtype: pl.DataType, type_name: str) -> pl.Expr:
    """``column`` (of type ``dtype``) converted to ``type_name``; text is parsed ("" is null), a
    misfit becomes null (:mod:`ppipe.scenario.check` refuses at create a type change that some
    value does not fit)."""
    if dtype == pl.String and type_name in ("int", "float"):
        # per batch, so the write still streams: parsed as it is first; stripped and parsed again
        # only in a batch where some value did not parse (stripping cost as much as parsing)
        return column.map_batches(partial(_parsed, type_name), return_dtype=DTYPES[type_name], is_elementwise=True)
    if dtype == pl.String and type_name == "bool":
        lower = _text(column).str.to_lowercase()
        return pl.when(lower == "true").then(True).when(lower == "false").then(False).otherwise(None)
    if type_name == "int" and dtype.is_float():  # 2.0 -> 2; 2.5 does not fit
        return pl.when(column == column.floor()).then(column.cast(pl.Int64, strict=False))
    return column.cast(DTYPES[type_name], strict=False)


def _text(column: pl.Expr) -> pl.Expr:
    """Text as it is parsed: "" is null, surrounding spaces ignored."""
    return pl.when(column == "").then(None).otherwise(column).str.strip_chars()


def _number(text: pl.Expr, type_name: str) -> pl.Expr:
    return text.str.to_integer(strict=False) if type_name == "int" else text.cast(pl.Float64, strict=False)


def _parsed(type_name: str, values: pl.Series) -> pl.Series:
    """``values`` (text) as ``type_name`` ("int" or "float"). A value that parses as it is has no
    surrounding space to strip (the parsers refuse one), so when every value does (or only ""
    did not, which is null either way), nothing is stripped: the same numbers as parsing
    :func:`_text`, at half the cost (stripping costs as much as parsing)."""
    frame = values.to_frame()
    column = pl.col(values.name)
    direct = frame.select(_number(column, type_name)).to_series()
    # counting nulls costs nothing; comparing text is paid only when some value did not parse
    if direct.null_count() == values.null_count() or \
            not (direct.is_null() & values.is_not_null() & (values != "")).any():
        return direct
    return frame.select(_number(_text(column), type_name)).to_series()
