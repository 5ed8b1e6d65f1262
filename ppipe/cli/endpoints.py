"""``ppipe endpoints NAME``: participants' live model services, their uptime, latency and score."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ppipe.cli.common import JsonFlag, Name, command, console, group, lazy_module, print_json

api = lazy_module("ppipe.api")

app = group()


@command(app, "endpoints")
def endpoints(
    challenge: Name, json_output: JsonFlag = False,
    check: Annotated[bool, typer.Option("--check", help="Run a health check of every endpoint first.")] = False,
) -> None:
    """Participants' registered endpoints: uptime, p50/p95 latency, endpoint score, latest outcome."""
    rows = api.endpoints_report(challenge, check=check)
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"{challenge}: {len(rows)} endpoint(s)")
    for column in ("participant", "uptime", "p50 ms", "p95 ms", "score", "last"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["participant"], _number(row["uptime"], "%"), _number(row["p50_ms"]),
                      _number(row["p95_ms"]), _number(row["endpoint_score"]), row["last_outcome"] or "")
    console.print(table)


def _number(value, suffix: str = "") -> str:
    return "" if value is None else f"{value:.4g}{suffix}"
