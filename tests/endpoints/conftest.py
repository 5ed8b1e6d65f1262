"""Participants' model services (tests/endpoints/services.py) as one real uvicorn process per session."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ppipe.endpoints.guard import Policy
from ppipe.endpoints.probe import CallSettings

SECRET = "ppwh_test-secret-known-to-the-services"
ROOT = Path(__file__).resolve().parents[2]
#: What the tests allow: loopback over plain http (and https to localhost for the TLS service).
LOOPBACK = Policy(allow_http=True, allow_private=True)


def start_services(*args: str, timeout: float = 60) -> tuple[subprocess.Popen, dict[str, int]]:
    """Start the services process; returns it and {name: port} once every server listens."""
    process = subprocess.Popen([sys.executable, "-m", "tests.endpoints.services", "--secret", SECRET, *args],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0].strip():
        stop_services(process)
        raise RuntimeError("the participant services did not start")
    return process, json.loads(line[0])


def stop_services(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def tls_ca():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="session")
def services(tls_ca, tmp_path_factory):
    """{name: base URL} of every service; ``tls`` is https://localhost:PORT with a trustme certificate."""
    folder = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    process, ports = start_services("--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem"))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    urls["tls"] = f"https://localhost:{ports['tls']}"
    yield urls
    stop_services(process)


@pytest.fixture(scope="session")
def trusting_context(tls_ca) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def loopback_settings(trusting_context) -> CallSettings:
    return CallSettings(timeout=1.0, policy=LOOPBACK, label="label", ssl_context=trusting_context)


def sample_rows(n: int = 10) -> list[dict]:
    return [{"row_id": i, "x": i / n, "city": f"c{i % 3}", "label": int(i / n > 0.5)} for i in range(n)]
