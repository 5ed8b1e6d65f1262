"""A standby run: the dead man's switch of a deployment's run.

While a deployment's run delivers, a second run of the same deployment waits ``Scheduled`` a
claim lease (plus a margin) ahead. The run keeps moving it forward, and withdraws it when it
ends, however it ends. A run whose machine dies stops moving it: the standby starts just after
the dead run's claims expire, on any worker, and delivers what they held.

Without it, a dead machine's releases waited for the challenge's next scheduled run (up to a
whole interval away: a day, for a daily challenge) or for the zombie automation's rerun (2.5
heartbeats, and up to 15 minutes where Prefect holds the run's events; docs/scale-out.md).
Prefect has no timer of its own to reset: a scheduled flow run is the documented way to have
some worker start work at a given time.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Scheduled

from ppipe.settings import claim_lease

#: The standby starts this long after the run's claims would expire, were it to die now. Moved
#: every third of a lease, it stays at least two thirds of a lease plus this ahead: out of reach
#: of workers, which take runs up to PREFECT_WORKER_PREFETCH_SECONDS (10 s) early.
MARGIN = timedelta(seconds=5)

TAG = "ppipe-standby"

#: Seconds the run waits for its standby to be scheduled before it claims anything, and for it
#: to be withdrawn as the run ends. Past that (an overloaded API) the run goes on: a standby
#: scheduled late follows when the API answers, one never withdrawn runs once and finds nothing.
API_WAIT = 10.0


@contextmanager
def standby_run() -> Iterator[None]:
    """Keep a standby run of this run's deployment scheduled one lease ahead while the body
    runs. Nothing for a run without a deployment (``ppipe run``: nobody else would take over).
    The API calls happen in a thread of their own: the run waits for the standby's creation and,
    as it ends, for the withdrawal (each at most :data:`API_WAIT`); the moves go on beside it."""
    deployment_id = deployment.id
    if not deployment_id:
        yield
        return
    scheduled, stop = threading.Event(), threading.Event()
    context = contextvars.copy_context()  # Prefect's settings and the run's logger, in the thread
    keeper = threading.Thread(target=context.run, name="ppipe-standby", daemon=True,
                              args=(_keep, UUID(str(deployment_id)), claim_lease(), scheduled, stop))
    keeper.start()
    scheduled.wait(API_WAIT)  # the standby is there before the first claim, unless the API is that slow
    try:
        yield
    finally:
        stop.set()
        keeper.join(API_WAIT)


def _keep(deployment_id: UUID, lease: timedelta, scheduled: threading.Event, stop: threading.Event) -> None:
    """Schedule the standby (then set ``scheduled``), move it a lease ahead every third of a
    lease (as the claims are renewed) until ``stop``, then withdraw it."""
    with get_client(sync_client=True) as client:
        standby = _schedule(client, deployment_id, lease)
        scheduled.set()
        if standby is None:
            return
        while not stop.wait(lease.total_seconds() / 3):
            try:
                if not _move(client, standby, lease):
                    return  # a worker took it: it runs, and finds the claims live or delivered
            except Exception:  # noqa: BLE001 - a missed move only lets the standby start early: it
                continue       # then finds the claims live, waits out their lease, delivers nothing twice
        _withdraw(client, standby)


def _move(client, standby: UUID, lease: timedelta) -> bool:
    """Move the standby a lease ahead; False when a worker took it meanwhile (Prefect would let
    a new Scheduled state pull it back from under the worker, so look first)."""
    if not client.read_flow_run(standby).state.is_scheduled():
        return False
    client.set_flow_run_state(standby, Scheduled(scheduled_time=_start_time(lease)))
    return True


def _start_time(lease: timedelta) -> datetime:
    return datetime.now(timezone.utc) + lease + MARGIN


def _schedule(client, deployment_id: UUID, lease: timedelta) -> UUID | None:
    """The standby's id; None (and a warning) when the API refuses: the run goes on without
    one, as runs did before it existed."""
    try:
        standby = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=_start_time(lease)),
            name=f"{flow_run.get_name() or 'run'}-standby", tags=[TAG])
    except Exception as exc:  # noqa: BLE001 - a safety net; the delivery does not depend on it
        get_run_logger().warning("no standby run (%s): if this machine dies, its releases wait "
                                 "for the challenge's next run", type(exc).__name__)
        return None
    return standby.id


def _withdraw(client, standby: UUID) -> None:
    """Delete the standby while no worker can be taking it (further ahead than a worker's
    prefetch); closer, cancel it, which makes a worker's submission abort quietly where a
    deleted run would fail it. One a worker already took is left to run: it finds nothing to do."""
    try:
        run = client.read_flow_run(standby)
        if not run.state.is_scheduled():
            return
        ahead = (run.next_scheduled_start_time - datetime.now(timezone.utc)).total_seconds()
        if ahead > get_current_settings().worker.prefetch_seconds + MARGIN.total_seconds():
            client.delete_flow_run(standby)
        else:
            client.set_flow_run_state(standby, Cancelled(message="ppipe: the run it stood by for ended"))
    except Exception as exc:  # noqa: BLE001 - it then runs once and finds nothing to deliver
        get_run_logger().warning("standby run %s not withdrawn (%s); it will find nothing to deliver",
                                 standby, type(exc).__name__)
