"""Reliability guarantee 6: credentials never appear in the ledger, logs, Prefect parameters,
artifacts or error messages.

Real challenges run end to end with recognisable fake credentials from every place ppipe takes
them (environment, AWS profile, Prefect block, Drive service-account key file) plus the
secret access key an ``iam-user-policy`` grant creates, a secret-looking value in the
environment and a password in the ledger URL; then everything ppipe wrote and printed is
searched for every secret (raw, base64 at each alignment, URL- and JSON-encoded, and with
whitespace squeezed out of text so a wrapped line cannot hide one):

- every file under PPIPE_HOME except the 0600 credentials file the grant writes (the one
  place a created key may be; its mode is checked and it is the files search's positive control);
- the ledger: SQLite's bytes and its ``iterdump`` text, or every PostgreSQL table as text;
- captured stdout/stderr (file-descriptor level), the CLI's output and every error message;
- every log record at DEBUG, from every logger (ppipe, prefect, botocore, s3fs, google, ...);
- what Prefect stored: flow-run parameters, states, task runs, logs and artifacts read back
  through the client, the Prefect database's bytes and result storage written meanwhile.

Each search can fail: a canary string is put on purpose in each kind of place (a challenge
description in the ledger, a log record, stdout/stderr, a Prefect flow run's parameter, log
and artifact) and must be found, and the grant's secret must be found in its credentials file.

Secrets also include what is derived at run time: the Drive access tokens the server issued and
the signed JWT assertions made from the Drive keys (recorded by wrapping oauth2client).

Access key *ids* are held to the same rule with two narrow exceptions: AWS's own wire formats
in botocore's DEBUG records and their console rendering (``Credential=<key id>/`` of the signed
request's Authorization header, ``<AccessKeyId>`` in IAM's ListAccessKeys response), visible only
when someone turns botocore's DEBUG logging on; and the Prefect block's key id in Prefect's own
database (its block-document events carry the block's plain fields; the secret field is masked).
Records of the test servers' own loggers (moto, werkzeug) are not ppipe's output and are left out.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sqlite3
import stat
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

import flows.dispatch  # noqa: F401 - Prefect sets up logging on import: now, not under a test's capfd
from tests.support.fixtures_drive import PARTICIPANT
from tests.support.helpers import write_csv
from tests.support.servers import free_port, moto_process, post

REGION = "eu-west-1"
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)  # every release of the challenges below is due
FAST = {"retries": 0, "retry_delay": "0.1s", "timeout": "60s"}
BLOCK_NAME = "ppipe-secrets-test"
PROFILE = "ppipe-secrets"
DRIVE_ACCOUNT = "ppipe-secrets@ppipe-test.iam.gserviceaccount.com"

ENV_KEY_ID = "AKIAPPIPESECRET00001"
ENV_SECRET = "ppipe-secret-DO-NOT-LEAK-env-aws-0001"
BLOCK_KEY_ID = "AKIAPPIPESECRET00002"
BLOCK_SECRET = "ppipe-secret-DO-NOT-LEAK-block-aws-0002"
PROFILE_KEY_ID = "AKIAPPIPESECRET00003"
PROFILE_SECRET = "ppipe-secret-DO-NOT-LEAK-profile-aws-0003"
ENV_TOKEN = "ppipe-secret-DO-NOT-LEAK-env-token-0004"
PG_PASSWORD = "ppipe-secret-DO-NOT-LEAK-pg-0005"
BAD_KEY_MATERIAL = "ppipe-secret-DO-NOT-LEAK-bad-drive-key-0006"

#: Loggers of the test servers running in this process: their records are not ppipe's output.
SERVER_LOGGERS = ("moto", "werkzeug", "tests.support.drive_server", "gcp_storage_emulator")
#: Third-party loggers whose DEBUG records show a signed request (key id in ``Credential=``).
WIRE_LOGGERS = ("botocore", "aiobotocore", "s3fs", "urllib3", "boto3", "s3transfer")
#: AWS's own wire formats carrying an access key id, shown by botocore's DEBUG records (of the signed
#: request's Authorization header, and of IAM responses listing a user's keys).
WIRE_FORMATS = ("Credential={}/", "<AccessKeyId>{}</AccessKeyId>")
VERBOSE = ("ppipe", "flows", "prefect", "botocore", "boto3", "s3transfer", "s3fs", "aiobotocore", "fsspec",
           "urllib3", "httpx", "httpcore", "googleapiclient", "oauth2client", "pydrive2", "google", "httplib2")

pytestmark = pytest.mark.slow  # Prefect's test harness, a moto server of its own


# --- what is secret ------------------------------------------------------------------------


@dataclass
class Secret:
    label: str
    value: str
    kind: str = "secret"  # "secret" (never anywhere) | "id" (an access key id: see the module doc)


def encodings(value: str) -> dict[str, bytes]:
    """``value`` as it could be written: raw, JSON, URL-encoded, and base64/base64url at every
    alignment (only the characters that do not depend on the neighbouring bytes)."""
    raw = value.encode()
    forms = {"raw": raw, "json": json.dumps(value)[1:-1].encode(),
             "url": urllib.parse.quote(value, safe="").encode(), "url+": urllib.parse.quote_plus(value).encode()}
    for offset in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * offset + raw)
            forms[f"{name}@{offset}"] = text[4 if offset else 0: len(text) - 4]
    unique: dict[bytes, str] = {}
    for name, form in forms.items():
        if len(form) >= 12:
            unique.setdefault(form, name)
    return {name: form for form, name in unique.items()}


@dataclass
class Corpus:
    """Everything ppipe wrote or printed, as named byte strings; ``log`` items may hold wire records."""

    items: dict[str, bytes] = field(default_factory=dict)
    wire: set[str] = field(default_factory=set)  # items that are third-party DEBUG records

    def add(self, name: str, data: bytes | str | None, *, wire: bool = False) -> None:
        if data is None:
            return
        data = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
        while name in self.items:
            name += "'"
        self.items[name] = data
        if wire:
            self.wire.add(name)

    def where(self, value: str, *, names: list[str] | None = None) -> list[str]:
        """``<item> (<encoding>)`` for each item holding ``value`` in some encoding."""
        forms = encodings(value)
        found = []
        for name in names if names is not None else list(self.items):
            data = self.items[name]
            squeezed = re.sub(rb"\s+|\xe2\x94\x82", b"", data)  # wrapped lines, rich's table borders
            hits = [(form_name, form) for form_name, form in forms.items() if form in data or form in squeezed]
            if hits:
                form = hits[0][1]
                text = data if form in data else squeezed
                at = text.index(form)
                context = text[max(0, at - 80): at + len(form) + 40].decode("utf-8", "replace")
                found.append(f"{name} ({', '.join(h for h, _ in hits)}): ...{context!r}...")
        return found

    def leaks(self, secrets: list[Secret], allowed: dict[str, set[str]] | None = None) -> list[str]:
        """One line per (secret, place) that is not allowed."""
        allowed = allowed or {}
        lines = []
        for secret in secrets:
            for name in self.items:
                if name in allowed.get(secret.label, set()):
                    continue
                data = self.items[name]
                if secret.kind == "id" and name in self.wire:
                    for pattern in WIRE_FORMATS:
                        data = data.replace(pattern.format(secret.value).encode(), pattern.format("<key id>").encode())
                probe = Corpus({name: data})
                for hit in probe.where(secret.value):
                    lines.append(f"{secret.label} {secret.value[:24]!r}... found in {hit}")
        return lines


def check(corpus: Corpus, secrets: list[Secret], allowed: dict[str, set[str]] | None = None) -> None:
    leaks = corpus.leaks(secrets, allowed)
    assert not leaks, "credentials leaked:\n" + "\n".join(leaks)


# --- where to look -------------------------------------------------------------------------


class Recorder(logging.Handler):
    """Every log record (message, arguments applied, exception and stack text), as emitted."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep what there is
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        self.records.append((record.name, text))

    def add_to(self, corpus: Corpus) -> int:
        ours, wire = [], []
        for name, text in self.records:
            if name.startswith(SERVER_LOGGERS):
                continue
            (wire if name.startswith(WIRE_LOGGERS) else ours).append(f"{name}: {text}")
        corpus.add("log records (ppipe, prefect, google, ...)", "\n".join(ours))
        corpus.add("log records (botocore, s3fs, urllib3)", "\n".join(wire), wire=True)
        return len(ours) + len(wire)


