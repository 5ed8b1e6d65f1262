"""Issue 10, point 2: an interrupted run releases its claims; releases reach a destination in order;
``verify`` reports due-but-undelivered releases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ppipe import api, delivery
from ppipe.ledger import Ledger
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.core_helpers import ROOT, ppipe, spec


def _create(tmp_path, name="chal-a", **overrides):
    challenge = parse_challenge(spec(tmp_path, name, **overrides))
    api.create(challenge)
    return challenge


def _spawn_blocked(tmp_path, name: str, target: str) -> subprocess.Popen:
    """A real dispatching process (tests/reliability_child.py) that stops while saving ``target``."""
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    blocked = tmp_path / "blocked"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.reliability_child", "--name", name, "--owner", "interrupted",
         "--log", str(log), "--block", "save", "--target", target, "--blocked", str(blocked)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while not blocked.exists():
        if proc.poll() is not None:
            pytest.fail(f"the child exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "the child never reached the save of " + target
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_releases_its_claims_before_exiting(tmp_path, signum):
    _create(tmp_path)
    proc = _spawn_blocked(tmp_path, "chal-a", "release_1")
    proc.send_signal(signum)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not stop within 30 s of the signal")
    assert proc.returncode != 0
    rows = {row.index: row for row in Ledger().releases("chal-a")}
    assert rows[0].status == "delivered"
    assert rows[1].status != "running", "release_1 is still claimed by the interrupted run"
    assert rows[1].claimed_by is None or rows[1].claim_expires_at is None
    # the next run delivers release_1 at once, without waiting for a lease to run out
    report = delivery.dispatch(Ledger(), "chal-a")
    assert [o.index for o in report.delivered] == [1, 2]


def test_a_later_release_waits_while_an_earlier_one_is_undelivered_at_that_destination(tmp_path):
    challenge = _create(tmp_path)
    ledger = Ledger()
    first = delivery.dispatch(ledger, "chal-a", now=challenge.schedule.time_of(0))
    assert [o.index for o in first.delivered] == [0]
    release_1 = next(row for row in ledger.releases("chal-a") if row.index == 1)
    assert ledger.claim(release_1.id, "someone-else", lease=timedelta(minutes=5))  # a live run holds it
    report = delivery.dispatch(ledger, "chal-a")
    assert [o.index for o in report.delivered] == [], "release_2 was delivered before release_1"
    statuses = {row.index: row.status for row in ledger.releases("chal-a")}
    assert statuses == {0: "delivered", 1: "running", 2: "planned"}
    assert not (tmp_path / "out" / "chal-a" / "release_2.csv").exists()


def test_verify_names_each_due_release_that_is_not_delivered_and_fails(tmp_path):
    challenge = _create(tmp_path)
    delivery.dispatch(Ledger(), "chal-a", now=challenge.schedule.time_of(0))
    result = ppipe("verify", "chal-a")
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout + result.stderr
    lines = [line for line in text.splitlines() if "not delivered" in line]
    assert len(lines) == 2, text
    assert "release_1" in lines[0] and "release_2" in lines[1], text
    assert "ok:" not in text
