"""Challenges as Prefect deployments: one deployment of the dispatch flow per challenge, and
one of the endpoint health-check flow per challenge that takes live endpoints.

The schedule's run times are exactly the release times: an RRule with DTSTART = the first
release (UTC), FREQ=SECONDLY;INTERVAL=<every in seconds> (any interval) and COUNT = the
number of releases. Prefect does not backfill runs missed while its server was down; the
flow delivers every overdue release at its next run, so nothing is lost.

The same deployments come from ``ppipe deploy NAME`` and from ``prefect deploy --all`` with
the ``prefect.yaml`` generated here (``ppipe deploy --write-prefect-yaml``).

A challenge with ``requests.endpoint`` also gets ``check-endpoints/<name>``: an interval
schedule of ``health_every`` anchored at the first release, on the same work pool, so health
checks keep their own pace whatever the release schedule. Pause, resume, cancel and delete
act on both deployments; a finished challenge pauses both.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from uuid import UUID

import yaml

from ppipe import settings
from ppipe.delivery import challenges
from ppipe.errors import ConflictError, SpecError
from ppipe.orchestration.automations import heartbeat_env
from ppipe.ledger import Ledger
from ppipe.challenge.spec import Challenge
from ppipe.challenge.specfile import load_challenge

FLOW_NAME = "dispatch-challenge"
ENTRYPOINT = "flows/dispatch.py:dispatch_challenge"
#: What ``ppipe deploy`` publishes: the flow by module path, imported from the installed
#: package on whichever machine runs it (no storage, no pull step, no local folder).
MODULE_ENTRYPOINT = "flows.dispatch:dispatch_challenge"
HEALTH_FLOW_NAME = "check-endpoints"
HEALTH_MODULE_ENTRYPOINT = "flows.health:check_endpoints"
#: Prefect refuses longer rrule strings; ours are about 60 characters.
MAX_RRULE_LENGTH = 6500


def project_root() -> Path:
    """The folder holding ``flows/dispatch.py`` (next to the ppipe package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ENTRYPOINT.split(":")[0]).is_file():
        raise SpecError("", f"cannot find {ENTRYPOINT.split(':')[0]} next to the ppipe package ({root})")
    return root


def deployment_name(challenge: str) -> str:
    """``<flow name>/<deployment name>``, as Prefect reads a deployment by name."""
    return f"{FLOW_NAME}/{challenge}"


def health_deployment_name(challenge: str) -> str:
    """The challenge's health-check deployment, as Prefect reads it by name."""
    return f"{HEALTH_FLOW_NAME}/{challenge}"


def deployment_names(challenge: str) -> list[str]:
    """Every deployment a challenge may have: dispatch first, then health checks."""
    return [deployment_name(challenge), health_deployment_name(challenge)]


def rrule(challenge: Challenge) -> str:
    """The RRule whose occurrences are the release times (UTC, whole seconds).

    A start with a fraction of a second is rounded up, so a run never comes before its release.
    """
    every = challenge.schedule.every.total_seconds()
    if every != int(every):
        raise SpecError("schedule.every", f"{every:g}s: a Prefect schedule needs a whole number of seconds")
    start = challenge.schedule.start.astimezone(timezone.utc)
    if start.microsecond:
        start = start.replace(microsecond=0) + timedelta(seconds=1)
    text = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=SECONDLY;INTERVAL={int(every)};COUNT={challenge.release_count}"
    if len(text) > MAX_RRULE_LENGTH:  # cannot happen with this form, but Prefect would refuse it
        raise SpecError("schedule", "the schedule does not fit in a Prefect rrule")
    return text


def deployment_config(challenge: Challenge, work_pool: str | None = None) -> dict:
    """The deployment as a prefect.yaml entry (also what ``deploy`` publishes)."""
    return {
        "name": challenge.name,
        "description": challenge.description or f"Deliver the releases of {challenge.name} on schedule.",
        "entrypoint": MODULE_ENTRYPOINT,
        "parameters": {"challenge": challenge.name},
        "tags": ["ppipe"],
        "work_pool": {"name": work_pool or settings.work_pool(), "job_variables": {"env": heartbeat_env()}},
        "schedules": [{"rrule": rrule(challenge), "timezone": "UTC", "active": True}],
    }


