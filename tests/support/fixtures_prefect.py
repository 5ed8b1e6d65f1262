"""Prefect for tests: a real local server (deploy, e2e) and Prefect's test harness (flow tests).

The server is ``prefect server start`` on a free loopback port with a temporary
PREFECT_HOME, started once per session through ppipe.orchestration.server (so that module is exercised
too) and stopped at the end. ``prefect_api`` points Prefect, in this process and in the
processes it starts, at that server for one test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ppipe.settings import environment
from tests.support.servers import free_port


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """API URL of a local Prefect server for this session."""
    from ppipe.orchestration import server

    state = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    with environment(PPIPE_HOME=str(state)):
        status = server.start(port, home=state / "prefect-home", timeout=120)
    yield status.url
    with environment(PPIPE_HOME=str(state)):
        server.stop(port)


@pytest.fixture
def prefect_api(prefect_server, monkeypatch):
    """Prefect pointed at the session's server for this test; yields the API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        yield prefect_server


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness (a temporary database, its API in a subprocess), once per session.
    Its server gets the SQLite fix ppipe's own server runs with (ppipe.orchestration.prefect_server):
    without it, an upload task's slot acquisitions got 503s and 2-s retries beside the run's
    writes, until the task timed out."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SubprocessASGIServer, "_run_uvicorn_command", _harness_server_with_the_fix)
        with prefect_test_harness(server_startup_timeout=120):
            yield


def _harness_server_with_the_fix(server) -> subprocess.Popen:
    """Prefect 3.8's ``SubprocessASGIServer._run_uvicorn_command``, serving ppipe's app factory."""
    from prefect.settings import get_current_settings

    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "ppipe.orchestration.prefect_server:create_app",
         "--host", "127.0.0.1", "--port", str(server.port), "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
             **get_current_settings().to_environment_variables(exclude_unset=True)})


@pytest.fixture(scope="session", autouse=True)
def on_demand_prefect_port():
    """A Prefect server ppipe starts on demand (a test running ``ppipe run`` without
    ``prefect_api``) listens on a port of this session's own, never on a developer's 4200 (or a
    stale server there), and is stopped when the session ends instead of outliving it."""
    port = str(free_port())
    with environment(PPIPE_PREFECT_PORT=port):
        yield port
    for pid in _listeners(port):
        os.kill(pid, signal.SIGTERM)


def _listeners(port: str) -> list[int]:
    """Pids of ``prefect server start ... --port PORT`` processes, as ppipe starts them (through
    ``ppipe.orchestration.prefect_server``) or not (read from /proc: Linux only)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        prefect = any(w.endswith("prefect") or w == "ppipe.orchestration.prefect_server" for w in words)
        if prefect and "server" in words and port in words:
            found.append(int(cmdline.parent.name))
    return found
