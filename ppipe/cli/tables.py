"""Tables that stay readable at 80 columns: ``plan``, ``show`` and ``run``.

A time or a place is never cut: when the table would be wider than the terminal, the places
move to a numbered list above it (the table shows ``[1]``), then optional columns are
dropped; only free text (an error) wraps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rich import box
from rich.table import Table

from ppipe.cli.common import console, lazy_module

api = lazy_module("ppipe.api")  # ppipe --help imports no ledger, model or polars


@dataclass(frozen=True)
class Column:
    name: str
    optional: bool = False  # dropped first when the table is too wide
    wraps: bool = False  # free text that may wrap (never a time or a place)
    place: bool = False  # a destination: moved to a numbered list when too wide
    justify: str = "left"


def print_table(title: str, columns: Sequence[Column], rows: list[list[str]]) -> None:
    """``rows`` under ``columns``, fitted to the console's width as the module says."""
    width = console.width
    columns, rows = list(columns), [list(row) for row in rows]
    places = _places(columns, rows)
    if _width(columns, rows) > width and places:
        console.print("where:", markup=False)
        for number, place in enumerate(places, 1):
            console.print(f"  [{number}] {place}", markup=False, soft_wrap=True)
        rows = [[f"[{places.index(cell) + 1}]" if column.place else cell for column, cell in zip(columns, row)]
                for row in rows]
    while _width(columns, rows) > width and any(column.optional for column in columns):
        drop = max((i for i, column in enumerate(columns) if column.optional))
        columns.pop(drop)
        rows = [row[:drop] + row[drop + 1:] for row in rows]
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in columns:
        table.add_column(column.name, justify=column.justify, overflow="fold" if column.wraps else "ignore",
                         no_wrap=not column.wraps)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _places(columns: list[Column], rows: list[list[str]]) -> list[str]:
    found: list[str] = []
    for row in rows:
        for column, cell in zip(columns, row):
            if column.place and cell not in found:
                found.append(cell)
    return found


def _width(columns: list[Column], rows: list[list[str]]) -> int:
    """Width of the table without wrapping (free-text columns count as 20: they wrap)."""
    total = 0
    for i, column in enumerate(columns):
        cells = [len(column.name)] + [len(row[i]) for row in rows]
        total += min(max(cells), 20) if column.wraps else max(cells)
    return total + 3 * len(columns)  # padding and the space rich keeps between columns, with a margin


# --- the release tables --------------------------------------------------------------------

def summary_lines(name: str) -> list[str]:
    """What ``show`` and ``run`` print first: counts per status and what is due next."""
    summary = api.summary(name)
    counts = summary["counts"]
    parts = [f"{counts[s]} {s}" for s in ("delivered", "failed", "running", "partial", "planned")
             if counts[s] or s in ("delivered", "failed", "planned")]
    upcoming = summary["next"]
    return [
        f"{name} ({summary['state']}): {summary['rows']} rows in {summary['releases']} releases",
        ", ".join(parts),
        f"next due: {upcoming[0]} at {upcoming[1].isoformat()}" if upcoming else "nothing left to deliver",
    ]


def print_release_table(name: str, releases: list | None = None, *, detail: bool = True) -> None:
    """The summary, then one row per (release, destination): when, where, status (and sha256, uri)."""
    for line in summary_lines(name):
        console.print(line, markup=False, soft_wrap=True)
    releases = api.show(name)[1] if releases is None else releases
    columns = [Column("release"), Column("rows", optional=True, justify="right"), Column("when"),
               Column("destination", place=True), Column("status", wraps=True)]
    if detail:
        columns += [Column("sha256", optional=True), Column("uri", optional=True)]
    rows = []
    for release in releases:
        for row in release.deliveries:
            cells = [release.name, str(release.rows), release.scheduled_at.isoformat(), row.destination,
                     row.status + (f": {row.error}" if row.error else "")]
            if detail:
                cells += [(row.sha256 or "")[:12], row.uri or ""]
            rows.append(cells)
    print_table("", columns, rows)