def health_config(challenge: Challenge, work_pool: str | None = None) -> dict | None:
    """The health-check deployment as a prefect.yaml entry; None when the challenge takes no endpoints."""
    endpoint = challenge.requests.endpoint if challenge.requests is not None else None
    if endpoint is None:
        return None
    return {
        "name": challenge.name,
        "description": f"Health checks of the live endpoints of {challenge.name}, every "
                       f"{endpoint.health_every.total_seconds():g}s.",
        "entrypoint": HEALTH_MODULE_ENTRYPOINT,
        "parameters": {"challenge": challenge.name},
        "tags": ["ppipe"],
        "work_pool": {"name": work_pool or settings.work_pool(), "job_variables": {"env": heartbeat_env()}},
        "schedules": [{"interval": endpoint.health_every.total_seconds(), "timezone": "UTC", "active": True,
                       "anchor_date": challenge.schedule.start.astimezone(timezone.utc).isoformat()}],
    }


# --- publishing ----------------------------------------------------------------------------


def deploy(challenge: Challenge | str, *, work_pool: str | None = None, ledger: Ledger | None = None) -> UUID:
    """Publish ``challenge`` as a deployment of the dispatch flow; returns the deployment id.

    Registers the challenge in the ledger first if needed (a name is looked up in the ledger,
    then in ``deployments/<name>.yaml``), creates the work pool (type process) if missing,
    the per-provider concurrency limits and the zombie-run automations, and names the flow
    by module path, so a worker anywhere with ppipe installed runs it. Flow runs get
    Prefect heartbeats every ``PPIPE_HEARTBEAT`` seconds (a job variable). A paused,
    cancelled or finished challenge gets a paused schedule. A challenge with live endpoints
    also gets its health-check deployment (see the module's docstring).
    """
    from prefect.schedules import Interval, RRule

    from ppipe.orchestration.automations import ensure_automations
    from ppipe.orchestration.limits import ensure_limits

    ledger = challenges.open_ledger(ledger)
    if isinstance(challenge, str):
        challenge = challenges.ensure_registered(challenge, ledger=ledger)
    elif not ledger.exists(challenge.name):
        challenges.create(challenge, ledger=ledger)
    registered = ledger.get(challenge.name)
    _same_schedule(challenge, registered.challenge())
    pool = ensure_work_pool(work_pool or settings.work_pool())
    config = deployment_config(registered.challenge(), pool)
    active = registered.state == "active"
    _prepare_server(ensure_limits, ensure_automations)
    deployment_id = _apply(config, RRule(config["schedules"][0]["rrule"], timezone="UTC", active=active), active)
    health = health_config(registered.challenge(), pool)
    if health is not None:
        every = health["schedules"][0]
        _apply(health, Interval(timedelta(seconds=every["interval"]), anchor_date=challenge.schedule.start,
                                timezone="UTC", active=active), active)
    return deployment_id


def _apply(config: dict, schedule, active: bool) -> UUID:
    """Publish one prefect.yaml-style entry with ``schedule``; returns the deployment id.
    The flow is loaded as a worker loads it: from the installed package, by module path."""
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import load_flow_from_entrypoint
    from prefect.types.entrypoint import EntrypointType

    entrypoint = config["entrypoint"]
    deployment = RunnerDeployment.from_flow(
        load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False), name=config["name"],
        description=config["description"], parameters=config["parameters"], tags=config["tags"],
        work_pool_name=config["work_pool"]["name"], paused=not active, schedules=[schedule],
        job_variables=config["work_pool"]["job_variables"], entrypoint_type=EntrypointType.MODULE_PATH,
    )
    deployment.entrypoint = entrypoint
    return deployment.apply()


#: API URLs whose limits and automations this process has already made sure of.
_prepared: set[str] = set()


def _prepare_server(*steps) -> None:
    """Run the server-wide steps once per API (and process): deploying many challenges
    should not re-read the same limits and automations each time."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value() or ""
    if url not in _prepared:
        for step in steps:
            step()
        _prepared.add(url)


def _same_schedule(given: Challenge, registered: Challenge) -> None:
    if (given.schedule, given.release_count) != (registered.schedule, registered.release_count):
        raise ConflictError(
            f"challenge {given.name!r}: the ledger holds a different schedule or release count; "
            "delete it ('ppipe delete') to register the new one"
        )


def ensure_work_pool(name: str) -> str:
    """Create the work pool (type process) unless it exists; returns its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            except ObjectAlreadyExists:
                pass
    return name


