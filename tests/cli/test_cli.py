"""The ppipe command line, driven through typer's CliRunner against a real SQLite ledger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppipe.cli import app

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "deployments" / "sensors-mini.yaml"
runner = CliRunner()


def ppipe(*args: str, input: str | None = None):
    # wide enough that rich does not wrap table cells
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "250"})


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, one line on stderr naming what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def mini(tmp_path) -> Path:
    """A copy of the 300-row example whose destination is under tmp_path."""
    folder = tmp_path / "deployments"
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "deployments" / "data" / "sensors_300.csv", folder / "data")
    path = folder / "sensors-mini.yaml"
    path.write_text(MINI.read_text())
    return path


def test_plan_prints_the_original_ranges():
    result = ppipe("plan", str(MINI))
    assert result.exit_code == 0, result.output
    for fragment in ("[0, 90)", "[90, 210)", "[210, 300)", "2026-12-01T09:01:00+00:00"):
        assert fragment in result.stdout


def test_plan_json_is_one_document():
    result = ppipe("plan", str(MINI), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["rows"] == 300
    assert [(r["index"], r["name"], r["start"], r["stop"], r["rows"]) for r in document["releases"]] == [
        (0, "release_0", 0, 90, 90), (1, "release_1", 90, 210, 120), (2, "release_2", 210, 300, 90)]
    assert document["releases"][2]["scheduled_at"] == "2026-12-01T09:02:00+00:00"
    assert document["releases"][0]["destinations"] == [str(ROOT / "out" / "sensors-mini")]


def test_plan_writes_nothing(ppipe_home):
    assert ppipe("plan", str(MINI)).exit_code == 0
    assert not (ppipe_home / "ledger.db").exists()


def test_create_list_show_delete(mini, ppipe_home):
    created = ppipe("create", str(mini))
    assert created.exit_code == 0, created.output
    assert "300 rows, 3 releases" in created.stdout
    listed = json.loads(ppipe("list", "--json").stdout)
    assert [(c["name"], c["state"], c["rows"]) for c in listed["challenges"]] == [("sensors-mini", "active", 300)]
    shown = json.loads(ppipe("show", "sensors-mini", "--json").stdout)
    assert [(r["name"], r["status"], r["rows"]) for r in shown["releases"]] == [
        ("release_0", "planned", 90), ("release_1", "planned", 120), ("release_2", "planned", 90)]
    delivery = shown["releases"][0]["deliveries"][0]
    assert delivery["status"] == "planned" and delivery["sha256"] is None and delivery["uri"] is None
    assert_user_error(ppipe("create", str(mini)), "already exists")
    refused = ppipe("delete", "sensors-mini", input="n\n")
    assert refused.exit_code == 1 and ppipe("show", "sensors-mini").exit_code == 0
    assert ppipe("delete", "sensors-mini", "--yes").exit_code == 0
    assert_user_error(ppipe("show", "sensors-mini"), "no challenge named 'sensors-mini'")


def test_bad_file_is_one_line_and_writes_nothing(tmp_path, ppipe_home):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINI.read_text().replace('"2026-12-01T09:00:00Z"', '"2026-12-01T09:00:00"'))
    for command in ("plan", "create"):
        assert_user_error(ppipe(command, str(bad)), "bad.yaml", "schedule.start", "timezone")
    assert not (ppipe_home / "ledger.db").exists()
    assert not (ppipe_home / "staged").exists()


def test_missing_file_and_unknown_options_exit_2(tmp_path):
    assert_user_error(ppipe("plan", str(tmp_path / "nope.yaml")), "nope.yaml", "no such file")
    assert ppipe("plan", str(MINI), "--colour").exit_code == 2


def test_grant_on_a_service_the_challenge_lacks(mini):
    assert ppipe("create", str(mini)).exit_code == 0
    assert_user_error(
        ppipe("grant", "sensors-mini", "--service", "drive", "--identity", "bob@example.com"),
        "no drive destination",
    )
    assert_user_error(
        ppipe("grant", "sensors-mini", "--service", "drive", "--identity", "bob-at-example"),
        "identity", "e-mail",
    )
