"""Zombie runs: a machine that dies leaves its flow runs Running; these automations end them.

Flow runs emit heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, set from ``PPIPE_HEARTBEAT``
on every deployment, so wherever its worker runs). Three automations, created by
``ppipe deploy`` (idempotent, by name):

1. **crash zombie runs** (Prefect's documented trigger): after a heartbeat of a ppipe flow
   run, or its Running state (a machine can die before its first heartbeat leaves the process),
   expect a heartbeat or a final state within two heartbeats and a half; when none comes, the
   run is marked Crashed with :data:`ZOMBIE_MESSAGE`. A Running event that reaches the triggers
   late (Prefect holds an event until the one it follows is seen) cannot crash a live run: the
   run's heartbeats already keep a window open, and an open window is kept, not restarted;
2. **crash unstarted runs**: a run a worker picked up (Pending: workers take runs a few
   seconds ahead) must start within ``PPIPE_START_WINDOW``; a worker killed before that
   leaves it Pending for ever, with no heartbeat for (1) to miss. Marked Crashed the same way;
3. **rerun crashed deliveries**: a ppipe flow run marked Crashed *with that message* gets a
   new run of its deployment. The new run waits out the dead run's claims (at most one claim
   lease) and delivers its releases, so even a challenge's last release, which no later
   scheduled run would pick up, is delivered. Runs that crash for another reason (the worker
   reports them) are not rerun: a deterministic crash would only crash again.
"""

from __future__ import annotations

from datetime import timedelta

from ppipe import settings

ZOMBIE_MESSAGE = "ppipe: no heartbeat from this flow run; its machine is presumed dead"
CRASH_ZOMBIES = "ppipe-crash-zombie-runs"
CRASH_UNSTARTED = "ppipe-crash-unstarted-runs"
RERUN_CRASHED = "ppipe-rerun-crashed-deliveries"
#: Flow runs of ppipe's deployments carry the deployments' tag.
TAG = "ppipe"
FINAL_EVENTS = {"prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed"}


def silence_window() -> timedelta:
    """How long a run may stay silent before it counts as dead: two heartbeats and a half."""
    return timedelta(seconds=settings.heartbeat() * 2.5)


def heartbeat_env() -> dict[str, str]:
    """The flow runs' environment (job variables): Prefect's heartbeat at ppipe's frequency."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(int(settings.heartbeat()))}


def _ppipe_runs():
    from prefect.events.schemas.events import ResourceSpecification

    return ResourceSpecification({"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{TAG}"})


def crash_zombies():
    """The automation that marks a silent ppipe flow run Crashed."""
    return _crash_unless(CRASH_ZOMBIES, "Mark ppipe flow runs Crashed when their heartbeats stop (their machine died).",
                         after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
                         expect="prefect.flow-run.heartbeat",
                         within=silence_window())


def crash_unstarted():
    """The automation that marks Crashed a ppipe flow run picked up by a worker that died before starting it."""
    return _crash_unless(CRASH_UNSTARTED, "Mark ppipe flow runs Crashed when they stay Pending (their worker died).",
                         # a worker proposes Submitting (a Pending state) as it takes a run
                         after={"prefect.flow-run.Pending", "prefect.flow-run.Submitting"},
                         expect="prefect.flow-run.Running",
                         within=timedelta(seconds=settings.start_window()))


def _crash_unless(name: str, description: str, *, after: set[str], expect: str, within: timedelta):
    """An automation: after an event in ``after`` of a ppipe flow run, ``expect`` or a final state
    must follow ``within``; else the run is marked Crashed with :data:`ZOMBIE_MESSAGE`."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=name,
        description=description,
        trigger=EventTrigger(
            after=after,
            expect={expect, *FINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=_ppipe_runs(),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=ZOMBIE_MESSAGE)],
    )


def rerun_crashed():
    """The automation that runs a zombie's deployment again, so its releases are delivered."""
    from prefect.automations import Automation
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=RERUN_CRASHED,
        description="Run the deployment of a ppipe flow run that was marked Crashed for missing heartbeats.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"],
                                         "prefect.state-message": ZOMBIE_MESSAGE}),
            match_related=_ppipe_runs(),
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[RunDeployment(source="inferred")],
    )


def ensure_automations() -> list[str]:
    """Create the automations, or bring existing ones (found by name) up to date; returns their names."""
    return [ensure_automation(wanted) for wanted in (crash_zombies(), crash_unstarted(), rerun_crashed())]


def ensure_automation(wanted) -> str:
    """Create ``wanted``, or update the automation of the same name to it; returns the name.

    An automation that already matches is left alone: the server keys its open windows (buckets)
    by trigger id and an update gives the trigger a new one, so a needless update on every
    ``ppipe deploy`` would forget every open window, and a run whose machine had just died would
    never be marked Crashed. (Changing ``PPIPE_HEARTBEAT`` still does that once: change it while
    no run is in flight.)"""
    existing = _read_by_name(wanted.name)
    if existing is None:
        wanted.create()
    elif _definition(existing) != _definition(wanted):
        wanted.id = existing.id
        wanted.update()
    return wanted.name


def _definition(automation) -> dict:
    """What an automation does, without the server's id for it."""
    return automation.model_dump(exclude={"id"})  # python mode: sets compare as sets, in any order


def _read_by_name(name: str):
    from prefect.automations import Automation

    try:
        return Automation.read(name=name)
    except ValueError:  # "Automation with name ... not found"
        return None
