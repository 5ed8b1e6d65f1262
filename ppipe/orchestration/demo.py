"""The demo: the example challenge on a compressed schedule, delivered by a real Prefect worker.

Starts (or reuses) the local Prefect server, replaces an older demo challenge, deploys it,
runs a process worker until the last release is delivered, and reports what happened. Three
simulated participants answer through the participants' API meanwhile; one of them also
serves its own model on loopback, which ppipe calls (health checks on the health deployment's
interval, and each prediction round), so the leaderboard shows uptime and latency.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from uuid import UUID

from ppipe import settings
from ppipe.challenge.spec import Challenge
from ppipe.challenge.specfile import load_challenge, parse_challenge
from ppipe.data.manifest import MANIFEST
from ppipe.delivery import challenges
from ppipe.ledger import Ledger
from ppipe.orchestration import deploy, server
from ppipe.endpoints.http import install
from ppipe.participants import leaderboard, roster
from ppipe.participants.model_service import hosting
from ppipe.participants.http.serve import serving
from ppipe.participants.rounds import judge
from ppipe.participants.simulated import SimulatedParticipant, run_in_background

DEMO_NAME = "sensors-demo"
RELEASES, EVERY = 6, 20  # apart enough that each release's run ends before the next is due
#: Seconds between the health deployment's checks: a few during the demo, without crowding the worker.
HEALTH_EVERY = 30

#: ``progress(delivered indexes, whether some failed)``: called about once a second while the demo waits.
Progress = Callable[[list[int], bool], None]


@dataclass
class DemoResult:
    """What the demo did: where the releases went, where to look, and what went wrong."""

    folder: Path
    ui_url: str
    worker_log: Path
    finished: bool
    files: list[str] = field(default_factory=list)
    manifest: Path | None = None
    problems: list[str] = field(default_factory=list)  # the worker's error lines
    leaderboard: object | None = None  # ppipe.participants.leaderboard.Board
    leaderboard_url: str = ""

    @property
    def ok(self) -> bool:
        return self.finished and not self.problems


def demo_challenge(out: Path, *, start: datetime, releases: int = RELEASES, every: int = EVERY) -> Challenge:
    """The example challenge (deployments/sensors-week.yaml's dataset) on a compressed schedule."""
    base = load_challenge(settings.deployments_dir() / "sensors-week.yaml")
    spec = base.to_spec()
    spec.pop("id", None)
    spec.update(
        name=DEMO_NAME, description=f"{base.description} Demo: {releases} releases {every}s apart.",
        releases=releases, schedule={"start": start.isoformat(), "every": f"{every}s"},
        destinations=[{"kind": "local", "path": str(out)}],
        delivery={"retries": 2, "retry_delay": "1s", "timeout": "2m"},
        output={**spec.get("output", {}), "row_id": True},
        requests={"validation": {"rows": 10, "deadline": f"{3 * every}s", "attempts": 3},
                  "prediction": {"label": "label", "metric": "accuracy"},
                  # The hosted participant's model service runs on this machine's loopback (a local,
                  # classroom demo): plain http to 127.0.0.1 must be allowed, which no real challenge should.
                  "endpoint": {"health_every": f"{HEALTH_EVERY}s", "timeout": "2s", "rows": 50,
                               "allow_http": True, "allow_private": True}},
    )
    return parse_challenge(spec, file="demo")


def run_demo(out: Path, *, timeout: float = 240, announce: Callable[[str], None] = lambda line: None,
             progress: Progress = lambda delivered, failed: None) -> DemoResult:
    """Deploy the demo challenge and serve it with a worker until finished (or ``timeout`` seconds)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with server.connect() as url:
        ledger = challenges.open_ledger()
        if ledger.exists(DEMO_NAME):
            challenges.delete(DEMO_NAME, ledger=ledger)
        shutil.rmtree(out / DEMO_NAME, ignore_errors=True)  # the demo's own folder, from an earlier demo
        start = (datetime.now(timezone.utc) + timedelta(seconds=40)).replace(microsecond=0)  # time for the worker to start
        challenge = demo_challenge(out, start=start)
        record = challenges.create(challenge, ledger=ledger)
        announce(f"created {DEMO_NAME}: {record.n_rows} rows in {RELEASES} releases, the first at "
                 f"{start.isoformat()}, then every {EVERY}s -> {out / DEMO_NAME}")
        deployment_id = deploy.deploy(challenge, ledger=ledger)
        announce(f"deployed {' and '.join(deploy.deployment_names(DEMO_NAME))}; starting a worker on pool "
                 f"{settings.work_pool()}")
        install()  # PUT /v1/endpoint, and the endpoint columns of the leaderboard
        with hosting() as model_url, serving(ledger, port=_api_port()) as api_url:
            people = _participants(ledger, out / DEMO_NAME, model_url, announce)
            announce(f"participants' API on {api_url}; {', '.join(p.name for p in people)} poll it and answer")
            stop = run_in_background(api_url, people)
            worker = server.start_worker(settings.work_pool(), cwd=deploy.project_root(),
                                         log=settings.home() / "demo-worker.log")
            try:
                finished = _follow(ledger, timeout, progress)
                for deployment in deploy.deployment_ids(DEMO_NAME):  # the last runs end before the worker stops
                    deploy.wait_settled(deployment, timeout=60)
                time.sleep(2)  # the participants' last poll answers the last release's requests
            finally:
                stop.set()
                worker.stop()
            judge(ledger, DEMO_NAME)
    result = _result(out, url, deployment_id, worker, finished)
    result.leaderboard = leaderboard.build(ledger, DEMO_NAME)
    result.leaderboard_url = f"{api_url}/leaderboard?challenge={DEMO_NAME}"
    return result


def _participants(ledger: Ledger, folder: Path, model_url: str,
                  announce: Callable[[str], None]) -> list[SimulatedParticipant]:
    """Three simulated participants registered through the participant side: one careful, one
    sloppy, and one careful that also hosts its own prediction service at ``model_url``."""
    people = []
    for name, style, endpoint in (("careful", "careful", None), ("sloppy", "sloppy", None),
                                  ("hosted", "careful", model_url)):
        added = roster.add(ledger, DEMO_NAME, name)
        people.append(SimulatedParticipant(name, added.token, folder, style, endpoint=endpoint))
    announce(f"participants added: {', '.join(p.name for p in people)} (each with an API token); "
             f"hosted serves its model at {model_url} and registers it with PUT /v1/endpoint")
    return people


def _api_port() -> int | None:
    """The port `ppipe api` uses by default (8765) when it is free, so the printed URL works again later."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 8765))
        except OSError:
            return None
    return 8765


def _follow(ledger: Ledger, timeout: float, progress: Progress) -> bool:
    """Report delivered releases as they arrive; True when the challenge is finished in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ledger.releases(DEMO_NAME)
        progress(sorted({row.index for row in rows if row.status == "delivered"}),
                 any(row.status == "failed" for row in rows))
        if ledger.get(DEMO_NAME).state == "finished":
            return True
        time.sleep(1)
    return False


def _result(out: Path, url: str, deployment_id: UUID, worker: server.Worker, finished: bool) -> DemoResult:
    folder = out / DEMO_NAME
    manifest = folder / MANIFEST
    return DemoResult(
        folder=folder, ui_url=f"{server.ui_url(url)}/deployments/deployment/{deployment_id}", worker_log=worker.log,
        finished=finished, files=sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
        manifest=manifest if manifest.is_file() else None, problems=worker.problems(),
    )
