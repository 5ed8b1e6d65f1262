"""The ``scenario:`` and ``files:`` keys of a challenge: what goes wrong, release by release.

Pure pydantic models, no I/O. Each event names its releases by ``at`` (one) or
``from``/``until`` (a range, both ends included; ``until`` defaults to the last release) and
carries exactly one perturbation. Releases are named as the challenge names them
(``release_3`` with the default template) or by index (``3``). Which releases and columns
exist is checked here (:func:`check_releases`, by the model) and against the source by
:mod:`ppipe.scenario.check`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from ppipe.errors import SpecError
from ppipe.validation import Model, base_dir

Column = Annotated[str, StringConstraints(min_length=1)]
ReleaseRef = int | str
Rate = Annotated[float, Field(ge=0, le=1, description="A probability per row, in [0, 1].")]
TypeName = Literal["string", "int", "float", "bool"]


class Drift(Model):
    """Numeric columns move: ``x -> mean + (x - mean) * scale + shift`` (mean of the release),
    so the release's mean moves by exactly ``shift`` and its spread is multiplied by ``scale``."""

    kind: ClassVar[str] = "drift"
    columns: list[Column] = Field(min_length=1)
    shift: float = 0.0
    scale: float = Field(default=1.0, ge=0)

    def reads(self) -> list[str]:
        return list(self.columns)


class Missing(Model):
    """Each value of each column becomes null with probability ``rate`` (independently)."""

    kind: ClassVar[str] = "missing"
    columns: list[Column] = Field(min_length=1)
    rate: Rate

    def reads(self) -> list[str]:
        return list(self.columns)


class Duplicates(Model):
    """Each row is delivered twice with probability ``rate``; the copy lands at a random later place."""

    kind: ClassVar[str] = "duplicates"
    rate: Rate

    def reads(self) -> list[str]:
        return []


