"""Issue 10, point 19: tables readable at 80 columns; ``show`` of a long challenge summarises and limits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ppipe import api, delivery
from ppipe.ledger import Ledger
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.core_helpers import ROOT, ppipe, spec, write_spec

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\+00:00|Z)?")


@pytest.fixture
def short_root():
    """A short folder (pytest's tmp_path alone is longer than 80 characters with a place in it)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="c", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _long_place(root):
    """A 50-character place: with the time (25) and the release it cannot share 80 columns."""
    folder = root / "course-shared-folder-for-participants"
    return {"kind": "local", "path": str(folder)}, str(folder / "chal-a")


def _check_80(text: str, *intact: str) -> None:
    lines = text.splitlines()
    # only a place longer than the terminal may stand alone on a longer line of the places list
    wide = [line for line in lines if len(line) > 80 and not re.fullmatch(r"\s*\[\d+\] \S+", line)]
    assert not wide, "\n".join(wide)
    assert "…" not in text, text
    for fragment in intact:
        assert any(fragment in line for line in lines), f"{fragment!r} is cut or wrapped:\n{text}"


def test_plan_fits_80_columns_with_the_whole_time_and_place(tmp_path, short_root):
    destination, place = _long_place(short_root)
    result = ppipe("plan", str(write_spec(tmp_path, spec(tmp_path, destinations=[destination]))))
    assert result.returncode == 0, result.stderr
    _check_80(result.stdout, place, "2026-01-01T00:02:00")


def test_show_fits_80_columns_with_the_whole_time_and_place(tmp_path, short_root):
    destination, place = _long_place(short_root)
    assert ppipe("create", str(write_spec(tmp_path, spec(tmp_path, destinations=[destination])))).returncode == 0
    result = ppipe("show", "chal-a")
    assert result.returncode == 0, result.stderr
    _check_80(result.stdout, place, "2026-01-01T00:02:00")


@pytest.fixture
def long_challenge(tmp_path):
    """A 500-release challenge with its first 10 releases delivered."""
    challenge = parse_challenge(spec(tmp_path, source=str(ROOT / "deployments" / "data" / "sensors.csv"),
                                     releases=500, schedule={"start": "2026-01-01T00:00:00Z", "every": "1d"}))
    api.create(challenge)
    delivery.dispatch(Ledger(), "chal-a", now=challenge.schedule.time_of(9))
    return challenge


def test_show_of_500_releases_starts_with_a_summary(long_challenge):
    result = ppipe("show", "chal-a")
    assert result.returncode == 0, result.stderr
    head = "\n".join(result.stdout.splitlines()[:4])
    for fragment in ("10 delivered", "0 failed", "490 planned", "next due", "2026-01-11T00:00:00"):
        assert fragment in head, head
    _check_80(result.stdout)


def test_show_limits_with_last_and_status(long_challenge):
    last = ppipe("show", "chal-a", "--last", "3")
    assert last.returncode == 0, last.stderr
    shown = re.findall(r"release_\d+", "\n".join(last.stdout.splitlines()[3:]))  # after the summary
    assert sorted(set(shown), key=lambda n: int(n.split("_")[1])) == ["release_497", "release_498", "release_499"]
    delivered = ppipe("show", "chal-a", "--status", "delivered", "--json")
    assert delivered.returncode == 0, delivered.stderr
    assert [r["index"] for r in json.loads(delivered.stdout)["releases"]] == list(range(10))
    bad = ppipe("show", "chal-a", "--status", "lost")
    assert bad.returncode == 2 and "--status" in bad.stderr


def test_run_table_fits_80_columns(prefect_api, tmp_path, short_root):
    destination, place = _long_place(short_root)
    assert ppipe("create", str(write_spec(tmp_path, spec(tmp_path, destinations=[destination])))).returncode == 0
    result = ppipe("run", "chal-a")
    assert result.returncode == 0, result.stderr
    table = result.stdout[result.stdout.find("chal-a ("):].split("flow run:")[0]
    _check_80(table, place, "2026-01-01T00:02:00")
