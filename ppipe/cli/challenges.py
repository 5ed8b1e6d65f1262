"""Commands on challenges: plan, create, list, show, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ppipe.cli.common import JsonFlag, Name, command, console, err_console, group, lazy_module, print_json, say
from ppipe.cli.tables import Column, print_release_table, print_table

api = lazy_module("ppipe.api")

app = group()

SpecFile = Annotated[Path, typer.Argument(help="Challenge file (YAML), e.g. deployments/sensors-week.yaml.")]


@command(app, "plan")
def plan(file: SpecFile, json_output: JsonFlag = False) -> None:
    """Show the releases a challenge file would make: rows, when, where. Writes nothing."""
    challenge = api.load(file)
    n_rows, releases = api.plan(challenge)
    from ppipe.scenario.describe import planned as planned_events

    events = [planned_events(challenge, release.index) for release in releases]
    if json_output:
        print_json({
            "challenge": challenge.name, "rows": n_rows, "destinations": challenge.destination_labels(),
            "releases": [{**release.to_json(), "events": ev} for release, ev in zip(releases, events)],
        })
        return
    columns = [Column("release"), Column("rows", justify="right"), Column("range", optional=True),
               Column("when"), Column("where", place=True)]
    rows = [[release.name, str(release.rows), f"[{release.start}, {release.stop})",
             release.scheduled_at.isoformat(), destination]
            for release in releases for destination in release.destinations]
    print_table(f"{challenge.name}: {n_rows} rows in {len(releases)} releases", columns, rows)
    if any(events):
        scenario = Table(title=f"{challenge.name}: scenario events per release, in the order they apply")
        scenario.add_column("release")
        scenario.add_column("events")
        for release, phrases in zip(releases, events):
            scenario.add_row(release.name, "\n".join(phrases) or "-")
        console.print(scenario)


@command(app, "create")
def create(file: SpecFile) -> None:
    """Validate a challenge file, stage its source once (counting rows) and register it in the ledger."""
    record = api.create(api.load(file))
    count = len(record.challenge().proportions)
    say(f"created {record.name} ({record.id}): {record.n_rows} rows, "
        f"{count} release{'' if count == 1 else 's'}", wrap=True)


def _challenge_json(record) -> dict:
    """A challenges row (ChallengeRecord or ledger_view.ChallengeRow) as ``list`` and ``show`` print it."""
    from ppipe.ledger_view import release_count

    return {
        "name": record.name, "id": str(record.id), "state": record.state, "rows": record.n_rows,
        "created_at": record.created_at.isoformat(), "releases": release_count(record.spec),
    }


@command(app, "list")
def list_(json_output: JsonFlag = False) -> None:
    """List the challenges in the ledger."""
    records = api.list_challenges()  # no ledger yet: none, and none is made by looking
    if json_output:
        print_json({"challenges": [_challenge_json(record) for record in records]})
        return
    columns = [Column("name"), Column("state"), Column("rows", justify="right"), Column("releases", justify="right"),
               Column("created")]
    rows = []
    for record in records:
        row = _challenge_json(record)
        rows.append([row["name"], row["state"], str(row["rows"]), str(row["releases"]), row["created_at"]])
    print_table("challenges", columns, rows)


StatusFilter = Annotated[Optional[str], typer.Option(
    "--status", help="Only releases in this state: planned, running, delivered, failed or partial.")]
LastN = Annotated[Optional[int], typer.Option("--last", help="Only the last N releases (after --status).")]


@command(app, "show")
def show(name: Name, json_output: JsonFlag = False, status: StatusFilter = None, last: LastN = None) -> None:
    """Show a challenge: a summary (delivered, failed, planned, next due), then its releases per destination."""
    record, releases = api.show(name, status=status, last=last)
    grants = api.grant_status(name)
    if json_output:
        print_json({**_challenge_json(record), "releases": [release.to_json() for release in releases],
                    "grants": [grant.to_json() for grant in grants]})
        return
    print_release_table(name, releases)
    if grants:
        _print_grants(name, grants)


def _print_grants(name: str, grants: list) -> None:
    """Who has access, per destination: applied (active/revoked), failed and why, or pending."""
    columns = [Column("service"), Column("identity", wraps=True), Column("grant"), Column("destination", place=True),
               Column("there", wraps=True)]
    rows = []
    for grant in grants:
        document = grant.to_json()
        who = document["identity"] + (f" ({document['via']})" if document["via"] else "")
        places = document["destinations"] or [{"destination": "", "state": "pending", "error": None}]
        for place in places:
            there = place["state"] + (f": {place['error']}" if place["error"] else "")
            there += f", read at {place['access']}" if place.get("access") and place["state"] == "active" else ""
            rows.append([document["service"], who, f"{document['state']} {document['role']}", place["destination"], there])
    print_table(f"{name}: grants", columns, rows)


@command(app, "delete")
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keep_access: Annotated[bool, typer.Option(
        "--keep-access", help="Delete even where a grant cannot be revoked (that access stays: remove it by hand).")] = False,
) -> None:
    """Revoke the challenge's grants, then delete it from the ledger (delivered files stay where they are)."""
    with api.reading(name) as ledger:
        record = ledger.get(name)
    if not yes and not typer.confirm(f"Delete challenge {name} ({record.state}, {record.n_rows} rows)?"):
        raise typer.Exit(1)
    for line in api.delete(name, keep_access=keep_access):
        err_console.print(f"warning: {line}", markup=False, soft_wrap=True)
    say(f"deleted {name}", wrap=True)
