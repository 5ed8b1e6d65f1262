"""Zombie-run automations on a real Prefect server: created once by name, and a run a dead worker
left Pending (picked up, never started) is marked Crashed by the server's triggers."""

from __future__ import annotations

import time

import pytest

from ppipe.orchestration import automations, deploy
from tests.orchestration.test_deploy import future_challenge

pytestmark = pytest.mark.usefixtures("prefect_api", "default_windows_after")


@pytest.fixture
def default_windows_after(monkeypatch):
    """The session's server is shared: put the automations back to the default windows, or a
    later test's run, Pending a little longer than a test window, would be crashed."""
    yield
    monkeypatch.delenv("PPIPE_HEARTBEAT", raising=False)
    monkeypatch.delenv("PPIPE_START_WINDOW", raising=False)
    automations.ensure_automations()


def read(name: str):
    from prefect.automations import Automation

    return Automation.read(name=name)


def test_deploy_creates_the_three_automations_once_with_their_windows(tmp_path, monkeypatch):
    monkeypatch.setenv("PPIPE_HEARTBEAT", "40")
    monkeypatch.setenv("PPIPE_START_WINDOW", "90")
    deploy.deploy(future_challenge(tmp_path, name="zombies"))
    assert sorted(automations.ensure_automations()) == sorted(
        [automations.CRASH_ZOMBIES, automations.CRASH_UNSTARTED, automations.RERUN_CRASHED])
    silent, unstarted = read(automations.CRASH_ZOMBIES), read(automations.CRASH_UNSTARTED)
    assert silent.trigger.within.total_seconds() == 100  # 2.5 heartbeats
    assert unstarted.trigger.within.total_seconds() == 90
    assert unstarted.trigger.after == {"prefect.flow-run.Pending", "prefect.flow-run.Submitting"}
    assert "prefect.flow-run.Running" in unstarted.trigger.expect


@pytest.mark.slow
@pytest.mark.parametrize("taken", ["Pending", "Submitting"])
def test_a_run_left_pending_by_a_dead_worker_is_marked_crashed(tmp_path, monkeypatch, taken):
    """Workers propose Submitting (a Pending state) as they take a run; either, left alone, ends Crashed."""
    from prefect import states
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("PPIPE_START_WINDOW", "10")
    deployment_id = deploy.deploy(future_challenge(tmp_path, name=f"unstarted-{taken.lower()}"))
    automations.ensure_automations()  # deploy makes them once per process: apply this window
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(run.id, getattr(states, taken)())  # what a worker does as it takes a run
        deadline = time.monotonic() + 90
        while (state := client.read_flow_run(run.id).state).is_pending() and time.monotonic() < deadline:
            time.sleep(2)
    assert state.is_crashed(), state
    assert state.message == automations.ZOMBIE_MESSAGE
