"""Checks of a scenario against the challenge (pure) and against its source (at create).

Every problem is a :class:`SpecError` naming the event's field, e.g.
``scenario.events.3.drift.columns: 'temp' is not a column of the source (...)``.

* :func:`ppipe.challenge.scenario.check_releases` (no data, run by the model itself): every
  ``at``/``from``/``until`` names a release, and late labels have row ids to be joined back by.
* :func:`check_columns` (the source's column names): each release's columns are followed
  through its events in spec order, so an event naming a column an earlier schema change
  renamed or dropped (or late labels withheld) is refused, naming both events.
* :func:`check_values` (the staged rows): a type change every value fits, drift on numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import polars as pl

from ppipe.errors import SpecError
from ppipe.scenario.perturb import as_float, cast
from ppipe.challenge.scenario import Event, event_field as _field, release_indexes

if TYPE_CHECKING:
    from ppipe.challenge.scenario import Scenario

ROW_ID = "row_id"


def check_source(challenge: Any, staged: Any, row_column: str | None = None) -> None:
    """Everything that needs the staged source, at create: columns through the events, values
    that type changes and drift meet, and every referenced file (SpecError on the first problem;
    the files are hashed once here, see :func:`ppipe.scenario.files.fingerprint`).

    ``row_column``: the staged copy's column of source row numbers when it is shuffled."""
    if challenge.files is None and challenge.scenario is None:
        return
    source = list(staged.columns)
    check_source_columns(challenge, lambda: source)
    names = [challenge.release_name(k) for k in range(challenge.release_count)]
    files = challenge.files
    spans = [(r.start, r.stop) for r in challenge.plan(staged.rows)]
    check_values(challenge.scenario, names, spans, staged.path, source)
    if files is not None:
        from ppipe.scenario.files import fingerprint

        row = pl.col(row_column) if row_column else None
        fingerprint(check_files(files, file_column(files, pl.scan_parquet(staged.path), row)), staged.path.parent)


def check_source_columns(challenge: Any, columns: Callable[[], list[str]]) -> None:
    """The checks that need only the source's column names (``columns()``, asked only when
    the challenge has a scenario or files): ``ppipe plan`` runs these."""
    files, scenario = challenge.files, challenge.scenario
    if files is None and scenario is None:
        return
    source = list(columns())
    if files is not None and files.column not in source:
        raise SpecError("files.column", f"{files.column!r} is not a column of the source ({', '.join(source)})")
    names = [challenge.release_name(k) for k in range(challenge.release_count)]
    check_columns(scenario, names, source, row_id=challenge.output.row_id,
                  files_column=files.column if files else None)


def file_column(files: Any, lf: pl.LazyFrame, row: pl.Expr | None = None) -> pl.DataFrame:
    """The files column of ``lf`` with each row's number in the source (``row``, default: position)."""
    row = pl.int_range(pl.len(), dtype=pl.Int64) if row is None else row
    return lf.select(row.alias("row"), pl.col(files.column).cast(pl.String)).collect()


def check_files(files: Any, column: pl.DataFrame) -> list[str]:
    """SpecError naming the source row and path of the first referenced file that is missing
    (``column`` as :func:`file_column` makes it); else the distinct files referenced."""
    from ppipe.scenario.files import check_exist

    return check_exist(files, zip(column["row"].to_list(), column[files.column].to_list()))