@pytest.fixture
def every_log(caplog, monkeypatch):
    """Every record any logger emits at DEBUG and above, whatever handlers Prefect's logging setup
    installs or removes meanwhile (it replaces the root logger's handlers when flows are imported)."""
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    handle = logging.Logger.callHandlers

    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        recorder.emit(record)
        handle(logger, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", call_handlers)
    saved_levels = {name: logging.getLogger(name).level for name in VERBOSE}
    for name in VERBOSE:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield recorder
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


def add_files(corpus: Corpus, home: Path, allowed: set[Path]) -> list[Path]:
    """Every file under ``home`` (allowed ones too: they are the positive control); returns them."""
    files = sorted(p for p in home.rglob("*") if p.is_file())
    for path in files:
        corpus.add(f"file {path.relative_to(home)}", path.read_bytes())
    for path in allowed:
        assert path in files, f"{path} was not written"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is not 0600"
    return files


def add_sqlite(corpus: Corpus, home: Path) -> None:
    database = home / "ledger.db"
    assert database.is_file()
    with sqlite3.connect(database) as conn:
        corpus.add("ledger (SQLite iterdump)", "\n".join(conn.iterdump()))


def add_postgres(corpus: Corpus, url: str) -> int:
    """Every row of every table of the ledger database, as text."""
    import psycopg

    rows = 0
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert {"challenges", "releases", "grants", "grant_applications"} <= set(tables)
        for table in tables:
            texts = [r[0] for r in conn.execute(f'SELECT t::text FROM "{table}" t')]
            rows += len(texts)
            corpus.add(f"ledger (PostgreSQL table {table})", "\n".join(texts))
    return rows


def add_prefect(corpus: Corpus, flow_names: set[str], since: float) -> dict[str, int]:
    """What Prefect stored for the flow runs of ``flow_names``: parameters, states, task runs,
    logs and artifacts through the client; then the harness database's bytes and result storage
    files written since ``since``. Returns how many of each were read."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter, ArtifactFilterFlowRunId, FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId,
        LogFilter, LogFilterFlowRunId,
    )
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_SERVER_DATABASE_CONNECTION_URL

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)
    counts = {"flow runs": 0, "task runs": 0, "logs": 0, "artifacts": 0}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(flow_names))))
        runs = [run for run in runs if run.created and run.created.timestamp() >= since]  # this test's runs
        for run in runs:
            counts["flow runs"] += 1
            tag = f"prefect flow run {run.name}"
            corpus.add(f"{tag} parameters", json.dumps(run.parameters, default=str))
            corpus.add(f"{tag} (whole record, state)", run.model_dump_json())
            for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))):
                counts["task runs"] += 1
                corpus.add(f"{tag} task run {task_run.name}", task_run.model_dump_json())
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            counts["logs"] += len(logs)
            corpus.add(f"{tag} logs", "\n".join(f"{log.name}: {log.message}" for log in logs))
            for artifact in client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))):
                counts["artifacts"] += 1
                corpus.add(f"{tag} artifact {artifact.key}", artifact.model_dump_json())
    database = PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    if database.startswith("sqlite"):
        path = Path(database.split("///", 1)[1])
        for candidate in (path, path.with_name(path.name + "-wal")):
            if candidate.is_file():
                corpus.add(f"Prefect database {candidate.name}", candidate.read_bytes())
                counts["database files"] = counts.get("database files", 0) + 1
    storage = Path(PREFECT_LOCAL_STORAGE_PATH.value())
    if storage.is_dir():
        for path in storage.rglob("*"):
            if path.is_file() and path.stat().st_mtime >= since:
                corpus.add(f"Prefect result storage {path.name}", path.read_bytes())
    return counts


# --- servers and keys ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server():
    """A moto server of our own (subprocess) with authentication on and no IAM users: every key is refused."""
    with moto_process() as endpoint:
        post(f"{endpoint}/moto-api/reset-auth", b"0")
        yield endpoint


def write_key(path: Path, token_uri: str, key_id: str, email: str = DRIVE_ACCOUNT):
    """A service-account key file with a fresh RSA key; returns (path, public key, PEM lines worth searching)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "ppipe-test", "private_key_id": key_id, "private_key": pem,
        "client_email": email, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    }))
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    return path, key.public_key(), [body[2], body[len(body) // 2], body[-2]]


@dataclass
class Keys:
    secrets: list[Secret]
    drive_key: Path
    wrong_drive_key: Path
    bad_drive_key: Path
    canary: str

    def add(self, secret: Secret) -> None:
        self.secrets.append(secret)


@pytest.fixture
def keys(tmp_path, monkeypatch, s3_server, drive_routing, prefect_harness) -> Keys:
    """Fake credentials in every place ppipe looks for them; returns what must never leak."""
    from ppipe.orchestration import blocks

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[{PROFILE}]\naws_access_key_id = {PROFILE_KEY_ID}\naws_secret_access_key = {PROFILE_SECRET}\n")
    (aws / "config").write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PPIPE_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("PPIPE_SECRETS_TEST_API_TOKEN", ENV_TOKEN)
    blocks.aws_block_class()(aws_access_key_id=BLOCK_KEY_ID, aws_secret_access_key=BLOCK_SECRET).save(
        BLOCK_NAME, overwrite=True)

    secrets = [
        Secret("environment AWS key id", ENV_KEY_ID, "id"), Secret("environment AWS secret", ENV_SECRET),
        Secret("Prefect block AWS key id", BLOCK_KEY_ID, "id"), Secret("Prefect block AWS secret", BLOCK_SECRET),
        Secret("profile AWS key id", PROFILE_KEY_ID, "id"), Secret("profile AWS secret", PROFILE_SECRET),
        Secret("secret-looking environment variable", ENV_TOKEN),
        Secret("malformed Drive key material", BAD_KEY_MATERIAL),
    ]
    keys_dir = tmp_path / "drive-keys"  # the organiser's files, outside PPIPE_HOME
    keys_dir.mkdir()
    token_uri = drive_routing.token_uri
    key_id = f"ppipesecretdrivekeyid{uuid.uuid4().hex}"
    drive_key, public, lines = write_key(keys_dir / "sa.json", token_uri, key_id)
    drive_routing.add_service_account(DRIVE_ACCOUNT, key_id, public)
    secrets += [Secret("Drive private_key_id", key_id, "id")]
    secrets += [Secret(f"Drive private key (PEM line {i})", line) for i, line in enumerate(lines)]
    wrong_id = f"ppipesecretwrongkeyid{uuid.uuid4().hex}"
    wrong_key, _, wrong_lines = write_key(keys_dir / "wrong.json", token_uri, wrong_id)  # never registered
    secrets += [Secret("unregistered Drive private_key_id", wrong_id, "id")]
    secrets += [Secret(f"unregistered Drive private key (PEM line {i})", line) for i, line in enumerate(wrong_lines)]
    bad_key = keys_dir / "bad.json"
    bad_key.write_text(json.dumps({
        "type": "service_account", "private_key_id": "ppipesecretbadkeyid", "client_email": DRIVE_ACCOUNT,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{BAD_KEY_MATERIAL}\n-----END PRIVATE KEY-----\n",
        "token_uri": token_uri, "client_id": "1",
    }))
    keys = Keys(secrets, drive_key, wrong_key, bad_key, canary=f"ppipe-canary-{uuid.uuid4().hex}")
    # The signed JWT assertions made from the keys are credentials too (good for an hour).
    from oauth2client import crypt

    make_signed_jwt = crypt.make_signed_jwt

    def recording(*args, **kwargs):
        jwt = make_signed_jwt(*args, **kwargs)
        text = jwt.decode() if isinstance(jwt, bytes) else jwt
        keys.add(Secret("signed JWT assertion (Drive)", text))
        keys.add(Secret("signed JWT assertion's signature (Drive)", text.rsplit(".", 1)[1]))
        return jwt

    monkeypatch.setattr(crypt, "make_signed_jwt", recording)
    return keys


def drive_tokens(server) -> list[Secret]:
    """The bearer tokens the Drive test server issued to our service account (credentials too)."""
    with server.state.lock:
        issued = [token for token, (email, _) in server.state.tokens.items() if email == DRIVE_ACCOUNT]
    return [Secret(f"Drive access token {i}", token) for i, token in enumerate(issued)]


def iam_user_secrets(path: Path) -> list[Secret]:
    saved = json.loads(path.read_text())
    return [Secret("iam-user-policy key id", saved["aws_access_key_id"], "id"),
            Secret("iam-user-policy secret access key", saved["aws_secret_access_key"])]


def fresh_bucket() -> str:
    return f"ppipe-secrets-{uuid.uuid4().hex[:10]}"


def good_destinations(s3_server: str, drive_parent: str, keys: Keys) -> list[dict]:
    """Destinations that work: credentials from the environment, a profile, a Prefect block, a key file."""
    return [
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": s3_server},
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": s3_server, "profile": PROFILE},
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": s3_server,
         "credentials_block": BLOCK_NAME},
        {"kind": "drive", "parent": drive_parent, "service_account_file": str(keys.drive_key)},
    ]


def bad_destinations(auth_server: str, drive_parent: str, keys: Keys) -> list[dict]:
    """Destinations that fail: every key refused, an endpoint nobody listens on, unusable Drive keys."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    return [
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": auth_server},
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": auth_server, "profile": PROFILE},
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": auth_server,
         "credentials_block": BLOCK_NAME},
        {"kind": "s3", "bucket": fresh_bucket(), "region": REGION, "endpoint_url": nowhere},
        {"kind": "drive", "parent": drive_parent, "service_account_file": str(keys.wrong_drive_key)},
        {"kind": "drive", "parent": drive_parent, "service_account_file": str(keys.bad_drive_key), "folder": "bad-key"},
    ]


def challenge_spec(tmp_path: Path, name: str, destinations: list[dict], user: str, canary: str) -> dict:
    source = tmp_path / "data.csv"
    if not source.exists():
        write_csv(source, 40)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return {
        "name": name, "description": f"secrets test; ledger canary {canary}",
        "source": str(source), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [{"kind": "local", "path": str(out)}, *destinations],
        "grants": [{"service": "s3", "identity": user, "via": "iam-user-policy"},
                   {"service": "drive", "identity": PARTICIPANT}],
        "delivery": FAST,
    }


def plant_canaries(canary: str) -> None:
    """Put the canary where the log and output searches look (the positive controls)."""
    logging.getLogger("botocore.ppipe-canary").debug("log canary %s", canary)
    logging.getLogger("ppipe.canary").debug("log canary %s", canary)
    print(f"stdout canary {canary}", flush=True)
    os.write(2, f"stderr canary {canary}\n".encode())


def canary_flow_run(canary: str) -> None:
    """A flow run whose parameter, log and artifact hold the canary (Prefect's positive control)."""
    from prefect import flow, get_run_logger
    from prefect.artifacts import create_markdown_artifact

    @flow(name="ppipe-secrets-canary")
    def canary_flow(token: str) -> str:
        get_run_logger().info("log canary %s", token)
        create_markdown_artifact(key="ppipe-secrets-canary", markdown=f"artifact canary {token}")
        return "ok"

    assert canary_flow(token=canary) == "ok"


def allowed_places(corpus: Corpus, credentials_file: str) -> dict[str, set[str]]:
    """The grant's key in its own credentials file; and the block's key id (not its secret) in
    Prefect's database: Prefect's own block-document events (``events`` table, emitted when a
    block is saved or loaded) carry the block's plain fields, its SecretStr fields masked."""
    allowed = {label: {credentials_file} for label in ("iam-user-policy key id", "iam-user-policy secret access key")}
    allowed["Prefect block AWS key id"] = {name for name in corpus.items if name.startswith("Prefect database")}
    return allowed


def assert_canaries_found(corpus: Corpus, canary: str, prefixes: tuple[str, ...]) -> None:
    """The canary is found in at least one item of each kind: the searches can fail."""
    for prefix in prefixes:
        names = [name for name in corpus.items if name.startswith(prefix)]
        assert names, f"nothing read from {prefix!r}"
        assert corpus.where(canary, names=names), f"the search did not find the canary in {prefix!r}: it could not fail"


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, ppipe_home, monkeypatch, keys) -> str | None:
    """The ledger: SQLite in PPIPE_HOME, or PostgreSQL with a (fake, trust-ignored) password in its URL."""
    if request.param == "sqlite":
        return None
    from tests.support.fixtures_ledger import _empty_tables

    base = request.getfixturevalue("postgres_database")
    _empty_tables(base)
    url = base.replace("://postgres@", f"://postgres:{PG_PASSWORD}@", 1)
    assert PG_PASSWORD in url, "the PostgreSQL URL has no user to give a password to"
    monkeypatch.setenv("PPIPE_DATABASE_URL", url)
    keys.add(Secret("PostgreSQL password", PG_PASSWORD))
    return url


def test_dispatch_flow_leaks_no_credential(backend, keys, tmp_path, ppipe_home, s3_server, auth_server,
                                            drive_routing, drive_parent, capfd, every_log):
    from ppipe.orchestration.flow import dispatch_challenge
    from ppipe import api
    from ppipe.ledger import Ledger
    from ppipe.challenge.specfile import parse_challenge

    since = time.time()
    user = f"carol-{uuid.uuid4().hex[:8]}"
    good = parse_challenge(challenge_spec(tmp_path, "secrets-good", good_destinations(s3_server, drive_parent, keys),
                                          user, keys.canary))
    bad = parse_challenge(challenge_spec(tmp_path, "secrets-bad", bad_destinations(auth_server, drive_parent, keys),
                                         user, keys.canary))
    api.create(good)
    api.create(bad)

    ok = dispatch_challenge(challenge="secrets-good", now=NOW, return_state=True)
    assert ok.is_completed(), ok.message
    failed = dispatch_challenge(challenge="secrets-bad", now=NOW, return_state=True)
    assert failed.is_failed()

    ledger = Ledger()
    assert {row.status for row in ledger.releases("secrets-good")} == {"delivered"}
    bad_rows = ledger.releases("secrets-bad")
    errors = {row.destination: row.error for row in bad_rows if row.status == "failed"}
    assert len(errors) == 6, errors  # every bad destination failed, the local one delivered
    reasons = " | ".join(errors.values())
    assert reasons.count("credentials refused") == 3 and "cannot reach" in reasons, reasons
    assert "Google refused" in reasons and "not a valid key" in reasons, reasons

    credentials_file = ppipe_home / "credentials" / "secrets-good" / f"{user}.json"
    keys.secrets += iam_user_secrets(credentials_file) + drive_tokens(drive_routing)
    assert any(s.label.startswith("Drive access token") for s in keys.secrets)

    plant_canaries(keys.canary)
    canary_flow_run(keys.canary)

    corpus = Corpus()
    files = add_files(corpus, ppipe_home, {credentials_file})
    assert any(p.name == "manifest.json" for p in files)
    if backend is None:
        add_sqlite(corpus, ppipe_home)
        ledger_prefix = "ledger (SQLite"
    else:
        assert add_postgres(corpus, backend.replace(f":{PG_PASSWORD}@", "@")) > 20
        ledger_prefix = "ledger (PostgreSQL table challenges"
    counts = add_prefect(corpus, {"dispatch-challenge", "ppipe-secrets-canary"}, since)
    assert counts["flow runs"] == 3 and counts["artifacts"] >= 5 and counts["logs"] > 5, counts
    for state in (ok, failed):
        corpus.add(f"flow state message {state.name}", state.message)
        corpus.add(f"flow result {state.name}", repr(state.result(raise_on_failure=False)))
    corpus.add("ledger errors", "\n".join(errors.values()))
    captured = capfd.readouterr()
    corpus.add("stdout", captured.out)
    corpus.add("stderr", captured.err, wire=True)  # the console shows the DEBUG records too
    assert every_log.add_to(corpus) > 0

    # Positive controls: each search finds what was put there on purpose.
    relative = f"file {credentials_file.relative_to(ppipe_home)}"
    iam_secret = next(s for s in keys.secrets if s.label == "iam-user-policy secret access key")
    assert corpus.where(iam_secret.value, names=[relative]), "the files search cannot find a secret in a file"
    assert_canaries_found(corpus, keys.canary, (
        ledger_prefix, "stdout", "stderr", "log records (ppipe", "log records (botocore",
        "prefect flow run", "Prefect database"))
    canary_run = [name for name in corpus.items if name.startswith("prefect flow run") and "parameters" in name]
    assert corpus.where(keys.canary, names=canary_run), "the flow-run parameters search cannot fail"
    assert corpus.where(keys.canary, names=[n for n in corpus.items if n.endswith(" logs")])
    assert corpus.where(keys.canary, names=[n for n in corpus.items if "artifact" in n])

    check(corpus, keys.secrets, allowed_places(corpus, relative))


def test_cli_leaks_no_credential(keys, tmp_path, ppipe_home, monkeypatch, s3_server, auth_server,
                                 drive_routing, drive_parent, capfd, every_log):
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    from ppipe.cli import app

    # `ppipe run` uses PREFECT_API_URL (the harness) and sets PREFECT_HOME if unset: keep both as they are.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_HOME", str(PREFECT_HOME.value()))
    since = time.time()
    runner = CliRunner()
    outputs: list[tuple[str, object]] = []

    def ppipe(*args: str):
        result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
        outputs.append((" ".join(args[:2]), result))
        assert "Traceback" not in result.output, result.output
        return result

    user = f"dave-{uuid.uuid4().hex[:8]}"
    files = {}
    for name, destinations in (("cli-good", good_destinations(s3_server, drive_parent, keys)),
                               ("cli-bad", bad_destinations(auth_server, drive_parent, keys))):
        spec = challenge_spec(tmp_path, name, destinations, user, keys.canary)
        spec["grants"] = []  # granted below, by `ppipe grant`
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump(spec))

    assert ppipe("create", str(files["cli-good"])).exit_code == 0
    run = ppipe("run", "cli-good", "--now", NOW.isoformat())
    assert run.exit_code == 0, run.output
    granted = ppipe("grant", "cli-good", "--service", "s3", "--identity", user, "--via", "iam-user-policy")
    assert granted.exit_code == 0 and "new access key written to" in granted.stdout, granted.output
    assert ppipe("grant", "cli-good", "--service", "drive", "--identity", PARTICIPANT).exit_code == 0
    shown = ppipe("show", "cli-good", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["releases"][0]["status"] == "delivered"
    assert ppipe("list", "--json").exit_code == 0
    verified = ppipe("verify", "cli-good")
    assert verified.exit_code == 0 and "ok: 10 delivered objects verified" in verified.stdout, verified.output

    assert ppipe("create", str(files["cli-bad"])).exit_code == 0
    run = ppipe("run", "cli-bad", "--now", NOW.isoformat())
    assert run.exit_code == 1 and "delivery failure(s)" in run.stderr, run.output
    for service in ("s3", "drive"):
        identity = user if service == "s3" else PARTICIPANT
        extra = ["--via", "iam-user-policy"] if service == "s3" else []
        refused = ppipe("grant", "cli-bad", "--service", service, "--identity", identity, *extra)
        assert refused.exit_code == 2 and refused.stderr.startswith("error: "), refused.output
    shown = json.loads(ppipe("show", "cli-bad", "--json").stdout)
    errors = [d["error"] for r in shown["releases"] for d in r["deliveries"] if d["error"]]
    # release_0 fails at each broken destination; later releases wait there (they arrive in order)
    assert len(errors) == 6 and sum("credentials refused" in e for e in errors) == 3, errors
    verified = ppipe("verify", "cli-bad")  # the local copies are intact; the rest is due, not delivered
    assert verified.exit_code == 1 and all("not delivered" in line for line in verified.stderr.splitlines()), \
        verified.output

    credentials_file = ppipe_home / "credentials" / "cli-good" / f"{user}.json"
    keys.secrets += iam_user_secrets(credentials_file) + drive_tokens(drive_routing)

    plant_canaries(keys.canary)
    canary_flow_run(keys.canary)
    corpus = Corpus()
    add_files(corpus, ppipe_home, {credentials_file})
    add_sqlite(corpus, ppipe_home)
    counts = add_prefect(corpus, {"dispatch-challenge", "ppipe-secrets-canary"}, since)
    assert counts["flow runs"] == 3 and counts["artifacts"] >= 5, counts
    for command, result in outputs:
        corpus.add(f"ppipe {command} stdout", result.stdout)
        corpus.add(f"ppipe {command} stderr", result.stderr)
    captured = capfd.readouterr()
    corpus.add("stdout", captured.out)
    corpus.add("stderr", captured.err, wire=True)  # the console shows the DEBUG records too
    every_log.add_to(corpus)

    relative = f"file {credentials_file.relative_to(ppipe_home)}"
    iam_secret = next(s for s in keys.secrets if s.label == "iam-user-policy secret access key")
    assert corpus.where(iam_secret.value, names=[relative])
    assert corpus.where(user, names=[n for n in corpus.items if n.startswith("ppipe grant")])  # the CLI outputs are read
    assert_canaries_found(corpus, keys.canary, ("ledger (SQLite", "stdout", "stderr", "log records",
                                                "prefect flow run", "Prefect database"))
    check(corpus, keys.secrets, allowed_places(corpus, relative))


def test_ledger_url_password_stays_out_of_errors(monkeypatch, capfd, caplog):
    """An unreachable PostgreSQL ledger with a password in its URL: the error names the server, not the password."""
    from ppipe.cli import app
    from ppipe.errors import PpipeError
    from ppipe.ledger import Ledger

    caplog.set_level(logging.DEBUG)
    url = f"postgresql://organiser:{PG_PASSWORD}@127.0.0.1:{free_port()}/ppipe"
    with pytest.raises(PpipeError) as info:
        Ledger(url)
    assert "cannot open" in str(info.value) and "127.0.0.1" in str(info.value)
    monkeypatch.setenv("PPIPE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 2 and "cannot open" in result.stderr, result.output
    captured = capfd.readouterr()
    corpus = Corpus()
    corpus.add("exception", str(info.value))
    corpus.add("exception repr", repr(info.value))
    corpus.add("ppipe list stderr", result.stderr)
    corpus.add("ppipe list stdout", result.stdout)
    corpus.add("stdout+stderr", captured.out + captured.err)
    corpus.add("log records", caplog.text)
    control = Corpus({"the URL itself": url.encode()})
    assert control.where(PG_PASSWORD), "the search cannot find the password even in the URL"
    check(corpus, [Secret("PostgreSQL password", PG_PASSWORD)])
