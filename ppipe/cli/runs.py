"""Commands that run things: deploy, pause/resume/cancel, run, server, demo.

Every command that needs Prefect's API uses PREFECT_API_URL when set, else the standing
local server (started if needed): never Prefect's temporary server.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ppipe import api, settings
from ppipe import delivery
from ppipe.orchestration import server
from ppipe.cli import app, command, console, err_console
from ppipe.errors import SpecError

Name = Annotated[str, typer.Argument(help="Challenge name (in the ledger, or deployments/NAME.yaml).")]
Port = Annotated[Optional[int], typer.Option("--port", help="Port of the local Prefect server (default 4200).")]

server_app = typer.Typer(help="The local Prefect server ppipe runs against.", no_args_is_help=True)
app.add_typer(server_app, name="server")


# --- deploy, pause, resume, cancel ---------------------------------------------------------


@command("deploy")
def deploy_(
    name: Annotated[Optional[str], typer.Argument(help="Challenge name (ledger or deployments/NAME.yaml).")] = None,
    work_pool: Annotated[Optional[str], typer.Option("--work-pool", help="Work pool (default ppipe).")] = None,
    write_prefect_yaml: Annotated[bool, typer.Option(
        "--write-prefect-yaml", help="Write prefect.yaml from deployments/*.yaml (for `prefect deploy --all`).")] = False,
) -> None:
    """Publish a challenge as a Prefect deployment whose schedule is its release times."""
    from ppipe.orchestration import deploy

    if write_prefect_yaml:
        console.print(f"wrote {deploy.write_prefect_yaml()}", markup=False, soft_wrap=True)
    if name is None:
        if not write_prefect_yaml:
            raise SpecError("NAME", "give a challenge name, or --write-prefect-yaml")
        return
    with server.connect() as url:
        deployment_id = deploy.deploy(name, work_pool=work_pool)
    console.print(f"deployed {name}: {deploy.deployment_name(name)} on work pool "
                  f"{work_pool or settings.work_pool()} ({_ui(url)}/deployments/deployment/{deployment_id})",
                  markup=False, soft_wrap=True)


def _ui(url: str) -> str:
    return url.rstrip("/").removesuffix("/api")


def _change(name: str, action: str) -> None:
    from ppipe.orchestration import deploy

    with server.connect():
        had_deployment = getattr(deploy, action)(name)
    schedule = "its schedule is " + ("active" if action == "resume" else "paused") if had_deployment \
        else "it has no deployment yet"
    done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
    console.print(f"{name}: {done}; {schedule}", markup=False, soft_wrap=True)


@command("pause")
def pause(name: Name) -> None:
    """Pause a challenge's deliveries and its deployment's schedule."""
    _change(name, "pause")


@command("resume")
def resume(name: Name) -> None:
    """Resume a paused challenge and its deployment's schedule (overdue releases go out at the next run)."""
    _change(name, "resume")


@command("cancel")
def cancel(name: Name) -> None:
    """Cancel a challenge for good: no more deliveries; its schedule is paused."""
    _change(name, "cancel")


@command("worker")
def worker(pool: Annotated[Optional[str], typer.Option("--pool", help="Work pool (default ppipe).")] = None) -> None:
    """Serve the deployments: a Prefect process worker on the work pool, against the standing server.

    Runs in the foreground until Ctrl-C, in the project folder (where the flows are).
    """
    from ppipe.orchestration import deploy

    with server.connect():
        root = deploy.project_root()
        os.chdir(root)
        command_line = [server.prefect_executable(), "worker", "start", "--pool", pool or settings.work_pool(),
                        "--type", "process"]
        os.execvpe(command_line[0], command_line, {**os.environ, "PWD": str(root)})


# --- run -----------------------------------------------------------------------------------


