"""Standby runs on a real server with real workers: a "machine" (a worker in a folder and
PPIPE_HOME of its own, and the flow-run process it started) is SIGKILLed while its run holds
the claim on a release; a second machine's worker then delivers that release through the dead
run's standby, a lease after the kill, not at the challenge's next scheduled run (an hour away).
A run that ends, however it ends, leaves no standby behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from benchmarks.scale import descendants
from ppipe import api
from ppipe.challenge.spec import Challenge
from ppipe.ledger import Ledger
from ppipe.orchestration import deploy, server, standby
from tests.orchestration.test_deploy import future_challenge

pytestmark = pytest.mark.usefixtures("prefect_api")

LEASE = 15  # seconds: short, so the test is; the standby stays 2/3 x 15 + 5 = 15 s ahead, past
           # the 5 s these workers prefetch
POOL = "ppipe-standby-test"


def standby_runs(deployment_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterTags,
    )

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[standby.TAG])),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def machine(tmp_path: Path, name: str):
    """A worker in a folder and PPIPE_HOME of its own, on the organiser's ledger, polling often."""
    root = tmp_path / name
    (root / "cwd").mkdir(parents=True)
    env = {**os.environ, "PPIPE_HOME": str(root / "home"), "PPIPE_CLAIM_LEASE": str(LEASE)}
    return server.start_worker(POOL, cwd=root / "cwd", log=root / "worker.log", env=env, poll_seconds=2)


def wait_for(condition, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(step)
    return None


def scheduled_standby(deployment_id, in_seconds: float):
    from prefect import get_client
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        when = datetime.now(timezone.utc) + timedelta(seconds=in_seconds)
        return client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=when), tags=[standby.TAG]).id


def state_of(run_id):
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(run_id).state.type.value
        except ObjectNotFound:
            return "deleted"


def test_a_standby_is_deleted_out_of_a_workers_reach_and_cancelled_within_it(tmp_path):
    """Within a worker's prefetch a worker may be taking it: cancelled, a worker's submission
    aborts quietly; further ahead, no worker can hold it: deleted, no trace in the UI."""
    from prefect import get_client

    deployment_id = deploy.deploy(future_challenge(tmp_path, name="withdrawn"))
    far, near = scheduled_standby(deployment_id, 300), scheduled_standby(deployment_id, 3)
    with get_client(sync_client=True) as client:
        standby._withdraw(client, far)
        standby._withdraw(client, near)
    assert (state_of(far), state_of(near)) == ("deleted", "CANCELLED")


def test_a_standby_a_worker_took_is_neither_moved_nor_withdrawn(tmp_path):
    from prefect import get_client
    from prefect.states import Pending

    deployment_id = deploy.deploy(future_challenge(tmp_path, name="taken"))
    taken = scheduled_standby(deployment_id, 300)
    with get_client(sync_client=True) as client:
        assert standby._move(client, taken, timedelta(seconds=60))  # still scheduled: moved
        moved = client.read_flow_run(taken).next_scheduled_start_time
        assert abs((moved - datetime.now(timezone.utc)).total_seconds() - 65) < 10
        client.set_flow_run_state(taken, Pending())  # what a worker does as it takes a run
        assert not standby._move(client, taken, timedelta(seconds=60))
        standby._withdraw(client, taken)
    assert state_of(taken) == "PENDING"


@pytest.mark.slow
def test_a_dead_machines_release_is_delivered_by_its_standby_a_lease_later(tmp_path, monkeypatch):
    from prefect.deployments import run_deployment

    monkeypatch.setenv("PPIPE_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")  # every machine's
    monkeypatch.setenv("PPIPE_CLAIM_LEASE", str(LEASE))
    # a source big enough that staging it on a new machine keeps the claim held for a while
    source = tmp_path / "source.csv"
    pl.DataFrame({"id": range(1_500_000), "value": [i % 977 for i in range(1_500_000)]}).write_csv(source)
    challenge = Challenge.model_validate({
        "name": "standby", "source": str(source), "releases": 3,
        "schedule": {"start": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat(), "every": "1h"},
        "destinations": [{"kind": "local", "path": str(tmp_path / "out")}],
    })
    api.create(challenge)
    deployment_id = api.deploy(challenge, work_pool=POOL)
    doomed = run_deployment(api.deployment_name(challenge.name), timeout=0)  # release_0 is due now

    first = machine(tmp_path, "first")
    try:
        claimed = wait_for(lambda: next((row for row in Ledger().releases(challenge.name)
                                         if row.index == 0 and row.status == "running"), None), timeout=120)
        assert claimed is not None, first.output()[-3000:]
        for pid in [first.process.pid, *descendants(first.process.pid)]:  # the whole machine
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed = datetime.now(timezone.utc)
    finally:
        first.stop()
    assert Ledger().releases(challenge.name)[0].status == "running", "delivered before the kill: test too slow"
    waiting = standby_runs(deployment_id)
    assert [run.state.type.value for run in waiting] == ["SCHEDULED"], waiting
    assert waiting[0].name.startswith(doomed.name)
    assert waiting[0].next_scheduled_start_time <= killed + timedelta(seconds=LEASE) + standby.MARGIN

    second = machine(tmp_path, "second")
    try:
        delivered = wait_for(lambda: next((row for row in Ledger().releases(challenge.name)
                                           if row.index == 0 and row.status == "delivered"), None),
                             timeout=LEASE + 90, step=0.5)
        assert delivered is not None, second.output()[-3000:]
        assert delivered.flow_run_id == str(waiting[0].id)  # the standby, not a scheduled run
        assert delivered.delivered_at.replace(tzinfo=timezone.utc) - killed < timedelta(seconds=LEASE + 45)
        # the standby's own standby is withdrawn when it ends; the dead run's is the only one left
        assert wait_for(lambda: all(run.state.is_final() for run in standby_runs(deployment_id)), 60, 1)
        assert [run.id for run in standby_runs(deployment_id)] == [waiting[0].id]
    finally:
        second.stop()
    assert api.verify(challenge.name).ok
    assert second.problems() == [], second.output()[-3000:]
