"""Transient failures are retried with backoff; terminal ones fail their task on the first attempt.

Against the real local servers: moto (S3, with authentication on for refused keys), the GCS
emulator and the Drive v2 test server. Each case runs the dispatch flow in Prefect's test
harness with 2 retries 0.1 s apart and counts the runs of the task that met the failure.
"""

from __future__ import annotations

import uuid

import pytest

from ppipe import api
from ppipe.errors import DestinationError, PpipeError, SourceError, is_transient
from ppipe.ledger import Ledger
from tests.support.helpers import make_challenge, write_csv
from tests.support.servers import free_port, moto_process, post

RETRYING = {"retries": 2, "retry_delay": "0.1s", "timeout": "60s"}

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(tmp_path, name: str, destination: dict):
    """Register a 2-release challenge with ``destination`` and run the flow for release 0."""
    from ppipe.orchestration.flow import dispatch_challenge

    write_csv(tmp_path / "data.csv", 20)
    api.create(make_challenge(tmp_path, name=name, releases=2, destinations=[destination], delivery=RETRYING))
    return dispatch_challenge(challenge=name, release=0, return_state=True)


def task_runs(state, prefix: str) -> list:
    """The flow run's task runs whose name starts with ``prefix``, with their states."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        return [(run, client.read_task_run_states(run.id)) for run in runs if run.name.startswith(prefix)]


def assert_ran(state, prefix: str, times: int) -> None:
    runs = task_runs(state, prefix)
    assert len(runs) == 1, [run.name for run, _ in runs]
    run, states = runs[0]
    assert run.run_count == times and run.state.is_failed(), (run.name, run.run_count, run.state)
    waits = [s.state_details.scheduled_time - s.timestamp for s in states if s.name == "AwaitingRetry"]
    assert [round(w.total_seconds(), 1) for w in waits] == [0.1, 0.2][:times - 1], waits


def failure(name: str) -> str:
    (row,) = Ledger().releases(name)[:1]
    return row.error


def test_the_rule_ppipe_errors_are_terminal_unless_marked_others_are_retried():
    assert not is_transient(DestinationError("s3://b/p", "bucket name b is taken"))
    assert is_transient(DestinationError("s3://b/p", "cannot reach", transient=True))
    assert not is_transient(SourceError("data.csv", "changed since it was staged"))
    assert not is_transient(PpipeError("anything ppipe says on purpose"))
    assert is_transient(TimeoutError("task timed out")) and is_transient(ValueError("unmapped"))


# --- S3 (moto) -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusing_s3():
    """A moto server of its own with authentication on and no IAM user: every key is refused."""
    with moto_process(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing") as endpoint:
        post(f"{endpoint}/moto-api/reset-auth", b"0")
        yield endpoint


def test_s3_refused_credentials_fail_on_the_first_attempt_naming_the_fix(tmp_path, refusing_s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPPIPEREFUSED0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "refused-secret")
    state = run(tmp_path, "s3-terminal", {"kind": "s3", "bucket": f"ppipe-t-{uuid.uuid4().hex[:8]}",
                                          "region": "eu-west-1", "endpoint_url": refusing_s3})
    assert state.is_failed()
    assert_ran(state, "prepare", 1)
    error = failure("s3-terminal")
    assert "credentials refused (InvalidAccessKeyId" in error and "fix the AWS keys or profile" in error, error
    assert "\n" not in error


def test_s3_unreachable_endpoint_is_retried_with_backoff(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PPIPE_CONNECT_TIMEOUT", "1")
    state = run(tmp_path, "s3-transient", {"kind": "s3", "bucket": "ppipe-nowhere", "region": "eu-west-1",
                                           "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    assert state.is_failed()
    assert_ran(state, "prepare", 3)
    assert "cannot reach http://127.0.0.1" in failure("s3-transient")


# --- GCS (emulator) ------------------------------------------------------------------------


def test_gcs_missing_bucket_without_project_fails_on_the_first_attempt_naming_the_fix(tmp_path, gcs_server):
    state = run(tmp_path, "gcs-terminal", {"kind": "gcs", "bucket": f"ppipe-t-{uuid.uuid4().hex[:8]}",
                                           "endpoint_url": gcs_server})
    assert state.is_failed()
    assert_ran(state, "prepare", 1)
    assert "does not exist; set 'project' to have ppipe create it" in failure("gcs-terminal")


def test_gcs_unreachable_endpoint_is_retried_with_backoff(tmp_path, monkeypatch):
    monkeypatch.setenv("PPIPE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("PPIPE_RETRY_DEADLINE", "1")
    state = run(tmp_path, "gcs-transient", {"kind": "gcs", "bucket": "ppipe-nowhere",
                                            "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    assert state.is_failed()
    assert_ran(state, "prepare", 3)
    assert "cannot reach http://127.0.0.1" in failure("gcs-transient")


# --- Drive (the Drive v2 test server) ------------------------------------------------------


def test_drive_missing_parent_fails_on_the_first_attempt_naming_it(tmp_path, drive_routing, drive_key_file):
    state = run(tmp_path, "drive-terminal", {"kind": "drive", "parent": "no-such-folder",
                                             "service_account_file": str(drive_key_file)})
    assert state.is_failed()
    assert_ran(state, "prepare", 1)
    assert "parent folder no-such-folder does not exist" in failure("drive-terminal")


def test_drive_overloaded_is_retried_with_backoff(tmp_path, drive_routing, drive_key_file, drive_parent, drive_server):
    drive_server.fail_next(50, 503, "backendError")  # more than 3 attempts of the prepare task need
    try:
        state = run(tmp_path, "drive-transient", {"kind": "drive", "parent": drive_parent,
                                                  "service_account_file": str(drive_key_file)})
    finally:
        drive_server.clear_faults()
    assert state.is_failed()
    assert_ran(state, "prepare", 3)
    assert "Drive answered 503" in failure("drive-transient")
