"""``ppipe server start|stop|status``: the local Prefect server ppipe runs against."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ppipe.cli.common import command, group, lazy_module, say

api = lazy_module("ppipe.api")

app = group(help="The local Prefect server ppipe runs against.")

Port = Annotated[Optional[int], typer.Option("--port", help="Port of the local Prefect server (default 4200).")]


@command(app, "start")
def start(port: Port = None) -> None:
    """Start the local Prefect server in the background (or reuse the one that answers)."""
    say(f"Prefect server: {api.server_start(port).ui_url}")


@command(app, "stop")
def stop(port: Port = None) -> None:
    """Stop the local Prefect server ppipe started."""
    say("stopped" if api.server_stop(port) else "ppipe started no server on that port", wrap=True)


@command(app, "status")
def status(port: Port = None) -> None:
    """Say whether the local Prefect server answers, and whether ppipe started it."""
    state = api.server_status(port)
    started = f" (pid {state.pid}, started by ppipe)" if state.pid else ""
    say(f"{state.ui_url}: {'healthy' if state.healthy else 'not running'}{started}")
    if not state.healthy:
        raise typer.Exit(1)
