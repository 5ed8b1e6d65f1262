"""The health-check flow: one call to each live endpoint of a challenge, on a schedule of its own.

``ppipe deploy`` gives a challenge with ``requests.endpoint`` a deployment of this flow with
an interval schedule of ``health_every`` (see :mod:`ppipe.orchestration.deploy`), so uptime
is measured every few minutes even when releases come daily. The check itself is the one the
dispatch run makes (:func:`ppipe.endpoints.side.health_if_due`), recorded the same way; the
run then refreshes the leaderboard artifact. A challenge that is gone, paused, cancelled or
finished gets no check (its schedule is paused with it; a run already queued does nothing).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ppipe.endpoints import side
from ppipe.ledger import Ledger
from ppipe.orchestration.deploy import HEALTH_FLOW_NAME
from ppipe.orchestration.flow import publish_leaderboard

#: A scheduled run checks when the last check is at least half an interval old: runs start a
#: little off their interval, and late runs queued behind a stopped worker must not pile up calls.
EARLY = 0.5


@task(name="health check", task_run_name="health check {challenge}", cache_policy=NO_CACHE)
def health_check(ledger: Ledger, challenge: str) -> dict[str, str]:
    """One call to every endpoint (when due), recorded as ``health``; participant -> outcome."""
    logger = get_run_logger()
    checked = side.health_if_due(ledger, challenge, early=EARLY)
    for participant, result in checked:
        logger.info("%s: %s (%s ms)", participant, result.outcome, _ms(result.total_ms))
    return {participant: result.outcome for participant, result in checked}


@flow(name=HEALTH_FLOW_NAME, log_prints=False)
def check_endpoints(challenge: str) -> dict:
    """Health-check every registered endpoint of ``challenge``; returns participant -> outcome."""
    logger = get_run_logger()
    ledger = Ledger()
    if reason := _skip_reason(ledger, challenge):
        logger.info("%s; no health check", reason)
        return {"challenge": challenge, "skipped": reason}
    checked = health_check(ledger, challenge)
    publish_leaderboard(ledger, ledger.challenge(challenge))
    return {"challenge": challenge, "checked": checked}


def _skip_reason(ledger: Ledger, challenge: str) -> str | None:
    if not ledger.exists(challenge):
        return f"challenge {challenge} is not in the ledger"
    state = ledger.get(challenge).state
    return None if state == "active" else f"challenge {challenge} is {state}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
