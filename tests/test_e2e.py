"""End to end: a process worker runs the scheduled flow and delivers every release to a folder and S3."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from prefect.client.orchestration import get_client

from ppipe import api
from ppipe.orchestration import deploy, server
from ppipe.ledger import Ledger
from tests.support.helpers import make_challenge, write_csv

RELEASES, EVERY = 3, 6

pytestmark = pytest.mark.slow


def wait_finished(name: str, worker: server.Worker, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Ledger().get(name).state == "finished":
            return True
        if worker.process.poll() is not None:
            return False
        time.sleep(1)
    return False


def flow_run_states(deployment_id) -> list[str]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return sorted(run.state_type.value for run in runs if run.state_type.value != "SCHEDULED")


def test_worker_delivers_every_release_to_a_folder_and_s3(tmp_path, prefect_api, s3_server, monkeypatch):
    import boto3

    monkeypatch.setenv("PPIPE_WORK_POOL", "ppipe-e2e")
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    write_csv(tmp_path / "data.csv", 60)
    (tmp_path / "out").mkdir()
    start = (datetime.now(timezone.utc) + timedelta(seconds=12)).replace(microsecond=0)
    challenge = make_challenge(
        tmp_path, name="e2e", releases=RELEASES, schedule={"start": start.isoformat(), "every": f"{EVERY}s"},
        destinations=[{"kind": "local", "path": str(tmp_path / "out")},
                      {"kind": "s3", "bucket": bucket, "region": "eu-west-1", "endpoint_url": s3_server}],
        delivery={"retries": 2, "retry_delay": "1s", "timeout": "60s"},
    )
    api.create(challenge)
    deployment_id = deploy.deploy(challenge)
    worker = server.start_worker("ppipe-e2e", cwd=deploy.project_root(), log=tmp_path / "worker.log")
    try:
        finished = wait_finished("e2e", worker, timeout=120)
        settled = deploy.wait_settled(deployment_id, timeout=60)
    finally:
        worker.stop()
    output = worker.output()
    assert finished, f"not finished; worker output:\n{output[-4000:]}"
    assert settled, f"runs not settled; worker output:\n{output[-4000:]}"
    problems = worker.problems()
    assert problems == [], "\n".join(problems)  # in full: a long line would be cut in a list's repr

    rows = Ledger().releases("e2e")
    assert [(row.index, row.status) for row in rows] == [(i, "delivered") for i in range(RELEASES) for _ in (0, 1)]
    assert all(row.flow_run_id and row.task_run_id for row in rows)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="eu-west-1")
    for row in rows:
        name = f"release_{row.index}.csv"
        if row.destination.startswith("s3://"):
            data = s3.get_object(Bucket=bucket, Key=f"e2e/{name}")["Body"].read()
        else:
            data = (tmp_path / "out" / "e2e" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
    assert (tmp_path / "out" / "e2e" / "manifest.json").is_file()
    assert s3.head_object(Bucket=bucket, Key="e2e/manifest.json")["ContentLength"] > 0
    states = flow_run_states(deployment_id)
    assert states and set(states) == {"COMPLETED"}, states
    with get_client(sync_client=True) as client:  # a finished challenge's schedule is paused
        assert client.read_deployment(deployment_id).paused
