"""Zombie-run automations on a real Prefect server: created once by name; a run a dead worker
left Pending (picked up, never started), and a run whose machine died before its first heartbeat,
are marked Crashed by the server's triggers; a live run is not, even when its Running event
reaches the triggers late."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

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
    assert silent.trigger.after == {"prefect.flow-run.heartbeat", "prefect.flow-run.Running"}
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


def _send(run_id, event: str, *, ago: float = 0.0) -> None:
    """Send one event about a ppipe flow run, as its engine (heartbeats) or Prefect (states) would;
    ``ago`` back-dates it, as a held event keeps the time it occurred."""
    from prefect.events.clients import get_events_client
    from prefect.events.schemas.events import Event

    state = {} if event.endswith("heartbeat") else {"prefect.state-name": event.rsplit(".", 1)[1]}
    message = Event(event=event, occurred=datetime.now(timezone.utc) - timedelta(seconds=ago),
                    resource={"prefect.resource.id": f"prefect.flow-run.{run_id}", **state},
                    related=[{"prefect.resource.id": f"prefect.tag.{automations.TAG}", "prefect.resource.role": "tag"}])

    async def send():
        async with get_events_client() as client:
            await client.emit(message)

    asyncio.run(send())


@contextmanager
def _beating(run_id, every: float = 2.0):
    """Heartbeats of a live run, from a thread, for as long as the block lasts; a heartbeat
    that cannot be sent fails the test when the block ends."""
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            _send(run_id, "prefect.flow-run.heartbeat")
            stop.wait(every)

    with ThreadPoolExecutor(max_workers=1) as pool:
        # the thread sees this test's Prefect settings (a context variable), not the defaults
        beating = pool.submit(contextvars.copy_context().run, beat)
        try:
            yield
        finally:
            stop.set()
        beating.result()


def _started(client, deployment_id):
    """A run of the deployment moved to Running, as a worker and the engine would."""
    from prefect import states

    run = client.create_flow_run_from_deployment(deployment_id)
    client.set_flow_run_state(run.id, states.Pending())
    client.set_flow_run_state(run.id, states.Running())
    return run


def _state_after(client, run_id, seconds: float):
    """The run's state once it is no longer Running, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (state := client.read_flow_run(run_id).state).is_running() and time.monotonic() < deadline:
        time.sleep(2)
    return state


@pytest.mark.slow
def test_a_run_dead_before_its_first_heartbeat_is_crashed_and_a_live_run_with_a_late_running_event_is_not(tmp_path):
    """A machine can die between a run's Running state and its first heartbeat (events leave the
    process in the background). Counting from Running as well closes that gap; a Running event
    that arrives late (Prefect's causal ordering held it) must not crash a run that is beating,
    and a ``ppipe deploy`` in the meantime must not make the server forget a dead run's window."""
    from prefect.client.orchestration import get_client

    window = 10
    # the crash comes a window after the run went silent, or later when the server's triggers
    # lag behind its events (a busy session server); a window never counted never crashes it
    crash_within = 120
    deployment_id = deploy.deploy(future_challenge(tmp_path, name="zombie-running"))
    zombies = automations.crash_zombies()
    zombies.trigger.within = timedelta(seconds=window)
    automations.ensure_automation(zombies)
    with get_client(sync_client=True) as client:
        live = _started(client, deployment_id)
        with _beating(live.id):
            # The server loads a changed automation in the background: a run that started before
            # it did is judged by the old (default) window; the next one is judged by the new one.
            for _ in range(2):
                dead = _started(client, deployment_id)
                if (state := _state_after(client, dead.id, crash_within)).is_crashed():
                    break
            assert state.is_crashed(), state
            assert state.message == automations.ZOMBIE_MESSAGE

            dead = _started(client, deployment_id)
            automations.ensure_automation(zombies)  # another challenge is deployed meanwhile
            assert _state_after(client, dead.id, crash_within).is_crashed()

            _send(live.id, "prefect.flow-run.Running", ago=6 * window)
            time.sleep(3 * window)
            assert client.read_flow_run(live.id).state.is_running()

        # the live run's machine dies now: its silence is noticed like any other
        assert _state_after(client, live.id, crash_within).is_crashed()
