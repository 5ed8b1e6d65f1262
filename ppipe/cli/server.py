"""``ppipe server start|stop|status``: the local Prefect server ppipe runs against."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ppipe.cli.common import command, group, lazy_module, say
from ppipe.errors import ConfigError

api = lazy_module("ppipe.api")

app = group(help="The local Prefect server ppipe runs against.")

Port = Annotated[Optional[int], typer.Option("--port", help="Port of the local Prefect server (default 4200).")]


Database = Annotated[Optional[str], typer.Option(
    "--database", help="Prefect's own PostgreSQL database (postgresql://user@host/db): run Prefect "
    "as API processes + one services process on PostgreSQL and Redis (docs/scale-out.md).")]
Redis = Annotated[Optional[str], typer.Option(
    "--redis", help="Redis for messaging, ordering, leases (DB N) and the docket (DB N+1), with --database.")]
Processes = Annotated[int, typer.Option("--api-processes", min=1, help="API processes, with --database.")]


@command(app, "start")
def start(port: Port = None, database: Database = None, redis: Redis = None, api_processes: Processes = 2) -> None:
    """Start the local Prefect server in the background (or reuse the one that answers); with
    --database and --redis, Prefect's distributed setup instead."""
    if database is None and redis is None:
        say(f"Prefect server: {api.server_start(port).ui_url}")
        return
    if not (database and redis):
        raise ConfigError("--database and --redis: give both, for Prefect on PostgreSQL and Redis")
    cluster = api.cluster_start(database, redis, processes=api_processes, port=port)
    for url in cluster.api_urls:
        say(f"Prefect API: {url}")


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
