"""Running the dispatch flow once, here, against the standing Prefect server (``ppipe run``)."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

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
    """Prefect's own console lines at WARNING and above only, in this process.

    A caller that shows progress itself (``ppipe run``'s bars) keeps the terminal readable;
    warnings still show, and every log line still reaches the Prefect server.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def run_here(name: str, *, now: datetime | None = None, release: int | None = None,
             listener: Listener | None = None, quiet: bool = False) -> FlowRun:
    """Run the dispatch flow for ``name`` in this process (PREFECT_API_URL, else the standing
    local server, started if needed); ``listener`` sees each step of the run."""
    with server.connect() as url:
        from ppipe.orchestration.flow import dispatch_challenge

        if quiet:
            quiet_console()
        with delivery.watch(listener) if listener else nullcontext():
            state = dispatch_challenge(challenge=name, now=now, release=release, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    return FlowRun(run_id, f"{server.ui_url(url)}/runs/flow-run/{run_id}", state.is_failed(), state.message or "")
