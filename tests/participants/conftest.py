"""Fixtures of the participant side: challenges with requests, a real `ppipe api` server per ledger backend.

The API server is a real uvicorn process (``ppipe api``) on a free loopback port, started
once per session and backend (SQLite file, PostgreSQL database); tests that talk to it use
the server's PPIPE_HOME and ledger, and name their challenges uniquely.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import challenge_data, write_csv
from tests.support.servers import free_port

REQUESTS = {"validation": {"rows": 8, "deadline": "1h", "attempts": 3},
            "prediction": {"label": "label", "metric": "accuracy"}}


def make_challenge(tmp_path: Path, ledger, *, name: str | None = None, n_rows: int = 300, every: str = "1h",
                   ago: float = 5, source: Path | None = None, output: dict | None = None, requests: dict | None = None, **overrides):
    """A challenge registered in ``ledger`` whose release 0 was due ``ago`` seconds ago, one more every ``every``."""
    from ppipe import api
    from ppipe.challenge.specfile import parse_challenge

    name = name or f"ch-{uuid.uuid4().hex[:8]}"
    source = source or write_csv(tmp_path / f"{name}.csv", n_rows)
    start = datetime.now(timezone.utc) - timedelta(seconds=ago)
    data = challenge_data(
        tmp_path, name=name, source=str(source), schedule={"start": start.isoformat(), "every": every},
        output=output or {"format": "parquet", "row_id": True, "shuffle": True, "seed": 5},
        requests=REQUESTS if requests is None else requests, **overrides,
    )
    challenge = parse_challenge(data)
    api.create(challenge, ledger=ledger)
    return challenge


def deliver(ledger, name: str, release: int | None = None):
    """Deliver what is due (or release ``release``) and run a judging round, as the flow does."""
    from ppipe import delivery
    from ppipe.participants import service

    report = delivery.dispatch(ledger, name, release=release)
    assert report is not None and report.ok, report and report.failed
    return service.judge(name, ledger=ledger)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api_server(request, tmp_path_factory):
    """A running `ppipe api` (real uvicorn) on loopback: (base URL, PPIPE_HOME, database URL)."""
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    url = f"sqlite:///{home / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_database")
    port = free_port()
    env = {**os.environ, "PPIPE_HOME": str(home), "PPIPE_DATABASE_URL": url}
    executable = shutil.which("ppipe", path=str(Path(sys.executable).parent)) or "ppipe"
    log = open(home / "api.log", "wb")
    process = subprocess.Popen([executable, "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"ppipe api did not start: {(home / 'api.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield base, home, url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    assert "Traceback" not in (home / "api.log").read_text(), (home / "api.log").read_text()[-3000:]


@pytest.fixture
def api(api_server, monkeypatch):
    """The server's URL, with this test's PPIPE_HOME and ledger set to the server's; yields (URL, Ledger)."""
    from ppipe.ledger import Ledger

    base, home, url = api_server
    monkeypatch.setenv("PPIPE_HOME", str(home))
    monkeypatch.setenv("PPIPE_DATABASE_URL", url)
    ledger = Ledger(url)
    yield base, ledger
    ledger.engine.dispose()


def client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
