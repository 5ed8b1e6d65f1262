"""Every ``PPIPE_*`` environment variable ppipe reads: typed, documented, with its default.

Nothing else in ppipe reads a ``PPIPE_*`` variable; ``ppipe --help`` lists :data:`ENVIRONMENT`.
Values are read at each call (not at import), so a changed environment takes effect.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from ppipe.errors import ConfigError

#: Environment variables ppipe reads, with what each one means.
ENVIRONMENT = {
    "PPIPE_HOME": "data folder: ledger (SQLite), staged sources, audit copies of releases (default ~/.ppipe)",
    "PPIPE_DATABASE_URL": "ledger database URL: sqlite:///path or postgresql://... (default SQLite in PPIPE_HOME)",
    "PPIPE_WORK_POOL": "Prefect work pool the deployments run on (default ppipe)",
    "PPIPE_DEPLOYMENTS_DIR": "folder of challenge YAML files (default ./deployments)",
    "PPIPE_PREFECT_PORT": "port of the local Prefect server (default 4200)",
    "PPIPE_CLAIM_LEASE": "seconds a claim on a release holds unless renewed (default 300)",
    "PPIPE_CONNECT_TIMEOUT": "seconds to wait for a storage endpoint (default 10)",
    "PPIPE_RETRY_DEADLINE": "seconds one GCS bucket/IAM call may spend retrying (default 60)",
    "PPIPE_HEARTBEAT": "seconds between flow-run heartbeats; a run silent for 2.5 heartbeats is marked "
    "Crashed and rerun (default 60, minimum 30)",
    "PPIPE_START_WINDOW": "seconds a flow run picked up by a worker may take to start before it is marked "
    "Crashed and rerun (default 4 heartbeats)",
    "PPIPE_UPLOAD_CONCURRENCY": "uploads to one provider at once, across all workers (default 8)",
    "PPIPE_DRIVE_UPLOADS_PER_SECOND": "uploads to Google Drive a second, across all workers (default 2)",
    "PPIPE_DRIVE_SERVICE_ACCOUNT_FILE": "Google service-account key file for Drive destinations "
    "(else GOOGLE_APPLICATION_CREDENTIALS)",
}


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds from ``name``; ConfigError naming the variable otherwise."""
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name}: {text!r} must be greater than zero")
    return value


def home_path() -> Path:
    """Where the data folder is (``PPIPE_HOME``, default ``~/.ppipe``), without creating it."""
    return Path(os.environ.get("PPIPE_HOME") or Path.home() / ".ppipe").expanduser().resolve()


