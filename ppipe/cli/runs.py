"""Commands that run things: deploy, pause/resume/cancel, run, worker, demo.

Every command that needs Prefect's API uses PREFECT_API_URL when set, else the standing
local server (started if needed): never Prefect's temporary server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ppipe import settings
from ppipe.cli.common import Name, command, console, err_console, group, lazy_module, say
from ppipe.cli.tables import print_release_table
from ppipe.errors import SpecError

api = lazy_module("ppipe.api")

app = group()

BARS = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())


# --- deploy, pause, resume, cancel ---------------------------------------------------------


@command(app, "deploy")
def deploy_(
    name: Annotated[Optional[str], typer.Argument(help="Challenge name (ledger or deployments/NAME.yaml).")] = None,
    work_pool: Annotated[Optional[str], typer.Option("--work-pool", help="Work pool (default ppipe).")] = None,
    write_prefect_yaml: Annotated[bool, typer.Option(
        "--write-prefect-yaml", help="Write prefect.yaml from deployments/*.yaml (for `prefect deploy --all`).")] = False,
) -> None:
    """Publish a challenge as a Prefect deployment whose schedule is its release times."""
    if write_prefect_yaml:
        say(f"wrote {api.write_prefect_yaml()}")
    if name is None:
        if not write_prefect_yaml:
            raise SpecError("NAME", "give a challenge name, or --write-prefect-yaml")
        return
    deployment_id = api.deploy(name, work_pool=work_pool)
    say(f"deployed {name}: {api.deployment_name(name)} on work pool "
        f"{work_pool or settings.work_pool()} ({api.prefect_ui()}/deployments/deployment/{deployment_id})")
    if health := api.health_deployment(name):
        say(f"endpoint health checks: {health}")


def _change(name: str, action: str) -> None:
    had_deployment = getattr(api, action)(name)
    schedule = "its schedule is " + ("active" if action == "resume" else "paused") if had_deployment \
        else "it has no deployment yet"
    done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
    say(f"{name}: {done}; {schedule}")


@command(app, "pause")
def pause(name: Name) -> None:
    """Pause a challenge's deliveries and its deployment's schedule."""
    _change(name, "pause")


@command(app, "resume")
def resume(name: Name) -> None:
    """Resume a paused challenge and its deployment's schedule (overdue releases go out at the next run)."""
    _change(name, "resume")


@command(app, "cancel")
def cancel(name: Name) -> None:
    """Cancel a challenge for good: no more deliveries; its schedule is paused."""
    _change(name, "cancel")


@command(app, "worker")
def worker(pool: Annotated[Optional[str], typer.Option("--pool", help="Work pool (default ppipe).")] = None) -> None:
    """Serve the deployments: a Prefect process worker on the work pool, against the standing server.

    Runs in the foreground until Ctrl-C, in the project folder (where the flows are).
    """
    api.worker(pool)


# --- run -----------------------------------------------------------------------------------


class StepProgress:
    """Rich progress bars per release and step, fed by the run's listener."""

    def __init__(self, progress: Progress):
        self.progress, self.bars = progress, {}

    def __call__(self, release: str, step: str, detail: str) -> None:
        if step == "stage":
            self.bars["stage"] = self.progress.add_task(f"stage {detail}", total=1, completed=1)
        elif step == "claim":
            claimed = int(detail.split()[0])
            self.bars[release] = self.progress.add_task(f"{release}: claimed", total=1 + claimed)
        elif step in ("granted", "revoked"):  # said once, when done: e.g. a new IAM user's key file
            self.progress.console.print(detail, markup=False, soft_wrap=True)
        elif release in self.bars:
            advance = 1 if step in ("save", "delivered", "failed") else 0
            text = f"{release}: {step} {detail if step != 'save' else ''}".rstrip()
            self.progress.update(self.bars[release], advance=advance, description=text)


@command(app, "run")
def run(
    name: Name,
    now: Annotated[Optional[str], typer.Option("--now", help="Act as if it were this time (ISO 8601, with zone).")] = None,
    release: Annotated[Optional[int], typer.Option("--release", help="Deliver this release now, whenever it is scheduled.")] = None,
) -> None:
    """Run the dispatch flow once, here, against the standing Prefect server: deliver what is due."""
    with Progress(*BARS, console=console, transient=True) as progress:  # the table below says how it ended
        flow_run = api.run(name, now=now, release=release, listener=StepProgress(progress), quiet=True,
                           on_start=lambda message: progress.console.print(message, markup=False, soft_wrap=True))
    print_release_table(name)
    say(f"flow run: {flow_run.url}")
    if flow_run.failed:
        err_console.print(f"error: {flow_run.message}", markup=False, soft_wrap=True)
        raise typer.Exit(1)




# --- demo ----------------------------------------------------------------------------------


@command(app, "demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder the releases go to.")] = Path("out"),
    timeout: Annotated[int, typer.Option("--timeout", help="Give up after this many seconds.")] = 240,
) -> None:
    """The main job: the example challenge, six releases 20s apart, delivered by a Prefect worker to ./out.

    Starts (or reuses) the local Prefect server, replaces an older demo challenge, deploys
    it, runs a worker until the last release is delivered, then says where everything is.
    """
    with Progress(*BARS, console=console) as progress:
        bar = progress.add_task("releases delivered", total=6, start=False)

        def show(delivered: list[int], failed: bool) -> None:
            text = f"releases delivered (last: release_{delivered[-1]})" if delivered else "waiting for release_0"
            progress.start_task(bar)
            progress.update(bar, completed=len(delivered), description=text + (" - failures, retrying" if failed else ""))

        result = api.demo(out, timeout=timeout, announce=lambda line: progress.console.print(
            line, markup=False, soft_wrap=True), progress=show)
    say(f"files in {result.folder}: {', '.join(result.files) or 'none'}")
    if result.manifest:
        say(f"manifest: {result.manifest}")
        say(result.manifest.read_text(encoding="utf-8"))
    say(f"Prefect UI: {result.ui_url} (runs, task runs, artifacts "
        f"ppipe-{result.folder.name}-releases, ppipe-{result.folder.name}-summary and ppipe-{result.folder.name}-leaderboard)")
    if result.problems:
        err_console.print(f"error: the worker reported {len(result.problems)} problem line(s), see {result.worker_log}:",
                          markup=False, soft_wrap=True)
        for line in result.problems[:10]:
            err_console.print(f"  {line}", markup=False, soft_wrap=True)
    if not result.finished:
        err_console.print(f"error: not every release was delivered in time: see 'ppipe show {result.folder.name}' "
                          f"and {result.worker_log}", markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
    say(f"done: all releases of {result.folder.name} delivered; worker output in {result.worker_log}")
    if result.leaderboard is not None:
        from ppipe.cli.participants import print_board

        print_board(result.leaderboard)
        say(f"leaderboard: {result.leaderboard_url} (while `ppipe api` runs)")