def parse_time(text: str | None, option: str = "--now") -> datetime | None:
    """An ISO 8601 time with a timezone, or None; SpecError naming the option otherwise."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(option, f"{text!r} is not an ISO 8601 time such as 2026-12-01T09:00:00Z") from None
    if value.tzinfo is None:
        raise SpecError(option, "has no timezone: write it with one, such as 2026-12-01T09:00:00Z")
    return value


class StepProgress:
    """Rich progress bars per release and step, fed by ppipe.delivery's listener."""

    def __init__(self, progress: Progress):
        self.progress, self.bars = progress, {}

    def __call__(self, release: str, step: str, detail: str) -> None:
        if step == "stage":
            self.bars["stage"] = self.progress.add_task(f"stage {detail}", total=1, completed=1)
        elif step == "claim":
            claimed = int(detail.split()[0])
            self.bars[release] = self.progress.add_task(f"{release}: claimed", total=1 + claimed)
        elif release in self.bars:
            advance = 1 if step in ("save", "delivered", "failed") else 0
            text = f"{release}: {step} {detail if step != 'save' else ''}".rstrip()
            self.progress.update(self.bars[release], advance=advance, description=text)


def _quiet_prefect_console() -> None:
    # The progress bars say what happens; Prefect's own console lines would break them.
    # Warnings still show, and every log line still reaches the Prefect server.
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.setLevel(logging.WARNING)


@command("run")
def run(
    name: Name,
    now: Annotated[Optional[str], typer.Option("--now", help="Act as if it were this time (ISO 8601, with zone).")] = None,
    release: Annotated[Optional[int], typer.Option("--release", help="Deliver this release now, whenever it is scheduled.")] = None,
) -> None:
    """Run the dispatch flow once, here, against the standing Prefect server: deliver what is due."""
    at = parse_time(now)
    if release is not None and release < 0:
        raise SpecError("--release", "must be a release index (0 or more)")
    with server.connect() as url:
        from ppipe.orchestration.flow import dispatch_challenge

        _quiet_prefect_console()
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console) as progress, delivery.watch(StepProgress(progress)):
            state = dispatch_challenge(challenge=name, now=at, release=release, return_state=True)
    _print_releases(name)
    console.print(f"flow run: {_ui(url)}/runs/flow-run/{state.state_details.flow_run_id}", markup=False, soft_wrap=True)
    if state.is_failed():
        err_console.print(f"error: {state.message}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


def _print_releases(name: str) -> None:
    table = Table(title=f"{name}: {api.open_ledger().get(name).state}")
    for column in ("release", "when", "destination", "status"):
        table.add_column(column)
    for row in delivery.release_table(api.open_ledger(), name):
        status = row["status"] + (f": {row['error']}" if row["error"] else "")
        table.add_row(row["release"], row["scheduled_at"], row["destination"], status)
    console.print(table)


# --- server --------------------------------------------------------------------------------


@command("start", on=server_app)
def server_start(port: Port = None) -> None:
    """Start the local Prefect server in the background (or reuse the one that answers)."""
    console.print(f"Prefect server: {_ui(server.start(port).url)}", markup=False, soft_wrap=True)


@command("stop", on=server_app)
def server_stop(port: Port = None) -> None:
    """Stop the local Prefect server ppipe started."""
    console.print("stopped" if server.stop(port) else "ppipe started no server on that port")


@command("status", on=server_app)
def server_status(port: Port = None) -> None:
    """Say whether the local Prefect server answers, and whether ppipe started it."""
    state = server.status(port)
    started = f" (pid {state.pid}, started by ppipe)" if state.pid else ""
    console.print(f"{_ui(state.url)}: {'healthy' if state.healthy else 'not running'}{started}",
                  markup=False, soft_wrap=True)
    if not state.healthy:
        raise typer.Exit(1)


# --- demo ----------------------------------------------------------------------------------

DEMO_NAME = "sensors-demo"


def demo_challenge(out: Path, *, start: datetime, releases: int = 6, every: int = 10):
    """The example challenge (deployments/sensors-week.yaml's dataset) on a compressed schedule."""
    from ppipe.challenge.specfile import load_challenge, parse_challenge

    base = load_challenge(settings.deployments_dir() / "sensors-week.yaml")
    spec = base.to_spec()
    spec.pop("id", None)
    spec.update(
        name=DEMO_NAME, description=f"{base.description} Demo: {releases} releases {every}s apart.",
        releases=releases, schedule={"start": start.isoformat(), "every": f"{every}s"},
        destinations=[{"kind": "local", "path": str(out)}],
        delivery={"retries": 2, "retry_delay": "1s", "timeout": "2m"},
    )
    return parse_challenge(spec, file="demo")


@command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder the releases go to.")] = Path("out"),
    timeout: Annotated[int, typer.Option("--timeout", help="Give up after this many seconds.")] = 240,
) -> None:
    """The main job: the example challenge, six releases 10s apart, delivered by a Prefect worker to ./out.

    Starts (or reuses) the local Prefect server, replaces an older demo challenge, deploys
    it, runs a worker until the last release is delivered, then says where everything is.
    """
    from ppipe.orchestration import deploy

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with server.connect() as url:
        ledger = api.open_ledger()
        if ledger.exists(DEMO_NAME):
            api.delete(DEMO_NAME, ledger=ledger)
        shutil.rmtree(out / DEMO_NAME, ignore_errors=True)  # the demo's own folder, from an earlier demo
        start = (datetime.now(timezone.utc) + timedelta(seconds=20)).replace(microsecond=0)
        challenge = demo_challenge(out, start=start)
        record = api.create(challenge, ledger=ledger)
        console.print(f"created {DEMO_NAME}: {record.n_rows} rows in 6 releases, the first at "
                      f"{start.isoformat()}, then every 10s -> {out / DEMO_NAME}", markup=False, soft_wrap=True)
        deployment_id = deploy.deploy(challenge, ledger=ledger)
        console.print(f"deployed {deploy.deployment_name(DEMO_NAME)}; starting a worker on pool "
                      f"{settings.work_pool()}", markup=False, soft_wrap=True)
        worker = server.start_worker(settings.work_pool(), cwd=deploy.project_root(),
                                     log=settings.home() / "demo-worker.log")
        try:
            finished = _follow(ledger, challenge.release_count, timeout)
            deploy.wait_settled(deployment_id, timeout=60)  # let the last runs end before the worker stops
        finally:
            worker.stop()
    _demo_report(ledger, out, url, deployment_id, worker, finished)