def home() -> Path:
    """The data folder, created on first use and kept private (0700): it holds the whole
    staged dataset, the ledger and Prefect's database, none of which others may read."""
    path = home_path()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_dir(path: Path) -> Path:
    """``path`` (under PPIPE_HOME) created if needed, readable by its owner only."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return missing[0] if missing else path


def make_private(path: Path) -> Path:
    """Restrict ``path`` and, for a folder, everything in it to its owner (0700 folders, 0600 files).

    For what other libraries wrote under PPIPE_HOME with the process umask (polars, pyarrow,
    SQLite's -wal/-shm files take the database file's mode)."""
    if not path.exists():
        return path
    items = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in items:
        if not item.is_symlink():
            item.chmod(0o700 if item.is_dir() else 0o600)
    return path


def database_url() -> str:
    """The ledger's SQLAlchemy URL; an unknown scheme is an error, never an in-memory fallback."""
    url = os.environ.get("PPIPE_DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{home_path() / 'ledger.db'}"
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("postgres"):
        return psycopg_url(url)
    if scheme == "sqlite":
        if url in ("sqlite://", "sqlite:///:memory:") or ":memory:" in url:
            raise ConfigError("PPIPE_DATABASE_URL: an in-memory SQLite ledger would forget everything; give a file path")
        return url
    raise ConfigError(
        f"PPIPE_DATABASE_URL: unknown scheme {scheme!r}: use sqlite:///path/to/ledger.db or postgresql://user@host/db"
    )


def psycopg_url(url: str) -> str:
    """A PostgreSQL URL for psycopg 3 (the driver we ship), whatever its spelling
    (``postgres://``, ``postgresql://``); an explicit driver (``postgresql+...://``) stays."""
    scheme = url.split(":", 1)[0].lower()
    return "postgresql+psycopg" + url[len(scheme):] if scheme in ("postgres", "postgresql") else url


def claim_lease() -> timedelta:
    """How long a claim on a release holds unless renewed (``PPIPE_CLAIM_LEASE`` seconds, default 300).

    A live run renews its claims (ppipe.delivery's heartbeat), so the lease only bounds how
    long a release stays stuck after its run died; temporary files older than a lease
    belong to no live run and may be cleaned up.
    """
    return timedelta(seconds=_seconds("PPIPE_CLAIM_LEASE", 300))


def heartbeat() -> float:
    """Seconds between Prefect flow-run heartbeats (``PPIPE_HEARTBEAT``, default 60; Prefect's minimum is 30)."""
    value = _seconds("PPIPE_HEARTBEAT", 60)
    if value < 30:
        raise ConfigError(f"PPIPE_HEARTBEAT: {value:g} is below Prefect's minimum heartbeat of 30 seconds")
    return value


def start_window() -> float:
    """Seconds a picked-up flow run may stay Pending (``PPIPE_START_WINDOW``, default four heartbeats:
    starting a run imports Prefect and polars, slow on a busy machine)."""
    value = _seconds("PPIPE_START_WINDOW", 4 * heartbeat())
    if value < 10:
        raise ConfigError(f"PPIPE_START_WINDOW: {value:g} is below Prefect's minimum of 10 seconds for such a trigger")
    return value


def upload_concurrency() -> int:
    """Uploads to one provider at once across all workers (``PPIPE_UPLOAD_CONCURRENCY``, default 8)."""
    text = (os.environ.get("PPIPE_UPLOAD_CONCURRENCY") or "8").strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"PPIPE_UPLOAD_CONCURRENCY: {text!r} is not a whole number of uploads (1 or more)")
    return int(text)


def drive_uploads_per_second() -> float:
    """Drive uploads a second across all workers (``PPIPE_DRIVE_UPLOADS_PER_SECOND``, default 2)."""
    return _seconds("PPIPE_DRIVE_UPLOADS_PER_SECOND", 2)


def connect_timeout() -> float:
    """Seconds to wait for a storage endpoint to accept a connection (``PPIPE_CONNECT_TIMEOUT``, default 10)."""
    return _seconds("PPIPE_CONNECT_TIMEOUT", 10)


def retry_deadline() -> float:
    """Seconds one GCS bucket/IAM call may spend in its client's retries (``PPIPE_RETRY_DEADLINE``, default 60)."""
    return _seconds("PPIPE_RETRY_DEADLINE", 60)


def prefect_port() -> int:
    """Port of the local Prefect server (``PPIPE_PREFECT_PORT``, default 4200)."""
    text = os.environ.get("PPIPE_PREFECT_PORT") or "4200"
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"PPIPE_PREFECT_PORT: {text!r} is not a TCP port (1-65535)")
    return int(text)


def drive_key_file() -> str | None:
    """``PPIPE_DRIVE_SERVICE_ACCOUNT_FILE``, if set (Drive also looks at GOOGLE_APPLICATION_CREDENTIALS)."""
    return os.environ.get("PPIPE_DRIVE_SERVICE_ACCOUNT_FILE") or None


def work_pool() -> str:
    return os.environ.get("PPIPE_WORK_POOL") or "ppipe"


def deployments_dir() -> Path:
    return Path(os.environ.get("PPIPE_DEPLOYMENTS_DIR") or "deployments").resolve()


#: Hex digits of the source's sha256 that name its staged copy's folder.
DIGEST_KEY = 16


def staging_dir(challenge: str, source_sha256: str | None = None) -> Path:
    """This machine's staged copies of a challenge (everything ``delete`` removes); with the
    source's sha256, the folder of the copy staged from exactly those bytes."""
    folder = home() / "staged" / challenge
    return folder / source_sha256[:DIGEST_KEY] if source_sha256 else folder


def releases_dir(challenge: str) -> Path:
    """Local audit copies of every release file, and the challenge's manifest.json."""
    return home() / "releases" / challenge


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a block (and the processes it starts), then put back what
    was there: a command run in-process (the CLI's tests, the demo) must not leave them behind."""
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
