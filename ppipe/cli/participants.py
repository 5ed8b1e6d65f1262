"""Participant commands: ``ppipe participant add|list|revoke|rotate``, ``ppipe judge`` and ``ppipe api``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich import box
from rich.table import Table

from ppipe.cli.common import JsonFlag, Name, command, console, group, lazy_module, print_json, say

api = lazy_module("ppipe.api")

app = group()
participant_app = group(name="participant", help="Participants of a challenge and their API tokens.")

Person = Annotated[str, typer.Argument(help="Participant name (lowercase letters, digits, '-', '_').")]


@command(participant_app, "add")
def add(
    challenge: Name, name: Person,
    email: Annotated[Optional[str], typer.Option("--email", help="Contact e-mail.")] = None,
    s3: Annotated[Optional[str], typer.Option(
        "--s3", help="IAM ARN or account id (bucket policy), or an IAM user name (its own policy and key).")] = None,
    gcs: Annotated[Optional[str], typer.Option("--gcs", help="GCS member (user:/group:/serviceAccount:).")] = None,
    drive: Annotated[Optional[str], typer.Option("--drive", help="E-mail to share the Drive folder with.")] = None,
    endpoint: Annotated[Optional[str], typer.Option(
        "--endpoint", help="URL of the participant's model service (probed at once).")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="Endpoint protocol: ppipe or v2.")] = "ppipe",
    json_output: JsonFlag = False,
) -> None:
    """Register a participant, grant their identities read access, print their API token once."""
    if endpoint is not None:
        api.endpoint_check(challenge, endpoint, protocol)  # a refused URL stops here, before anything is written
    added = api.participant_add(challenge, name, email=email, s3=s3, gcs=gcs, drive=drive)
    registered = api.endpoint_register(challenge, name, endpoint, protocol) if endpoint is not None else None
    if json_output:
        document = {"participant": added.participant, "token": added.token}
        if registered is not None:
            document["endpoint"] = registered.to_json()
        print_json(document)
        return
    for line in added.grants:
        say(line, wrap=True)
    say(f"added {name} to {challenge}; API token (shown once, keep it secret):")
    say(added.token)
    if registered is not None:
        probe = registered.probe
        say(f"endpoint {registered.endpoint.url}: {probe.outcome}" + (f" ({probe.error})" if probe.error else ""),
            wrap=True)
        say("signing secret (shown once, give it to the participant):")
        say(registered.secret)


@command(participant_app, "list")
def list_(challenge: Name, json_output: JsonFlag = False) -> None:
    """Participants of a challenge (never their tokens)."""
    people = api.participant_list(challenge)
    documents = [{"participant": p.name, "email": p.email, "state": p.state, "created_at": p.created_at.isoformat(),
                  "identities": [f"{g['service']}:{g['identity']}" for g in p.identities]} for p in people]
    if json_output:
        print_json(documents)
        return
    table = Table(title=f"{challenge}: {len(people)} participant(s)")
    for column in ("participant", "state", "email", "identities"):
        table.add_column(column, overflow="fold")
    for doc in documents:
        table.add_row(doc["participant"], doc["state"], doc["email"] or "", ", ".join(doc["identities"]))
    console.print(table)


@command(participant_app, "revoke")
def revoke(challenge: Name, name: Person) -> None:
    """Stop a participant's token now and revoke their storage grants."""
    for line in api.participant_revoke(challenge, name):
        say(line, wrap=True)
    say(f"revoked {name} in {challenge}: the token no longer works")


@command(participant_app, "rotate")
def rotate(challenge: Name, name: Person, json_output: JsonFlag = False) -> None:
    """Give a participant a new token (the old one stops working)."""
    token = api.participant_rotate(challenge, name)
    if json_output:
        print_json({"participant": name, "token": token})
        return
    say(f"new API token for {name} (shown once):")
    say(token)


@command(app, "judge")
def judge(challenge: Name, json_output: JsonFlag = False) -> None:
    """Open due requests, mark misses and score predictions whose labels are out; show the leaderboard."""
    result = api.judge(challenge)
    board = api.leaderboard(challenge)
    if json_output:
        print_json({"round": result.line(), "problems": result.problems, "leaderboard": board.to_json()})
        return
    say(result.line(), wrap=True)
    for problem in result.problems:
        say(f"problem: {problem}", wrap=True)
    print_board(board)


def print_board(board) -> None:
    """The leaderboard as a table that fits 80 columns, even with the endpoint columns: no
    side borders, titles wrapped onto two lines, three decimals for a score, one for a number."""
    metric = f" ({board.metric})" if board.metric else ""
    table = Table(title=f"{board.challenge} leaderboard{metric}", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in board.columns:
        text = column.kind == "text"  # a long name folds; figures never do
        table.add_column(column.narrow_title.replace(" ", "\n"), justify="left" if text else "right",
                         no_wrap=not text, overflow="fold")
    for row in board.rows:
        table.add_row(*[_cell(column, row.get(column.key)) for column in board.columns])
    console.print(table)


def _cell(column, value) -> str:
    if value is None:
        return "-"
    if column.kind == "rate":
        return f"{100 * value:.0f}%"
    if isinstance(value, float):
        return f"{value:.3f}" if column.kind == "score" else f"{value:.1f}"
    return str(value)


@command(app, "api")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = False,
) -> None:
    """Serve the participants' HTTP API (and the public leaderboard page) over the ledger."""
    say(f"ppipe API on http://{host}:{port} (leaderboard: http://{host}:{port}/leaderboard, "
        f"docs: http://{host}:{port}/docs)")
    api.serve_api(host, port, workers=workers, access_log=access_log)
