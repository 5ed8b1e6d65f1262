"""Issue 10, point 13: PPIPE_HOME is private: folders 0700, files 0600 (staged data, ledger, Prefect's database)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.hardening.core_helpers import ppipe, spec, write_spec


def _open_to_others(home: Path) -> list[str]:
    loose = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode & 0o077 or (path.is_dir() and mode != wanted):
            loose.append(f"{path.relative_to(home.parent)} {oct(mode)}")
    return loose


def test_create_and_run_leave_nothing_readable_by_others(tmp_path):
    home = tmp_path / "ppipe-home"
    os.umask(0o022)  # the usual umask; ppipe must not rely on a stricter one
    path = write_spec(tmp_path, spec(tmp_path, output={"format": "parquet", "shuffle": True}))
    created = ppipe("create", str(path))
    assert created.returncode == 0, created.stderr
    from ppipe import delivery
    from ppipe.ledger import Ledger

    delivery.dispatch(Ledger(), "chal-a")
    assert (home / "ledger.db").exists() and (home / "staged" / "chal-a").exists()
    assert _open_to_others(home) == []


def test_an_existing_open_home_is_made_private(tmp_path):
    home = tmp_path / "ppipe-home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    assert ppipe("create", str(write_spec(tmp_path, spec(tmp_path)))).returncode == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


@pytest.mark.slow
def test_the_prefect_server_ppipe_starts_keeps_its_database_private(tmp_path, monkeypatch):
    from ppipe.orchestration import server
    from tests.support.servers import free_port

    home = tmp_path / "ppipe-home"
    monkeypatch.delenv("PREFECT_HOME", raising=False)  # other tests' servers set it: use PPIPE_HOME's
    port = free_port()
    os.umask(0o022)
    status = server.start(port, timeout=120)
    try:
        assert status.healthy
        prefect_home = home / "prefect"
        assert list(prefect_home.rglob("*.db")), "Prefect's database is not under PPIPE_HOME/prefect"
    finally:
        server.stop(port)
    assert _open_to_others(home) == []


def test_prediction_batches_labels_files_and_manifests_are_private_too(tmp_path):
    """The participant side's files (predict_k, the manifest it rewrites) and a scenario's
    (labels files, the organiser's record) land in PPIPE_HOME like the releases."""
    home = tmp_path / "ppipe-home"
    os.umask(0o022)
    from datetime import datetime, timedelta, timezone

    start = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0).isoformat()
    data = spec(tmp_path, releases=3, output={"format": "csv", "row_id": True},
                schedule={"start": start, "every": "1d"},  # releases still to come: predict_k goes out
                requests={"prediction": {"label": "label", "metric": "accuracy"}},
                scenario={"seed": 3, "events": [{"from": 0, "late_labels": {"label": "label", "lag": 1}},
                                                {"at": 1, "missing": {"columns": ["humidity"], "rate": 0.1}}]})
    created = ppipe("create", str(write_spec(tmp_path, data)))
    assert created.returncode == 0, created.stderr
    from ppipe import delivery
    from ppipe.ledger import Ledger
    from ppipe.participants import requests

    ledger = Ledger()
    for index in (0, 1):
        delivery.dispatch(ledger, "chal-a", release=index)
        assert all(not opened.problems for opened in requests.open_due(ledger, "chal-a"))
    releases = home / "releases" / "chal-a"
    assert {"predict_1.csv", "predict_2.csv", "labels_0.csv", "manifest.json"} <= {p.name for p in releases.iterdir()}
    assert list((home / "scenario" / "chal-a").glob("*.json"))
    assert _open_to_others(home) == []


def test_a_file_ppipe_writes_is_private_whatever_was_there(tmp_path):
    from ppipe import durable

    os.umask(0o022)
    fresh, there = tmp_path / "fresh.json", tmp_path / "there.json"
    there.write_text("old")
    there.chmod(0o644)  # left by an earlier version, say
    for path in (fresh, there):
        with durable.open_private(path) as out:
            out.write("{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "{}"