class SchemaChange(Model):
    """Columns renamed, dropped, added (with a constant value), applied in that order."""

    kind: ClassVar[str] = "schema"
    rename: dict[Column, Column] = Field(default_factory=dict)
    drop: list[Column] = Field(default_factory=list)
    add: dict[Column, str | int | float | bool | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> SchemaChange:
        if not (self.rename or self.drop or self.add):
            raise ValueError("a schema change needs rename, drop or add")
        return self

    def reads(self) -> list[str]:
        return list(self.rename) + list(self.drop)


class LateLabels(Model):
    """The ``label`` column of a release is withheld; a ``labels_<k>`` file (row_id, label)
    ships with release k + ``lag`` instead (never, when that release does not exist)."""

    kind: ClassVar[str] = "late_labels"
    label: Column
    lag: int = Field(default=1, ge=1)

    def reads(self) -> list[str]:
        return [self.label]


class OutOfOrder(Model):
    """Each row is picked with probability ``rate``; the picked rows swap places in one random
    cycle, so every picked row leaves its place (order by ``column`` is broken there)."""

    kind: ClassVar[str] = "out_of_order"
    column: Column
    rate: Rate

    def reads(self) -> list[str]:
        return [self.column]


class TypeChange(Model):
    """Columns change type (``{column: int|float|string|bool}``); every value must fit (checked at create)."""

    kind: ClassVar[str] = "types"
    columns: dict[Column, TypeName] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        # ``types: {sensor_id: int}``: the mapping itself is the columns
        return {"columns": value} if isinstance(value, dict) and "columns" not in value else value

    def reads(self) -> list[str]:
        return list(self.columns)


PERTURBATIONS: dict[str, type[Model]] = {
    m.kind: m for m in (Drift, Missing, Duplicates, SchemaChange, LateLabels, OutOfOrder, TypeChange)
}
Perturbation = Drift | Missing | Duplicates | SchemaChange | LateLabels | OutOfOrder | TypeChange


class Event(Model):
    """One perturbation and the releases it applies to."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: ReleaseRef | None = None
    from_: ReleaseRef | None = Field(default=None, alias="from")
    until: ReleaseRef | None = None
    drift: Drift | None = None
    missing: Missing | None = None
    duplicates: Duplicates | None = None
    schema_: SchemaChange | None = Field(default=None, alias="schema")
    late_labels: LateLabels | None = None
    out_of_order: OutOfOrder | None = None
    types: TypeChange | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> Event:
        kinds = [k for k in PERTURBATIONS if self._get(k) is not None]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise ValueError(f"an event has exactly one of {', '.join(PERTURBATIONS)} ({found})")
        if self.at is not None and (self.from_ is not None or self.until is not None):
            raise ValueError("use either at (one release) or from/until (a range), not both")
        if self.at is None and self.from_ is None:
            raise ValueError("name its releases with at (one release) or from (a range, until optional)")
        return self

    def _get(self, kind: str) -> Any:
        return getattr(self, {"schema": "schema_"}.get(kind, kind))

    @property
    def kind(self) -> str:
        return next(k for k in PERTURBATIONS if self._get(k) is not None)

    @property
    def perturbation(self) -> Perturbation:
        return self._get(self.kind)


class Scenario(Model):
    """What goes wrong, release by release; the same bytes on every run for the same seed."""

    seed: int = Field(default=0, ge=0, description="Seed of every random choice of the scenario.")
    events: list[Event] = Field(default_factory=list)


class Files(Model):
    """A source column referencing files shipped with each release (multimodal data)."""

    column: Column = Field(description="The column holding the paths (relative to root) or absolute URLs.")
    root: str = Field(default=".", description="Folder or fsspec URL the relative paths resolve against.")

    @field_validator("root")
    @classmethod
    def _root(cls, root: str, info: ValidationInfo) -> str:
        root = root.strip()
        if not root:
            raise ValueError("must not be empty")
        if root.startswith("file://"):
            root = root[len("file://"):]
        if "://" in root:
            return root.rstrip("/")
        return str((base_dir(info) / Path(root).expanduser()).resolve())

    @property
    def is_remote(self) -> bool:
        return "://" in self.root


def release_indexes(event: Event, names: list[str]) -> range:
    """The indexes of the releases ``event`` applies to, given the challenge's release names.

    ValueError naming the field (``at``, ``from``, ``until``) when a release does not exist
    or the range is empty.
    """
    def index(field: str, ref: ReleaseRef) -> int:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(names):
            return ref
        if isinstance(ref, str) and ref in names:
            return names.index(ref)
        if isinstance(ref, str) and ref.strip().isdigit() and int(ref) < len(names):
            return int(ref)
        known = f"{names[0]}..{names[-1]}" if len(names) > 1 else names[0]
        raise ValueError(f"{field}: {ref!r} is not a release of this challenge ({known}, or 0..{len(names) - 1})")

    if event.at is not None:
        first = index("at", event.at)
        return range(first, first + 1)
    first = index("from", event.from_)
    last = index("until", event.until) if event.until is not None else len(names) - 1
    if last < first:
        raise ValueError(f"until: {names[last]} comes before from: {names[first]}")
    return range(first, last + 1)


def events_for(scenario: Scenario | None, release: int, names: list[str]) -> list[tuple[int, Event]]:
    """(event index, event) of every event that applies to release ``release``, in spec order."""
    if scenario is None:
        return []
    return [(i, e) for i, e in enumerate(scenario.events) if release in release_indexes(e, names)]


def event_field(index: int, event: Event, leaf: str = "") -> str:
    """The spec path of event ``index``'s perturbation (``scenario.events.3.drift.columns``)."""
    return f"scenario.events.{index}.{event.kind}" + (f".{leaf}" if leaf else "")


def check_releases(scenario: Scenario | None, names: list[str], row_id: bool) -> None:
    """SpecError when an event names a release that does not exist, or needs row ids that are off."""
    for index, event in enumerate(scenario.events if scenario else []):
        try:
            release_indexes(event, names)
        except ValueError as exc:
            where, _, rule = str(exc).partition(": ")
            raise SpecError(f"scenario.events.{index}.{where}", rule) from None
        if event.kind == "late_labels" and not row_id:
            raise SpecError(event_field(index, event), "needs output.row_id: true (labels files are joined back by row_id)")
