"""Running the dispatch flow once, here, against the standing Prefect server (``ppipe run``)."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ppipe import delivery
from ppipe.delivery.run import Listener
from ppipe.orchestration import server


@dataclass(frozen=True)
class FlowRun:
    """A finished flow run: its id, where the UI shows it, and the message of a failed run."""

    id: str
    url: str
    failed: bool
    message: str


def quiet_console() -> None:
    """No Prefect console lines in this process.

    A caller that shows progress itself (``ppipe run``'s bars) and ends a failure in one line
    keeps the terminal readable: a failed flow run logs a traceback at ERROR. Every log line
    still reaches the Prefect server, where the run's page shows it.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.CRITICAL + 1)


def run_here(name: str, *, now: datetime | None = None, release: int | None = None,
             listener: Listener | None = None, quiet: bool = False,
             on_start: Callable[[str], None] | None = None) -> FlowRun:
    """Run the dispatch flow for ``name`` in this process (PREFECT_API_URL, else the standing
    local server, started if needed and then told to ``on_start``); ``listener`` sees each step."""
    with server.connect(on_start) as url, _without_heartbeats():
        from ppipe.orchestration.flow import dispatch_challenge

        if quiet:
            quiet_console()
        with delivery.watch(listener) if listener else nullcontext():
            state = dispatch_challenge(challenge=name, now=now, release=release, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    return FlowRun(run_id, f"{server.ui_url(url)}/runs/flow-run/{run_id}", state.is_failed(), _failure(state))


def _without_heartbeats():
    """No flow-run heartbeats for a run here: they serve the zombie automations, which watch only
    deployments' runs (tagged ``ppipe``), and the run would end by waiting up to a second for
    Prefect's heartbeat thread, which sleeps in one-second steps."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _failure(state) -> str:
    """A failed run's reason in one line: ppipe's own message, without Prefect's prefix."""
    if not state.is_failed():
        return state.message or ""
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException):
        return delivery.error_text(exc)
    return (state.message or "the run failed").splitlines()[0]
