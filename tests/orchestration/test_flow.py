"""The dispatch flow in Prefect's test harness: what is due goes out, outcomes and artifacts are recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ppipe import api
from ppipe.ledger import Ledger
from ppipe.orchestration.limits import ensure_limits
from tests.support.helpers import make_challenge, write_csv

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
FAST = {"retries": 1, "retry_delay": "0.1s", "timeout": "60s"}

pytestmark = pytest.mark.usefixtures("prefect_harness")


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def register(tmp_path, name="demo", **overrides):
    write_csv(tmp_path / "data.csv", 90)
    (tmp_path / "out").mkdir(exist_ok=True)
    challenge = make_challenge(tmp_path, name=name, delivery=FAST, **overrides)
    api.create(challenge)
    return challenge


def dispatch(name, **kwargs):
    from ppipe.orchestration.flow import dispatch_challenge

    return dispatch_challenge(challenge=name, return_state=True, **kwargs)


def task_run_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(run.name for run in runs)


def artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {artifact.key: artifact for artifact in found}


def test_due_releases_are_delivered_with_named_task_runs(tmp_path):
    register(tmp_path)
    state = dispatch("demo", now=at(1.5))
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    folder = tmp_path / "out" / "demo"
    assert task_run_names(run_id) == sorted([
        f"prepare {folder}", "stage demo", "save release_0", "save release_1",
        f"upload release_0 -> {folder}", f"upload release_1 -> {folder}", f"upload manifest.json -> {folder}",
    ])
    rows = Ledger().releases("demo")
    assert [row.status for row in rows] == ["delivered", "delivered", "planned"]
    assert {row.flow_run_id for row in rows[:2]} == {str(run_id)}
    assert all(row.task_run_id for row in rows[:2]) and rows[0].task_run_id != rows[1].task_run_id
    assert state.result()["next_due"] == at(2).isoformat()


def test_catch_up_then_rerun_then_finished_with_artifacts(tmp_path):
    register(tmp_path)
    first = dispatch("demo", now=at(30))
    assert first.is_completed(), first.message
    assert [row.status for row in Ledger().releases("demo")] == ["delivered"] * 3
    assert Ledger().get("demo").state == "finished"

    found = artifacts(first.state_details.flow_run_id)
    table = found["ppipe-demo-releases"]
    assert table.type == "table" and table.data.count('"delivered"') == 3
    summary = found["ppipe-demo-summary"]
    assert summary.type == "markdown"
    assert "3 file(s)" in summary.data and "the challenge is finished" in summary.data

    again = dispatch("demo", now=at(30))
    assert again.is_completed()
    assert again.result() == {"challenge": "demo", "skipped": "challenge demo is finished: nothing to deliver"}
    assert task_run_names(again.state_details.flow_run_id) == []
    assert [row.attempts for row in Ledger().releases("demo")] == [1, 1, 1]


def test_rerun_of_an_active_challenge_with_nothing_due_does_nothing(tmp_path):
    register(tmp_path)
    assert dispatch("demo", now=at(0)).is_completed()
    again = dispatch("demo", now=at(0.5))
    assert again.is_completed()
    assert again.result()["delivered"] == []
    assert task_run_names(again.state_details.flow_run_id) == [f"prepare {tmp_path / 'out' / 'demo'}"]
    assert "nothing was due" in artifacts(again.state_details.flow_run_id)["ppipe-demo-summary"].data


def test_a_failing_release_fails_the_run_but_not_the_others(tmp_path):
    missing = tmp_path / "blocker" / "out"
    register(tmp_path, assign="round_robin", destinations=[
        {"kind": "local", "path": str(tmp_path / "out")}, {"kind": "local", "path": str(missing)},
    ])
    (tmp_path / "blocker").write_text("a file where a folder should be")  # after create, which checks it
    state = dispatch("demo", now=at(30))
    assert state.is_failed()
    assert "release_1 ->" in state.message and "Not a directory" in state.message
    rows = Ledger().releases("demo")
    assert [(row.index, row.status) for row in rows] == [(0, "delivered"), (1, "failed"), (2, "delivered")]
    assert "\n" not in rows[1].error and str(missing.parent) in rows[1].error
    assert rows[1].flow_run_id == str(state.state_details.flow_run_id)
    found = artifacts(state.state_details.flow_run_id)
    assert '"failed"' in found["ppipe-demo-releases"].data
    assert "Not a directory" in found["ppipe-demo-summary"].data
    assert Ledger().get("demo").state == "active"


def test_a_paused_challenge_is_skipped(tmp_path):
    register(tmp_path)
    Ledger().set_state("demo", "paused")
    state = dispatch("demo", now=at(30))
    assert state.is_completed()
    assert state.result()["skipped"] == "challenge demo is paused: nothing to deliver"
    assert [row.status for row in Ledger().releases("demo")] == ["planned"] * 3


def test_a_challenge_not_in_the_ledger_is_registered_from_its_file(tmp_path, monkeypatch):
    folder = tmp_path / "deployments"
    folder.mkdir()
    write_csv(folder / "data.csv", 60)
    (folder / "tiny.yaml").write_text(
        "name: tiny\nsource: data.csv\nreleases: 2\nschedule: {start: '2026-12-01T09:00:00Z', every: 60s}\n"
        "destinations: [{kind: local, path: out}]\n")
    (folder / "out").mkdir()
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(folder))
    state = dispatch("tiny", now=at(0))
    assert state.is_completed(), state.message
    assert (folder / "out" / "tiny" / "release_0.csv").is_file()


def test_io_tasks_take_the_challenge_retry_policy(tmp_path):
    from ppipe.orchestration.flow import task_steps

    challenge = make_challenge(tmp_path, delivery={"retries": 4, "retry_delay": "3s", "timeout": "90s"})
    steps = task_steps(challenge)
    assert steps.upload.retries == 4 and steps.upload.retry_delay_seconds == [3, 6, 12, 24]
    assert steps.upload.timeout_seconds == 90 and steps.grant.retries == 4
    assert steps.save.retries == 0 and steps.save.timeout_seconds == 90


def test_each_destination_of_a_release_is_delivered_by_its_own_submitted_task(tmp_path):
    """Two destinations: each (release, destination) is a task submitted to the task runner,
    with exactly one completed upload task run; the providers' concurrency limits exist."""
    from prefect.client.orchestration import get_client

    register(tmp_path, destinations=[
        {"kind": "local", "path": str(tmp_path / "out")}, {"kind": "local", "path": str(tmp_path / "mirror")},
    ])
    state = dispatch("demo", now=at(0))
    assert state.is_completed(), state.message
    names = task_run_names(state.state_details.flow_run_id)
    folders = [tmp_path / "out" / "demo", tmp_path / "mirror" / "demo"]
    for folder in folders:
        assert names.count(f"deliver release_0 -> {folder}") == 1
        assert names.count(f"upload release_0 -> {folder}") == 1
        assert (folder / "release_0.csv").exists()
    rows = Ledger().releases("demo")
    delivered = [row for row in rows if row.status == "delivered"]
    assert len(delivered) == 2 and len({row.task_run_id for row in delivered}) == 2
    assert ensure_limits(["drive"]) == ["ppipe-upload-drive"]  # what deploy does for every provider
    with get_client(sync_client=True) as client:
        local = client.read_global_concurrency_limit_by_name("ppipe-upload-local")  # the run's own provider
        drive = client.read_global_concurrency_limit_by_name("ppipe-upload-drive")
    assert local.limit >= 1 and local.slot_decay_per_second == 0
    assert drive.slot_decay_per_second > 0  # a rate limit for Drive's quota


def test_another_version_of_the_source_on_a_worker_fails_its_stage_task_once(tmp_path, ppipe_home, monkeypatch):
    """A worker (its own PPIPE_HOME, the organiser's ledger) whose source has other bytes than
    the challenge was created from: the stage task fails once, never retried, the rows say why."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    register(tmp_path)
    monkeypatch.setenv("PPIPE_DATABASE_URL", f"sqlite:///{ppipe_home / 'ledger.db'}")
    monkeypatch.setenv("PPIPE_HOME", str(tmp_path / "worker"))
    write_csv(tmp_path / "data.csv", 91)  # the worker's copy: another version at the same path
    state = dispatch("demo", now=at(0))
    assert state.is_failed()
    [row, *_] = Ledger().releases("demo")
    assert row.status == "failed" and "is not the version challenge demo was created from" in row.error
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=only_this_run)
    [stage] = [run for run in runs if run.name == "stage demo"]
    assert stage.state.is_failed() and stage.run_count == 1
    assert not (tmp_path / "out" / "demo" / "release_0.csv").exists()
