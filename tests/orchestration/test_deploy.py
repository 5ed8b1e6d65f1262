"""Challenges as deployments on a real local Prefect server: schedule, parameters, pool, pause/resume."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from dateutil.rrule import rrulestr
from typer.testing import CliRunner

from ppipe import api
from ppipe.orchestration import deploy, server
from ppipe.cli import app
from ppipe.ledger import Ledger
from tests.support.helpers import make_challenge, write_csv

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(autouse=True)
def own_pool(monkeypatch, request):
    """A work pool per test, so tests do not see each other's pools."""
    pool = f"ppipe-test-{abs(hash(request.node.name)) % 10**8}"
    monkeypatch.setenv("PPIPE_WORK_POOL", pool)
    return pool


def future_challenge(tmp_path, name="sched", releases=4, every="1h"):
    write_csv(tmp_path / "data.csv", 40)
    (tmp_path / "out").mkdir(exist_ok=True)
    start = (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    return make_challenge(tmp_path, name=name, releases=releases, schedule={"start": start.isoformat(), "every": every})


def read_deployment(name):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deploy.deployment_name(name))
        return deployment, client.read_deployment_schedules(deployment.id)


def scheduled_times(deployment_id, expected: int, timeout: float = 45) -> list[datetime]:
    """Start times of the runs Prefect's scheduler made, once it made ``expected`` of them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
            if len(runs) >= expected or time.monotonic() > deadline:
                return sorted(run.expected_start_time for run in runs)
            time.sleep(1)


def test_deployment_runs_at_exactly_the_release_times(tmp_path, own_pool):
    challenge = future_challenge(tmp_path)
    deployment_id = api.deploy(challenge)
    deployment, schedules = read_deployment("sched")
    assert deployment.id == deployment_id
    assert deployment.parameters == {"challenge": "sched"}
    # By module path, nothing to pull: a worker anywhere with ppipe installed runs it.
    assert deployment.work_pool_name == own_pool and deployment.entrypoint == deploy.MODULE_ENTRYPOINT
    assert not deployment.pull_steps and deployment.path is None
    assert deployment.job_variables == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"}}
    assert deployment.parameter_openapi_schema["properties"].keys() >= {"challenge", "now", "release"}
    assert len(schedules) == 1 and schedules[0].active
    releases = [row.scheduled_at for row in Ledger().releases("sched")]
    rule = schedules[0].schedule
    assert rule.timezone == "UTC"
    assert [t.replace(tzinfo=timezone.utc) for t in rrulestr(rule.rrule)] == releases
    # Prefect's scheduler makes the next few runs ahead (at least 3), each at a release time.
    planned = scheduled_times(deployment_id, 3)
    assert len(planned) >= 3 and planned == releases[:len(planned)]


def test_any_interval_is_whole_seconds(tmp_path):
    challenge = future_challenge(tmp_path, releases=3, every="90s")
    assert deploy.rrule(challenge).endswith("RRULE:FREQ=SECONDLY;INTERVAL=90;COUNT=3")
    odd = future_challenge(tmp_path, releases=3, every="1.5s")
    with pytest.raises(Exception, match="schedule.every: 1.5s: a Prefect schedule needs a whole number"):
        deploy.rrule(odd)


def test_deploy_by_name_registers_from_the_deployments_folder(tmp_path, monkeypatch):
    challenge = future_challenge(tmp_path, name="byname")
    folder = tmp_path / "deployments"
    folder.mkdir()
    (folder / "byname.yaml").write_text(yaml.safe_dump({k: v for k, v in challenge.to_spec().items() if k != "id"}))
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(folder))
    result = CliRunner().invoke(app, ["deploy", "byname"])
    assert result.exit_code == 0, result.output
    assert "deployed byname: dispatch-challenge/byname" in result.output
    assert Ledger().exists("byname")
    assert read_deployment("byname")[0].parameters == {"challenge": "byname"}


def test_deploy_of_an_unknown_name_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["deploy", "nope"])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file"


def test_pause_resume_cancel_change_ledger_and_schedule(tmp_path):
    api.deploy(future_challenge(tmp_path, name="toggle"))
    runner = CliRunner()

    def schedule_state():
        deployment, schedules = read_deployment("toggle")
        return Ledger().get("toggle").state, deployment.paused, [s.active for s in schedules]

    assert schedule_state() == ("active", False, [True])
    result = runner.invoke(app, ["pause", "toggle"])
    assert result.exit_code == 0 and "toggle: paused; its schedule is paused" in result.output
    assert schedule_state() == ("paused", True, [False])
    assert runner.invoke(app, ["resume", "toggle"]).exit_code == 0
    assert schedule_state() == ("active", False, [True])
    assert runner.invoke(app, ["cancel", "toggle"]).exit_code == 0
    assert schedule_state() == ("cancelled", True, [False])
    refused = runner.invoke(app, ["resume", "toggle"])
    assert refused.exit_code == 2 and "is cancelled: cannot make it active" in refused.output


def test_pause_of_a_challenge_without_deployment(tmp_path):
    api.create(future_challenge(tmp_path, name="nodeploy"))
    result = CliRunner().invoke(app, ["pause", "nodeploy"])
    assert result.exit_code == 0 and "it has no deployment yet" in result.output
    assert Ledger().get("nodeploy").state == "paused"


def test_redeploying_a_paused_challenge_keeps_it_paused(tmp_path):
    challenge = future_challenge(tmp_path, name="stayoff")
    api.deploy(challenge)
    deploy.pause("stayoff")
    api.deploy(challenge)
    deployment, schedules = read_deployment("stayoff")
    assert deployment.paused and [s.active for s in schedules] == [False]


def test_prefect_yaml_is_in_sync_with_the_deployments_folder():
    assert (ROOT / "prefect.yaml").read_text(encoding="utf-8") == deploy.prefect_yaml_text(
        ROOT / "deployments", work_pool="ppipe"), "run: ppipe deploy --write-prefect-yaml"


def test_prefect_deploy_all_publishes_the_same_deployments(tmp_path, prefect_api, own_pool):
    """`prefect deploy --all` (run from the project root) gives what `ppipe deploy` gives."""
    text = deploy.prefect_yaml_text(ROOT / "deployments", work_pool=own_pool)
    config = tmp_path / "prefect.yaml"
    config.write_text(text)
    deploy.ensure_work_pool(own_pool)
    env = {**server.server_environment(), "PREFECT_API_URL": prefect_api, "PWD": str(ROOT)}
    done = subprocess.run(
        [server.prefect_executable(), "--no-prompt", "deploy", "--all", "--prefect-file", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for entry in yaml.safe_load(text)["deployments"]:
        deployment, schedules = read_deployment(entry["name"])
        assert deployment.parameters == entry["parameters"] == {"challenge": entry["name"]}
        assert deployment.work_pool_name == own_pool and deployment.entrypoint == deploy.MODULE_ENTRYPOINT
        assert [s.schedule.rrule for s in schedules] == [entry["schedules"][0]["rrule"]]
        assert not deployment.pull_steps and deployment.path is None  # no local folder
        assert deployment.job_variables == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"}}