def set_schedule_active(challenge: str, active: bool) -> bool:
    """Pause or resume the challenge's deployments (dispatch and health checks) and their
    schedules; False when the challenge has no deployment."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = _existing(client, challenge)
        for deployment in found.values():
            for schedule in client.read_deployment_schedules(deployment.id):
                client.update_deployment_schedule(deployment.id, schedule.id, active=active)
            if active:
                client.resume_deployment(deployment.id)
            else:
                client.pause_deployment(deployment.id)
    return bool(found)


def remove(challenge: str) -> list[str]:
    """Delete the challenge's deployments (their past runs stay in Prefect); returns their names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = _existing(client, challenge)
        for deployment in found.values():
            client.delete_deployment(deployment.id)
    return list(found)


def deployment_ids(challenge: str) -> list[UUID]:
    """The ids of the challenge's deployments on the server (dispatch first)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [deployment.id for deployment in _existing(client, challenge).values()]


def _existing(client, challenge: str) -> dict:
    """The challenge's deployments on the server, by ``flow/deployment`` name."""
    from prefect.exceptions import ObjectNotFound

    found = {}
    for name in deployment_names(challenge):
        try:
            found[name] = client.read_deployment_by_name(name)
        except ObjectNotFound:
            continue
    return found


# --- pause, resume, cancel: ledger and schedule together -----------------------------------


def pause(name: str, *, ledger: Ledger | None = None) -> bool:
    """Pause deliveries (ledger) and the schedule; returns whether a deployment was paused."""
    challenges.open_ledger(ledger).set_state(name, "paused", only_from=("active",))
    return set_schedule_active(name, False)


def resume(name: str, *, ledger: Ledger | None = None) -> bool:
    """Resume a paused challenge; returns whether a deployment was resumed."""
    challenges.open_ledger(ledger).set_state(name, "active", only_from=("paused",))
    return set_schedule_active(name, True)


def cancel(name: str, *, ledger: Ledger | None = None) -> bool:
    """Cancel for good (no more deliveries) and pause the schedule; returns whether a deployment was paused."""
    challenges.open_ledger(ledger).set_state(name, "cancelled", only_from=("active", "paused"))
    return set_schedule_active(name, False)


# --- prefect.yaml --------------------------------------------------------------------------

PREFECT_YAML_HEADER = """\
# Generated by `ppipe deploy --write-prefect-yaml` from deployments/*.yaml: do not edit by hand.
# `prefect deploy --all` publishes the same deployments as `ppipe deploy NAME`.
# The flow is named by module path: a worker on any machine with ppipe installed runs it,
# with nothing to pull. (`ppipe deploy` also creates the upload concurrency limits and the
# zombie-run automations; with `prefect deploy`, run `ppipe deploy` once for those.)
"""


def prefect_yaml_text(deployments_dir: Path | None = None, work_pool: str | None = None) -> str:
    """prefect.yaml for every challenge file in ``deployments_dir``, sorted by name."""
    folder = deployments_dir or settings.deployments_dir()
    challenges = sorted((load_challenge(path) for path in folder.glob("*.yaml")), key=lambda c: c.name)
    document = {
        "name": "ppipe",
        "prefect-version": _prefect_version(),
        "build": None,
        "push": None,
        "pull": [],  # the flow is imported from the installed package: nothing to pull
        "deployments": [config for challenge in challenges
                        for config in (deployment_config(challenge, work_pool), health_config(challenge, work_pool))
                        if config is not None],
    }
    return PREFECT_YAML_HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the rrules) as literal blocks, readable in prefect.yaml."""


_Dumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)
)


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def write_prefect_yaml(path: Path | None = None, deployments_dir: Path | None = None) -> Path:
    """Write prefect.yaml (at the project root by default); returns its path."""
    path = path or project_root() / "prefect.yaml"
    path.write_text(prefect_yaml_text(deployments_dir), encoding="utf-8")
    return path


def runs_in_flight(deployment_id: UUID) -> int:
    """How many of the deployment's flow runs are pending or running (picked up, not yet finished)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    busy = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])))
    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(
            flow_run_filter=busy, deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))))


def wait_settled(deployment_id: UUID, timeout: float = 60.0) -> bool:
    """Wait until no run of the deployment is pending or running; False on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while runs_in_flight(deployment_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True