def _follow(ledger, total: int, timeout: int) -> bool:
    """Show delivered releases as they arrive; True when the challenge is finished in time."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("releases delivered", total=total)
        while time.monotonic() < deadline:
            rows = ledger.releases(DEMO_NAME)
            delivered = sorted({row.index for row in rows if row.status == "delivered"})
            failed = [row for row in rows if row.status == "failed"]
            text = f"releases delivered (last: release_{delivered[-1]})" if delivered else "waiting for release_0"
            progress.update(bar, completed=len(delivered), description=text + (" - failures, retrying" if failed else ""))
            if ledger.get(DEMO_NAME).state == "finished":
                return True
            time.sleep(1)
    return False


def _demo_report(ledger, out: Path, url: str, deployment_id, worker, finished: bool) -> None:
    folder = out / DEMO_NAME
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    console.print(f"files in {folder}: {', '.join(files) or 'none'}", markup=False, soft_wrap=True)
    manifest = folder / delivery.MANIFEST
    if manifest.is_file():
        console.print(f"manifest: {manifest}", markup=False, soft_wrap=True)
        console.print(manifest.read_text(encoding="utf-8"), markup=False, soft_wrap=True)
    console.print(f"Prefect UI: {_ui(url)}/deployments/deployment/{deployment_id} (runs, task runs, artifacts "
                  f"ppipe-{DEMO_NAME}-releases and ppipe-{DEMO_NAME}-summary)", markup=False, soft_wrap=True)
    problems = worker.problems()
    if problems:
        err_console.print(f"error: the worker reported {len(problems)} problem line(s), see {worker.log}:",
                          markup=False, soft_wrap=True)
        for line in problems[:10]:
            err_console.print(f"  {line}", markup=False, soft_wrap=True)
    if not finished:
        err_console.print(f"error: not every release was delivered in time: see 'ppipe show {DEMO_NAME}' "
                          f"and {worker.log}", markup=False, soft_wrap=True)
    if problems or not finished:
        raise typer.Exit(1)
    console.print(f"done: all releases of {DEMO_NAME} delivered; worker output in {worker.log}", markup=False, soft_wrap=True)
