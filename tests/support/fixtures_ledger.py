"""Ledger backends for tests: SQLite in PPIPE_HOME, and a fresh PostgreSQL database per session.

PostgreSQL is found at PPIPE_TEST_POSTGRES_URL (default: the development machine's
postgresql://postgres@127.0.0.1:5432/test); where none answers, its tests skip and say why.
"""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("PPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_connect():
    import psycopg

    return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_database():
    """URL of a PostgreSQL database created for this test session (dropped afterwards)."""
    try:
        admin = _admin_connect()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server here
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL} ({type(exc).__name__}); set PPIPE_TEST_POSTGRES_URL")
    name = f"ppipe_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _admin_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, ppipe_home, monkeypatch):
    """A ledger URL on each backend, set as PPIPE_DATABASE_URL; PostgreSQL tables emptied first."""
    if request.param == "sqlite":
        url = f"sqlite:///{ppipe_home / 'ledger.db'}"
        ppipe_home.mkdir(parents=True, exist_ok=True)
    else:
        url = request.getfixturevalue("postgres_database")
        _empty_tables(url)
    monkeypatch.setenv("PPIPE_DATABASE_URL", url)
    return url


def _empty_tables(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


@pytest.fixture
def ledger(ledger_url):
    from ppipe.ledger import Ledger

    ledger = Ledger(ledger_url)
    yield ledger
    ledger.engine.dispose()
