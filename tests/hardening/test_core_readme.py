"""Issue 10, point 20: the README's Python snippet works from a fresh folder; the example data is
written where the user is; ``ppipe run`` says when it starts a background Prefect server."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.hardening.core_helpers import ROOT, ppipe, spec, write_spec
from tests.support.servers import free_port


def readme_python() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python snippet"
    return blocks[0]


def test_the_readme_python_snippet_runs_as_written_in_a_fresh_folder(tmp_path, prefect_api):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "snippet.py").write_text(readme_python(), encoding="utf-8")
    env = {**os.environ, "PPIPE_WORK_POOL": "ppipe-readme"}
    result = subprocess.run([sys.executable, "snippet.py"], cwd=fresh, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "release_0" in result.stdout
    from ppipe.ledger import Ledger

    assert [record.name for record in Ledger().list_challenges()] == ["sensors-week"]


def test_python_m_ppipe_example_writes_to_the_current_folder(tmp_path):
    before = sorted(p.name for p in (ROOT / "deployments" / "data").iterdir())
    result = subprocess.run([sys.executable, "-m", "ppipe.example"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv"))
    assert written, result.stdout
    assert all(str(tmp_path / name) in result.stdout for name in written), result.stdout
    assert sorted(p.name for p in (ROOT / "deployments" / "data").iterdir()) == before


@pytest.mark.slow
def test_run_says_when_it_starts_a_background_server_and_how_to_stop_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    port = str(free_port())
    env = {"PPIPE_PREFECT_PORT": port, "PREFECT_API_URL": ""}
    assert ppipe("create", str(write_spec(tmp_path, spec(tmp_path))), env=env).returncode == 0
    try:
        result = ppipe("run", "chal-a", env=env, timeout=300)
        text = result.stdout + result.stderr
        assert result.returncode == 0, text
        assert "started a Prefect server" in text and "ppipe server stop" in text, text
        again = ppipe("run", "chal-a", env=env, timeout=300)
        assert "started a Prefect server" not in again.stdout + again.stderr
    finally:
        ppipe("server", "stop", "--port", port, env=env)
