"""Shared fixtures. Storage servers live in tests/servers.py; each area adds its own plugin module."""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.support.servers",
    "tests.support.fixtures_ledger",
    "tests.support.fixtures_destinations",
    "tests.support.fixtures_drive",
    "tests.support.fixtures_prefect",
]

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def ppipe_home(tmp_path, monkeypatch):
    """Every test gets its own PPIPE_HOME (and so its own SQLite ledger)."""
    home = tmp_path / "ppipe-home"
    monkeypatch.setenv("PPIPE_HOME", str(home))
    monkeypatch.delenv("PPIPE_DATABASE_URL", raising=False)
    return home
