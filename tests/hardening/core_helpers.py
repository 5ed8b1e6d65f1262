"""What the core hardening tests share: ppipe as a real subprocess, challenge files, checks on its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SENSORS_300 = ROOT / "deployments" / "data" / "sensors_300.csv"
PPIPE = Path(sys.executable).parent / "ppipe"


def ppipe(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess:
    """``ppipe ARGS`` in a fresh process (the environment of this test, plus ``env``)."""
    full_env = {**os.environ, "COLUMNS": "80", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(env or {})}
    return subprocess.run([str(PPIPE), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def spec(tmp_path: Path, name: str = "chal-a", **overrides) -> dict:
    """A valid challenge over the 300-row example, delivered to a local folder under tmp_path."""
    data = {
        "name": name,
        "source": str(SENSORS_300),
        "releases": 3,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "60s"},
        "destinations": [{"kind": "local", "path": str(tmp_path / "out")}],
    }
    data.update(overrides)
    return data


def write_spec(tmp_path: Path, data: dict, file: str | None = None) -> Path:
    path = tmp_path / (file or f"{data['name']}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """Exit ``code``, one line on stderr starting 'error: ' containing every fragment, no traceback."""
    shown = f"exit {result.returncode}\nstderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.returncode == code, shown
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    missing = [fragment for fragment in fragments if fragment not in lines[0]]
    assert not missing, f"{lines[0]!r} lacks {missing}"
    return lines[0]


def no_traceback(result: subprocess.CompletedProcess) -> None:
    text = result.stderr + result.stdout
    assert "Traceback" not in text, text[-3000:]
