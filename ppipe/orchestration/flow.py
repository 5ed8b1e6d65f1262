"""The Prefect flow that delivers a challenge's due releases: a thin layer over ppipe.delivery.

Each I/O step is a small task (named after the release it works on, so the UI reads like
the plan) with the challenge's retries, exponential backoff and time limit; the ledger work
(claim, record) stays in ppipe.delivery, so it is the same code with or without Prefect.
Credentials are never parameters: the destination specs name a block, a profile or nothing
(the environment), and the flow's only parameters are the challenge name, a time and a release.
"""

from __future__ import annotations

from dataclasses import replace
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run, task_run
from prefect.tasks import exponential_backoff

from ppipe import delivery
from ppipe.delivery import challenges
from ppipe.destinations import Destination
from ppipe.errors import PpipeError, is_transient
from ppipe.ledger import Ledger, ReleaseRecord
from ppipe.challenge.spec import Challenge
from ppipe.challenge.planning import PlannedRelease
from ppipe.orchestration.deploy import FLOW_NAME
from ppipe.orchestration.limits import ensure_limits, upload_slot
from ppipe.orchestration.standby import standby_run



class OverrideRefused(PpipeError):
    """A deployment's run was given ``now`` or ``release``."""


class DeliveryFailed(PpipeError):
    """Some releases (or the manifest) could not be delivered in this run; the ledger says which."""


# --- tasks: one I/O step each ----------------------------------------------------------------


@task(name="stage", task_run_name="stage {challenge.name}", cache_policy=NO_CACHE)
def stage_source(challenge: Challenge, source_sha256: str | None = None):
    """This machine's staged source (StagedSource), checked against the recorded sha256."""
    return delivery.stage_source(challenge, source_sha256)


@task(name="save", task_run_name="save {release.name}", cache_policy=NO_CACHE)
def save_release(challenge: Challenge, staged, release: PlannedRelease):
    """The release file written to the local audit folder (ReleaseFile)."""
    return delivery.save_release(challenge, staged, release)


@task(name="prepare", task_run_name="prepare {destination.uri}", cache_policy=NO_CACHE)
def prepare_destination(destination: Destination) -> None:
    delivery.prepare(destination)


@task(name="upload", task_run_name="upload {release} -> {destination.uri}", cache_policy=NO_CACHE)
def upload_release(destination: Destination, file, release: str) -> delivery.Uploaded:
    """Where the file now is, whether it was already there, and this task run's id and attempts.
    Holds a slot of the provider's global concurrency limit (``ppipe-upload-<kind>``) meanwhile."""
    with upload_slot(destination.kind):
        uploaded = delivery.upload(destination, file, release)
    return replace(uploaded, task_run_id=task_run.get_id(), attempts=task_run.get_run_count())


@task(name="deliver", task_run_name="deliver {row.name} -> {row.destination}", cache_policy=NO_CACHE)
def deliver_row(deliver: Callable[[ReleaseRecord], Any], row: ReleaseRecord):
    """One (release, destination): its upload and grant tasks, beside the release's other rows."""
    return deliver(row)


def submit_each(deliver: Callable[[ReleaseRecord], Any], rows: list[ReleaseRecord]) -> list:
    """The rows' deliveries submitted to the flow's task runner at once; outcomes in row order.
    A single row has nothing to overlap with and runs in the flow's own thread."""
    if len(rows) == 1:
        return [deliver(rows[0])]
    futures = [deliver_row.submit(deliver, row) for row in rows]
    return [future.result() for future in futures]


@task(name="grant", task_run_name="grant access -> {destination.uri}", cache_policy=NO_CACHE)
def apply_grants(ledger: Ledger, challenge: Challenge, destination: Destination) -> list:
    """The grants (and revocations) applied now."""
    applied = delivery.apply_grants(ledger, challenge, destination)
    for item in applied:  # a failed grant is reported by the run, and never fails a delivery
        (get_run_logger().warning if item.failed else get_run_logger().info)("%s", item.line())
    return applied


@task(name="manifest", task_run_name="upload manifest.json -> {destination.uri}", cache_policy=NO_CACHE)
def publish_manifest(destination: Destination, manifest: Path) -> str:
    return delivery.publish_manifest(destination, manifest)


def retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry only a failure another attempt may fix (a timeout, a
    5xx, throttling, a refused connection: ppipe.errors.is_transient). A terminal one (refused
    credentials, a name taken, a missing bucket) fails its task on the first attempt."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # noqa: BLE001 - the failure being judged
            exc = raised
    return exc is not None and is_transient(exc)


def task_steps(challenge: Challenge) -> delivery.Steps:
    """The delivery steps as tasks with the challenge's retry policy (only I/O tasks retry, and
    only transient failures)."""
    policy = challenge.delivery
    timeout = policy.timeout.total_seconds()
    retrying = {
        "retries": policy.retries,
        "retry_delay_seconds": exponential_backoff(policy.retry_delay.total_seconds())(policy.retries),
        "retry_condition_fn": retry_transient,
        "timeout_seconds": timeout,
    }
    return delivery.Steps(
        stage=stage_source.with_options(**retrying),
        save=save_release.with_options(timeout_seconds=timeout),
        prepare=prepare_destination.with_options(**retrying),
        upload=upload_release.with_options(**retrying),
        grant=apply_grants.with_options(**retrying),
        manifest=publish_manifest.with_options(**retrying),
        fan_out=submit_each,
    )


# --- the flow ------------------------------------------------------------------------------


@flow(name=FLOW_NAME, log_prints=False)
def dispatch_challenge(challenge: str, now: datetime | None = None, release: int | None = None) -> dict:
    """Deliver every release of ``challenge`` that is due (all overdue ones, oldest first).

    ``now`` replaces the current time (for tests and catch-up checks); ``release`` delivers
    that one release whenever it is scheduled. Returns a summary; raises DeliveryFailed
    (the run ends Failed) after recording and publishing, when anything failed.
    """
    logger = get_run_logger()
    _no_overrides_in_deployment_runs(now, release)
    ledger = Ledger()
    spec = challenges.ensure_registered(challenge, ledger=ledger)  # refuses a name that is not a slug
    if reason := delivery.skip_reason(ledger, challenge):
        logger.info("%s; skipping this run", reason)
        return {"challenge": challenge, "skipped": reason}

    if now is None:
        _wait_for_slot()
    run_id = str(flow_run.get_id() or "")
    ensure_limits(destination.kind for destination in spec.destinations)  # deploy makes them; ppipe run may come first
    run = delivery.Dispatch(ledger, spec, owner=run_id or None, now=now, release=release,
                            steps=task_steps(spec), flow_run_id=run_id or None, listener=_log_step,
                            take_over=True)
    with standby_run():  # if this machine dies, another worker takes over a lease later
        report = run.run()
    participant_side(ledger, spec, report)

    publish_artifacts(ledger, report)
    if report.finished:
        logger.info("%s: every release is delivered; the challenge is finished", challenge)
        _stop_schedule(challenge)
    if not report.ok:
        raise DeliveryFailed(delivery.failure_line(report))
    return delivery.summary(report)


def _no_overrides_in_deployment_runs(now: datetime | None, release: int | None) -> None:
    """A deployment's runs follow its schedule: anyone who may start a run through Prefect's API
    must not move the clock or pick a future release (they would release data early). Only
    ``ppipe run``, which runs the flow here without a deployment, may set them."""
    given = [name for name, value in (("now", now), ("release", release)) if value is not None]
    if given and deployment.id:
        raise OverrideRefused(
            f"parameter {' and '.join(given)} is refused in a deployment's run: a deployment delivers on its "
            "schedule; use 'ppipe run NAME --now/--release' on the organiser's machine instead"
        )


def publish_artifacts(ledger: Ledger, report: delivery.Report) -> None:
    """A table of every release with its status, and a markdown summary of this run."""
    name = report.challenge
    create_table_artifact(
        key=f"ppipe-{name}-releases", table=delivery.release_table(ledger, name),
        description=f"Releases of {name} and where each one stands",
    )
    create_markdown_artifact(
        key=f"ppipe-{name}-summary", markdown=delivery.summary_markdown(ledger, report),
        description=f"What this run of {name} delivered",
    )


def _wait_for_slot(limit: float = 300.0) -> None:
    """A worker starts scheduled runs a little early (prefetch); wait for the run's slot so a
    release never goes out before its time."""
    scheduled = flow_run.get_scheduled_start_time()
    delay = (scheduled - datetime.now(timezone.utc)).total_seconds() if scheduled else 0
    if 0 < delay <= limit:
        get_run_logger().info("waiting %.1f s for the scheduled time %s", delay, scheduled.isoformat())
        time.sleep(delay)


