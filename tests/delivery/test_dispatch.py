"""Dispatching due releases without Prefect: ppipe.delivery over a real ledger, data path and folders."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ppipe import api
from ppipe import delivery
from ppipe.destinations import open_destination
from ppipe.errors import DestinationError
from ppipe.ledger import Ledger
from tests.support.helpers import make_challenge, write_csv

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    """``minutes`` after the first release (releases are 60 s apart)."""
    return START + timedelta(minutes=minutes)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def register(tmp_path, ledger, **overrides):
    write_csv(tmp_path / "data.csv", 100)
    (tmp_path / "out").mkdir(exist_ok=True)
    challenge = make_challenge(tmp_path, **overrides)
    api.create(challenge, ledger=ledger)
    return challenge


def statuses(ledger, name="demo"):
    return [(row.index, row.status) for row in ledger.releases(name)]


def test_only_releases_due_at_now_are_delivered(tmp_path, ledger):
    register(tmp_path, ledger)
    report = delivery.dispatch(ledger, "demo", now=at(1.5))
    assert [o.release for o in report.delivered] == ["release_0", "release_1"]
    assert statuses(ledger) == [(0, "delivered"), (1, "delivered"), (2, "planned")]
    folder = tmp_path / "out" / "demo"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "release_0.csv", "release_1.csv"]
    assert report.next_due == at(2) and not report.finished
    assert "release_2 at 2026-12-01T09:02:00" in delivery.summary_markdown(ledger, report)


def test_delivered_rows_record_file_facts(tmp_path, ledger):
    register(tmp_path, ledger)
    delivery.dispatch(ledger, "demo", now=at(0))
    row = ledger.releases("demo")[0]
    stored = open_destination(make_challenge(tmp_path).destinations[0], "demo").stat("release_0.csv")
    assert (row.sha256, row.bytes, row.row_count) == (stored.sha256, stored.size, 30)
    assert row.uri == str(tmp_path / "out" / "demo" / "release_0.csv") and row.attempts == 1


def test_catch_up_delivers_every_overdue_release_in_order_then_rerun_is_a_no_op(tmp_path, ledger):
    register(tmp_path, ledger)
    report = delivery.dispatch(ledger, "demo", now=at(30))
    assert [o.index for o in report.outcomes] == [0, 1, 2]
    assert report.finished and ledger.get("demo").state == "finished"
    manifest = json.loads((tmp_path / "out" / "demo" / "manifest.json").read_text())
    assert [r["name"] for r in manifest["releases"]] == ["release_0", "release_1", "release_2"]

    ledger.set_state("demo", "active")  # even when still active, nothing is left to do
    mtime = (tmp_path / "out" / "demo" / "release_0.csv").stat().st_mtime_ns
    again = delivery.dispatch(ledger, "demo", now=at(30))
    assert again.outcomes == [] and again.manifest is None
    assert (tmp_path / "out" / "demo" / "release_0.csv").stat().st_mtime_ns == mtime
    assert [row.attempts for row in ledger.releases("demo")] == [1, 1, 1]


def test_a_row_claimed_by_another_run_is_left_alone(tmp_path, ledger):
    register(tmp_path, ledger)
    first = ledger.releases("demo")[0]
    assert ledger.claim(first.id, owner="other-run")
    report = delivery.dispatch(ledger, "demo", now=at(1))
    assert report.outcomes == []  # release_1 waits for release_0 there: releases arrive in order
    assert ledger.releases("demo")[0].claimed_by == "other-run"
    assert ledger.releases("demo")[1].status == "planned"
    assert not (tmp_path / "out" / "demo" / "release_0.csv").exists()


def test_a_run_taking_over_waits_out_a_dead_runs_claim_then_delivers(tmp_path, ledger, monkeypatch):
    """A scheduled run (take_over) finds a release claimed by a run that died (its machine
    was killed): it waits while that claim's lease runs, then delivers the release itself."""
    register(tmp_path, ledger)
    monkeypatch.setenv("PPIPE_CLAIM_LEASE", "2")
    first = ledger.releases("demo")[0]
    assert ledger.claim(first.id, owner="dead-run")
    report = delivery.Dispatch(ledger, ledger.challenge("demo"), now=at(1), take_over=True).run()
    assert sorted(o.index for o in report.delivered) == [0, 1]
    row = ledger.releases("demo")[0]
    assert row.status == "delivered" and row.claimed_by != "dead-run" and row.attempts == 2
    assert (tmp_path / "out" / "demo" / "release_0.csv").exists()


def test_a_run_taking_over_leaves_what_a_live_run_finishes(tmp_path, ledger):
    """Two runs at once: the one waiting does not deliver what the other delivered meanwhile."""
    import threading

    register(tmp_path, ledger)
    first = ledger.releases("demo")[0]
    assert ledger.claim(first.id, owner="live-run")
    finisher = threading.Timer(1.0, lambda: ledger.mark_delivered(
        first.id, "live-run", sha256="0" * 64, bytes=1, row_count=30, uri="elsewhere"))
    finisher.start()
    report = delivery.Dispatch(ledger, ledger.challenge("demo"), now=at(1), take_over=True).run()
    finisher.join()
    assert [o.index for o in report.outcomes] == [1]
    assert ledger.releases("demo")[0].uri == "elsewhere"