class _Columns:
    """The columns of one release as events change them, remembering who removed what."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.gone: dict[str, str] = {}  # column -> what removed it ("scenario.events.3 dropped it")

    def need(self, column: str, field: str, source: list[str]) -> None:
        if column in self.names:
            return
        if column in self.gone:
            raise SpecError(field, f"{column!r} is no longer a column there: {self.gone[column]}")
        raise SpecError(field, f"{column!r} is not a column of the source ({', '.join(source)})")

    def remove(self, column: str, why: str) -> None:
        self.names.remove(column)
        self.gone[column] = why

    def add(self, column: str, field: str) -> None:
        if column in self.names:
            raise SpecError(field, f"{column!r} already exists there")
        self.names.append(column)
        self.gone.pop(column, None)


def check_columns(scenario: Scenario | None, names: list[str], source_columns: list[str], *,
                  row_id: bool = False, files_column: str | None = None) -> None:
    """SpecError naming the first event that cannot apply to the columns its releases have then."""
    if scenario is None:
        return
    releases = {k: _Columns(source_columns) for k in range(len(names))}
    for index, event in enumerate(scenario.events):
        for k in release_indexes(event, names):
            _follow(index, event, releases[k], names[k], source_columns, row_id, files_column)


def _follow(index: int, event: Event, columns: _Columns, release: str, source: list[str],
            row_id: bool, files_column: str | None) -> None:
    spec, kind = event.perturbation, event.kind
    leaf = {"drift": "columns", "missing": "columns", "out_of_order": "column", "late_labels": "label"}.get(kind, "")
    for column in spec.reads():
        field = _field(index, event, f"{_schema_leaf(spec, column)}" if kind == "schema" else
                       (column if kind == "types" else leaf))
        columns.need(column, field, source)
        if column == files_column and kind in ("drift", "schema", "types", "late_labels"):
            raise SpecError(field, f"{column!r} holds the file paths (files.column): it cannot be changed by {kind}")
    done = f"scenario.events.{index} ({kind} in {release}) removed it"
    if kind == "schema":
        for old, new in spec.rename.items():
            columns.remove(old, done)
            columns.add(new, _field(index, event, f"rename.{old}"))
        for column in spec.drop:
            columns.remove(column, done)
        for column in spec.add:
            if row_id and column == ROW_ID:
                raise SpecError(_field(index, event, f"add.{column}"), "row_id is the column ppipe adds (output.row_id)")
            columns.add(column, _field(index, event, f"add.{column}"))
    elif kind == "late_labels":
        columns.remove(spec.label, done)


def _schema_leaf(spec, column: str) -> str:
    return f"rename.{column}" if column in spec.rename else "drop"


def check_values(scenario: Scenario | None, names: list[str], spans: list[tuple[int, int]],
                 staged: Path, source_columns: list[str]) -> None:
    """SpecError when a type change meets a value it cannot hold, or drift meets a non-number.

    Looks at the staged rows of the releases each event applies to (``spans[k]`` = the
    [start, stop) of release k in the staged copy), under the column's source name.
    """
    if scenario is None:
        return
    for index, event in enumerate(scenario.events):
        if event.kind not in ("types", "drift"):
            continue
        targets = event.perturbation.columns
        wanted = dict(targets) if event.kind == "types" else {c: "float" for c in targets}
        origin = _source_names(scenario, index, names, source_columns)
        checked = {c: t for c, t in wanted.items() if origin.get(c) in source_columns}
        if not checked:
            continue
        releases = release_indexes(event, names)
        start, stop = spans[releases[0]][0], spans[releases[-1]][1]
        frame = pl.scan_parquet(staged).slice(start, stop - start).select(
            [pl.col(origin[c]).alias(c) for c in checked]).collect()
        for column, type_name in checked.items():
            _fits(frame[column], type_name, _field(index, event, column if event.kind == "types" else "columns"),
                  start)


def _fits(series: pl.Series, type_name: str, field: str, offset: int) -> None:
    present = series.is_not_null()
    if series.dtype == pl.String:
        present = present & (series != "")
    converted = as_float(series) if type_name == "float" else \
        series.to_frame().select(cast(pl.col(series.name), series.dtype, type_name)).to_series()
    bad = (present & converted.is_null()).arg_true()
    if len(bad):
        row = int(bad[0])
        what = "a number" if field.endswith("columns") else type_name
        raise SpecError(field, f"{series.name!r} is not {what} at source row {offset + row} ({series[row]!r}); "
                               f"{len(bad)} value(s) do not fit")


def _source_names(scenario: Scenario, upto: int, names: list[str], source: list[str]) -> dict[str, str]:
    """Column name at event ``upto`` -> its source name, following earlier renames (first release)."""
    mapping = {c: c for c in source}
    for event in scenario.events[:upto]:
        if event.kind == "schema":
            for old, new in event.perturbation.rename.items():
                if old in mapping:
                    mapping[new] = mapping.pop(old)
    return mapping
