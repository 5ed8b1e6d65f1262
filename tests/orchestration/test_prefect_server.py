"""ppipe's standing server (and the test harness's) takes concurrency slots without "database
is locked" (503s that cost the client a 2 s retry), while other requests write; Prefect's own
server, started the plain way, still answers 503 there (when that test fails, Prefect has fixed it: drop the fix
in ``ppipe.orchestration.prefect_server``). Real servers on SQLite, real HTTP."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter

import httpx
import pytest

from ppipe.orchestration import cluster, server
from tests.support.servers import free_port

LIMIT = "ppipe-test-slots"
ROUNDS = 25


def _slots_beside_writes(api: str) -> Counter:
    """Status codes of 2 x ROUNDS slot acquisitions (each released at once) made while two other
    clients keep writing (logs, flows), as a running flow's task runs and events do."""
    with httpx.Client(base_url=api) as client:
        client.post("/v2/concurrency_limits/", json={"name": LIMIT, "limit": 8})
    outcomes: Counter = Counter()
    writing = threading.Event()
    writing.set()

    def write() -> None:
        with httpx.Client(base_url=api) as client:
            while writing.is_set():
                with contextlib.suppress(httpx.TransportError):  # the plain server drops some
                    client.post("/logs/", json=[{"name": "test", "level": 20, "message": "m",
                                                 "timestamp": "2026-12-06T00:00:00Z"}])
                    client.post("/flows/", json={"name": f"writer-{uuid.uuid4()}"})

    def take_slots() -> None:
        with httpx.Client(base_url=api) as client:
            for _ in range(ROUNDS):
                try:
                    answer = client.post("/v2/concurrency_limits/increment-with-lease", json={
                        "names": [LIMIT], "slots": 1, "mode": "concurrency", "lease_duration": 60})
                    outcomes[answer.status_code] += 1
                    if answer.status_code == 200:
                        client.post("/v2/concurrency_limits/decrement-with-lease",
                                    json={"lease_id": answer.json()["lease_id"]})
                except httpx.TransportError as exc:  # the plain server drops some connections
                    outcomes[type(exc).__name__] += 1

    writers = [threading.Thread(target=write) for _ in range(2)]
    takers = [threading.Thread(target=take_slots) for _ in range(2)]
    for thread in writers + takers:
        thread.start()
    for thread in takers:
        thread.join()
    writing.clear()
    for thread in writers:
        thread.join()
    return outcomes


def test_slots_are_taken_without_503_while_the_server_writes(prefect_server):
    outcomes = _slots_beside_writes(prefect_server)
    assert outcomes == Counter({200: 2 * ROUNDS})


def test_the_test_harness_server_has_the_fix_too(prefect_harness):
    """The flow tests' server (Prefect's harness, started with ppipe's app factory)."""
    from prefect.settings import PREFECT_API_URL

    assert _slots_beside_writes(PREFECT_API_URL.value()) == Counter({200: 2 * ROUNDS})


@pytest.fixture
def plain_prefect_server(tmp_path):
    """``prefect server start`` as Prefect ships it, on SQLite in a temporary home."""
    port = free_port()
    command = ["server", "start", "--host", server.HOST, "--port", str(port)]
    started = cluster._spawn("plain", command, server.server_environment(tmp_path / "prefect"), tmp_path)
    try:
        cluster._wait_healthy(started, server.api_url(port), timeout=120)
        yield server.api_url(port)
    finally:
        cluster.stop_groups([started.process.pid])


def test_prefects_own_server_still_answers_503_there(plain_prefect_server):
    outcomes = _slots_beside_writes(plain_prefect_server)
    assert outcomes[503] > 0, outcomes
