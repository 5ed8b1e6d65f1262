"""Small builders shared by tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ppipe.challenge.specfile import parse_challenge


def challenge_data(tmp_path: Path, **overrides: Any) -> dict:
    """A valid challenge mapping (a local CSV source and a local destination under tmp_path)."""
    data = {
        "name": "demo",
        "source": str(tmp_path / "data.csv"),
        "releases": [0.3, 0.4, 0.3],
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [{"kind": "local", "path": str(tmp_path / "out")}],
    }
    data.update(overrides)
    return data


def make_challenge(tmp_path: Path, **overrides: Any):
    return parse_challenge(challenge_data(tmp_path, **overrides))


def write_csv(path: Path, n_rows: int) -> Path:
    """A CSV of n_rows rows: id, value, label."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id,value,label"] + [f"{i},{i * 0.5},{'ab'[i % 2]}" for i in range(n_rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
