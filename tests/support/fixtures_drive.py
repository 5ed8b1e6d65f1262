"""Fixtures for the Google Drive destination: a Drive v2-compatible server, keys, a parent folder.

pydrive2 talks to https://www.googleapis.com (its static discovery document says so); the
``drive_routing`` fixture replaces ``GoogleAuth._build_http`` with one that builds an
:class:`httplib2.Http` sending Google's hosts to the test server, so ppipe's own code paths
are the ones that run against real Google.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httplib2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.cases import DestinationCase
from tests.support.drive_server import DriveServer

GOOGLE_HOSTS = ("https://www.googleapis.com", "https://oauth2.googleapis.com")
SERVICE_ACCOUNT = "ppipe-test@ppipe-test.iam.gserviceaccount.com"
PARTICIPANT = "participant@example.com"


class LoopbackHttp(httplib2.Http):
    """An httplib2.Http that sends requests for Google's API and OAuth hosts to ``base_url``."""

    def __init__(self, base_url: str, timeout: float | None = None):
        super().__init__(timeout=timeout, proxy_info=None)
        self.base_url = base_url
        # As pydrive2's own _build_http: 308 is "resume incomplete" for uploads, not a redirect.
        self.redirect_codes = self.redirect_codes - {308}

    def request(self, uri, method="GET", body=None, headers=None, redirections=httplib2.DEFAULT_MAX_REDIRECTS,
                connection_type=None):
        for host in GOOGLE_HOSTS:
            if uri.startswith(host):
                uri = self.base_url + uri[len(host):]
                break
        return super().request(uri, method, body, headers, redirections, connection_type)


def write_key_file(path: Path, token_uri: str, email: str = SERVICE_ACCOUNT) -> tuple[Path, str, object]:
    """Write a service-account key file with a fresh RSA key; returns (path, key id, public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = uuid.uuid4().hex
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "ppipe-test", "private_key_id": key_id,
        "private_key": pem, "client_email": email, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    }))
    return path, key_id, key.public_key()


@pytest.fixture(scope="session")
def drive_server():
    """A Drive v2-compatible server on loopback (see tests/drive_server.py), for the whole session."""
    server = DriveServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def drive_key_file(drive_server, tmp_path_factory) -> Path:
    """A service-account key file the server knows (its public key is registered)."""
    path, key_id, public_key = write_key_file(tmp_path_factory.mktemp("drive") / "sa.json", drive_server.token_uri)
    drive_server.add_service_account(SERVICE_ACCOUNT, key_id, public_key)
    return path


@pytest.fixture
def drive_routing(drive_server, monkeypatch):
    """Make every pydrive2 GoogleAuth reach the test server instead of Google (this test only)."""
    from pydrive2.auth import GoogleAuth

    def build_http(auth):
        return LoopbackHttp(drive_server.url, timeout=auth.http_timeout or 30)

    monkeypatch.setattr(GoogleAuth, "_build_http", build_http)
    for name in ("PPIPE_DRIVE_SERVICE_ACCOUNT_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    return drive_server


@pytest.fixture
def drive_parent(drive_server) -> str:
    """Id of a fresh folder on the server, owned by the organiser, under which challenges go."""
    return drive_server.create_folder(f"ppipe-parent-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def drive_case(drive_routing, drive_key_file, drive_parent) -> DestinationCase:
    """The shared contract test's case: ``make(name)`` builds a DriveFolder under a fresh parent."""
    from ppipe.destinations.drive.client import DriveFolder
    from ppipe.challenge.spec import DriveDestination

    def make(challenge: str) -> DriveFolder:
        spec = DriveDestination(parent=drive_parent, service_account_file=str(drive_key_file))
        return DriveFolder(spec, challenge)

    return DestinationCase(kind="drive", make=make, identity=PARTICIPANT)
