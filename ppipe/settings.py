"""Where ppipe keeps its things, from the environment, with embedded defaults."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

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
}


def home() -> Path:
    """The data folder (``PPIPE_HOME``, default ``~/.ppipe``), created on first use."""
    path = Path(os.environ.get("PPIPE_HOME") or Path.home() / ".ppipe").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The ledger's SQLAlchemy URL; an unknown scheme is an error, never an in-memory fallback."""
    url = os.environ.get("PPIPE_DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{home() / 'ledger.db'}"
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("postgres"):
        # Use psycopg 3 (the driver we ship) whatever the URL's spelling.
        return "postgresql+psycopg" + url[len(scheme):]
    if scheme == "sqlite":
        if url in ("sqlite://", "sqlite:///:memory:") or ":memory:" in url:
            raise ConfigError("PPIPE_DATABASE_URL: an in-memory SQLite ledger would forget everything; give a file path")
        return url
    raise ConfigError(
        f"PPIPE_DATABASE_URL: unknown scheme {scheme!r}: use sqlite:///path/to/ledger.db or postgresql://user@host/db"
    )


def claim_lease() -> timedelta:
    """How long a claim on a release holds unless renewed (``PPIPE_CLAIM_LEASE`` seconds, default 300).

    A live run renews its claims (ppipe.delivery's heartbeat), so the lease only bounds how
    long a release stays stuck after its run died; temporary files older than a lease
    belong to no live run and may be cleaned up.
    """
    return timedelta(seconds=float(os.environ.get("PPIPE_CLAIM_LEASE") or 300))


def work_pool() -> str:
    return os.environ.get("PPIPE_WORK_POOL") or "ppipe"


def deployments_dir() -> Path:
    return Path(os.environ.get("PPIPE_DEPLOYMENTS_DIR") or "deployments").resolve()


def staging_dir(challenge: str) -> Path:
    return home() / "staged" / challenge


def releases_dir(challenge: str) -> Path:
    """Local audit copies of every release file, and the challenge's manifest.json."""
    return home() / "releases" / challenge