def _log_step(release: str, step: str, detail: str) -> None:
    """Plain-words progress in the run's log (never a credential: URIs and names only)."""
    logger = get_run_logger()
    if step == "delivered":
        logger.info("%s delivered to %s", release, detail)
    elif step == "failed":
        logger.warning("%s not delivered to %s", release, detail)
    elif step == "claim":
        logger.info("%s: claimed %s", release, detail)
    elif step in ("due", "wait"):
        logger.info("%s", detail)


def _stop_schedule(challenge: str) -> None:
    """Pause the finished challenge's deployment schedule (no deployment: nothing to do)."""
    from ppipe.orchestration.deploy import set_schedule_active

    if set_schedule_active(challenge, False):
        get_run_logger().info("%s: deployment schedule paused", challenge)


# --- the participant side: requests, judging, leaderboard ----------------------------------------


@task(name="open requests", task_run_name="open requests {release}", cache_policy=NO_CACHE)
def open_requests(ledger: Ledger, challenge: str, index: int, release: str) -> dict:
    """Announce a delivered release to participants and open their validation/prediction requests."""
    from ppipe.participants.requests import open_release

    opened = open_release(ledger, challenge, index)
    return {"release": release, "validation": opened.validation, "prediction": opened.prediction,
            "predict_file": opened.batch, "problems": opened.problems}


@task(name="judge", task_run_name="judge {challenge}", cache_policy=NO_CACHE)
def judge_round(ledger: Ledger, challenge: str) -> str:
    """Mark missed requests and score predictions whose labels are out."""
    from ppipe.participants.rounds import judge

    return judge(ledger, challenge).line()


@task(name="endpoint round", task_run_name="endpoint round predict_{index}", cache_policy=NO_CACHE)
def endpoint_round(ledger: Ledger, challenge: str, index: int) -> list[str]:
    """Send prediction batch ``predict_{index}`` to every registered live endpoint."""
    from ppipe.endpoints import side

    return side.prediction_round(ledger, challenge, index)


@task(name="endpoints", task_run_name="endpoints {challenge}", cache_policy=NO_CACHE)
def endpoint_checks(ledger: Ledger, challenge: str) -> str:
    """Score endpoint rounds whose labels are out; a health check of every endpoint when one is due."""
    from ppipe.endpoints import side

    scored = side.score_due(ledger, challenge)
    checked = side.health_if_due(ledger, challenge)
    return f"{challenge}: {len(scored)} endpoint round(s) scored, {len(checked)} endpoint(s) health-checked"


def participant_side(ledger: Ledger, spec: Challenge, report: delivery.Report) -> None:
    """After delivering: open requests per newly delivered release, judge, publish the leaderboard.
    What fails is added to the run's problems (the run then ends Failed, naming it)."""
    if spec.requests is None:
        return
    from ppipe.participants.requests import unannounced

    logger = get_run_logger()
    try:
        for index in unannounced(ledger, spec.name):
            opened = open_requests(ledger, spec.name, index, spec.release_name(index))
            report.problems.extend(opened["problems"])
            logger.info("%s: %d validation and %d prediction request(s) opened", opened["release"],
                        opened["validation"], opened["prediction"])
            if spec.requests.endpoint is not None and opened["predict_file"]:
                for line in endpoint_round(ledger, spec.name, index + 1):
                    logger.info("%s", line)
        logger.info("%s", judge_round(ledger, spec.name))
        if spec.requests.endpoint is not None:
            logger.info("%s", endpoint_checks(ledger, spec.name))
        publish_leaderboard(ledger, spec)
    except Exception as exc:  # noqa: BLE001 - reported as the run's failure, in one line
        report.problems.append(f"participants: {delivery.error_text(exc)}")


def publish_leaderboard(ledger: Ledger, spec: Challenge) -> None:
    """The leaderboard as a table artifact (with the endpoint columns when the challenge takes endpoints)."""
    from ppipe.participants import leaderboard

    if spec.requests is not None and spec.requests.endpoint is not None:
        from ppipe.endpoints.http import install

        install()  # the leaderboard's endpoint columns
    board = leaderboard.build(ledger, spec.name)
    create_table_artifact(key=f"ppipe-{spec.name}-leaderboard", table=board.rows or [{"participant": "(none yet)"}],
                          description=f"Leaderboard of {spec.name}: " + ", ".join(c.title for c in board.columns))
