"""Prefect for tests: a real local server (deploy, e2e) and Prefect's test harness (flow tests).

The server is ``prefect server start`` on a free loopback port with a temporary
PREFECT_HOME, started once per session through ppipe.orchestration.server (so that module is exercised
too) and stopped at the end. ``prefect_api`` points Prefect, in this process and in the
processes it starts, at that server for one test.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from tests.support.servers import free_port


@contextmanager
def _env(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """API URL of a local Prefect server for this session."""
    from ppipe.orchestration import server

    state = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    with _env(PPIPE_HOME=str(state)):
        status = server.start(port, home=state / "prefect-home", timeout=120)
    yield status.url
    with _env(PPIPE_HOME=str(state)):
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
    """Prefect's test harness (a temporary database and API in this process), once per session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
