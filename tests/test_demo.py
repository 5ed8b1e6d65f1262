"""`ppipe demo` end to end against the session's Prefect server: six releases by a real worker, three simulated
participants (one serving its own model on loopback), a leaderboard with real endpoint figures within 80 columns."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ppipe.cli import app
from ppipe.orchestration import deploy

pytestmark = pytest.mark.slow


def board_rows(output: str) -> tuple[list[str], dict[str, list[str]]]:
    """The printed leaderboard's lines, and its rows by participant (cells split on spaces)."""
    lines = output[output.index("sensors-demo leaderboard"):].splitlines()
    lines = lines[:next(i for i, line in enumerate(lines) if line.startswith("leaderboard: "))]
    rows = {cells[1]: cells for cells in (line.split() for line in lines) if cells and cells[0].isdigit()}
    return lines, rows


def test_demo_ends_with_endpoint_columns_for_the_hosted_participant(tmp_path, prefect_api, monkeypatch):
    monkeypatch.setenv("PPIPE_WORK_POOL", "ppipe-demo-test")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "out")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "ERROR" not in result.output
    assert " and ".join(deploy.deployment_names("sensors-demo")) in result.output  # the health deployment too
    lines, rows = board_rows(result.output)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert "uptime" in lines[2] and "ms" in lines[2] and "score" in lines[2]
    assert set(rows) == {"careful", "sloppy", "hosted"}
    uptime, p50, p95, endpoint_score = rows["hosted"][-4:]
    assert uptime == "100%" and 0 < float(p50) <= float(p95) and 0.5 < float(endpoint_score) <= 1
    assert rows["careful"][-4:] == rows["sloppy"][-4:] == ["-"] * 4  # no endpoint registered