def test_a_release_that_waited_for_a_live_run_is_delivered_once_that_run_finishes(tmp_path, ledger):
    """release_1 waits for release_0, which another run is uploading; that run finishes before
    this one looks again: release_1 is delivered by this run, not left for a later schedule."""
    register(tmp_path, ledger)
    first = ledger.releases("demo")[0]
    assert ledger.claim(first.id, owner="live-run")

    def finish_when_waited(release, step, detail):
        if step == "waiting":
            ledger.mark_delivered(first.id, "live-run", sha256="0" * 64, bytes=1, row_count=30, uri="elsewhere")

    report = delivery.Dispatch(ledger, ledger.challenge("demo"), now=at(1), take_over=True,
                               listener=finish_when_waited).run()
    assert [o.index for o in report.delivered] == [1]
    assert statuses(ledger)[:2] == [(0, "delivered"), (1, "delivered")]


def test_an_object_already_uploaded_is_not_uploaded_again(tmp_path, ledger):
    """A run that crashed after uploading and before recording: the next run only records."""
    challenge = register(tmp_path, ledger)
    row = ledger.releases("demo")[0]
    crashed = delivery.Dispatch(ledger, challenge, owner="crashed", now=at(0))
    crashed.prepare_destinations()
    assert ledger.claim(row.id, "crashed", lease=timedelta(0))  # its lease is over at once
    file = crashed.save(crashed.due_releases()[0])
    destination = crashed.destinations[row.destination]
    destination.upload(file.path, file.name)

    report = delivery.dispatch(ledger, "demo", now=at(0))
    assert [(o.index, o.reused) for o in report.delivered] == [(0, True)]
    assert ledger.releases("demo")[0].sha256 == file.sha256


def test_one_failing_destination_does_not_stop_the_others(tmp_path, ledger):
    missing = tmp_path / "blocker" / "out"
    register(tmp_path, ledger, destinations=[
        {"kind": "local", "path": str(tmp_path / "out")}, {"kind": "local", "path": str(missing)},
    ])
    (tmp_path / "blocker").write_text("a file where a folder should be")  # after create, which checks it
    report = delivery.dispatch(ledger, "demo", now=at(30))
    # the broken destination fails release_0; the later releases wait there (they arrive in order)
    assert [(o.index, o.status) for o in report.outcomes] == [
        (0, "delivered"), (0, "failed"), (1, "delivered"), (2, "delivered"),
    ]
    assert not report.ok and not report.finished
    error = report.failed[0].error
    assert "\n" not in error and str(missing.parent) in error and "Not a directory" in error
    assert "release_0 ->" in delivery.failure_line(report)

    (tmp_path / "blocker").unlink()  # fixed: the next run delivers only what failed
    again = delivery.dispatch(ledger, "demo", now=at(30))
    assert [(o.index, o.destination) for o in again.delivered] == [(i, str(missing / "demo")) for i in range(3)]
    assert again.finished and ledger.get("demo").state == "finished"


def test_a_failing_release_holds_back_later_releases_at_its_destination(tmp_path, ledger):
    challenge = register(tmp_path, ledger)

    def flaky_save(challenge, staged, release):
        if release.index == 1:
            raise OSError("disk full")
        return delivery.save_release(challenge, staged, release)

    run = delivery.Dispatch(ledger, challenge, now=at(30), steps=delivery.Steps(save=flaky_save))
    report = run.run()
    assert [(o.index, o.status) for o in report.outcomes] == [(0, "delivered"), (1, "failed")]
    assert ledger.releases("demo")[1].error == "OSError: disk full"
    assert statuses(ledger) == [(0, "delivered"), (1, "failed"), (2, "planned")]  # 2 waits for 1


def test_an_upload_error_is_recorded_per_row(tmp_path, ledger):
    challenge = register(tmp_path, ledger)

    def refuse(destination, file, release):
        raise DestinationError(destination.uri, "access denied")

    report = delivery.Dispatch(ledger, challenge, now=at(0), steps=delivery.Steps(upload=refuse)).run()
    assert report.failed[0].error == f"destination {tmp_path / 'out' / 'demo'}: access denied"
    assert ledger.releases("demo")[0].status == "failed" and report.manifest is None


@pytest.mark.parametrize("state", ["paused", "cancelled", "finished"])
def test_an_inactive_challenge_gets_no_delivery(tmp_path, ledger, state):
    register(tmp_path, ledger)
    ledger.set_state("demo", state)
    assert delivery.dispatch(ledger, "demo", now=at(30)) is None
    assert delivery.skip_reason(ledger, "demo") == f"challenge demo is {state}: nothing to deliver"
    assert statuses(ledger) == [(0, "planned"), (1, "planned"), (2, "planned")]


def test_a_named_release_goes_out_whenever_it_is_scheduled_after_the_ones_before_it(tmp_path, ledger):
    register(tmp_path, ledger)
    report = delivery.dispatch(ledger, "demo", now=at(-10), release=1)
    assert [o.index for o in report.delivered] == [0, 1]  # releases arrive in order (issue 10, point 2)
    assert statuses(ledger) == [(0, "delivered"), (1, "delivered"), (2, "planned")]


def test_listeners_hear_each_step(tmp_path, ledger):
    register(tmp_path, ledger)
    heard = []
    with delivery.watch(lambda release, step, detail: heard.append((release, step))):
        delivery.dispatch(ledger, "demo", now=at(0))
    assert heard == [("", "due"), ("release_0", "claim"), ("", "stage"), ("release_0", "save"),
                     ("release_0", "upload"), ("release_0", "delivered")]


def test_error_text_is_one_line():
    assert delivery.error_text(ValueError("bad\nvalue")) == "ValueError: bad"
    assert delivery.error_text(DestinationError("s3://b/p", "refused")) == "destination s3://b/p: refused"
    assert delivery.error_text(TimeoutError()) == "timed out"
