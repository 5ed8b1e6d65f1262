"""Health checks on their own schedule: `ppipe deploy` gives a challenge with live endpoints a second
deployment (the health-check flow, an interval of health_every, same pool), pause/resume/cancel/delete act
on it, and a run of that flow against the real Prefect server calls a real uvicorn endpoint and records it."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
import yaml
from typer.testing import CliRunner

from ppipe import api
from ppipe.cli import app
from ppipe.endpoints import side, store
from ppipe.ledger import Ledger
from ppipe.orchestration import deploy
from ppipe.participants import service
from tests.endpoints.test_participant_side import LOOPBACK_ENDPOINT
from tests.orchestration.test_deploy import own_pool  # noqa: F401 - a work pool per test
from tests.orchestration.test_flow import artifacts
from tests.participants.conftest import REQUESTS, make_challenge

pytestmark = pytest.mark.usefixtures("prefect_api")

EVERY_MINUTE = {**REQUESTS, "endpoint": {**LOOPBACK_ENDPOINT, "health_every": "1m"}}


def read(name: str):
    """The deployment called ``name`` (flow/deployment) and its schedules; None when there is none."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
        return deployment, client.read_deployment_schedules(deployment.id)


def states(name: str) -> list[tuple[bool, list[bool]]]:
    """(paused, [schedule active]) of the dispatch and the health deployment."""
    found = [read(deployment) for deployment in deploy.deployment_names(name)]
    return [(d.paused, [s.active for s in schedules]) for d, schedules in found]


def test_deploy_adds_a_health_deployment_on_the_interval(tmp_path, own_pool):  # noqa: F811
    challenge = make_challenge(tmp_path, Ledger(), requests=EVERY_MINUTE)
    result = CliRunner().invoke(app, ["deploy", challenge.name])
    assert result.exit_code == 0, result.output
    assert f"endpoint health checks: check-endpoints/{challenge.name} every 60s" in result.output
    deployment, schedules = read(deploy.health_deployment_name(challenge.name))
    assert deployment.entrypoint == deploy.HEALTH_MODULE_ENTRYPOINT and not deployment.pull_steps
    assert deployment.parameters == {"challenge": challenge.name} and deployment.work_pool_name == own_pool
    assert len(schedules) == 1 and schedules[0].active and not deployment.paused
    assert schedules[0].schedule.interval == timedelta(minutes=1)
    anchor = schedules[0].schedule.anchor_date.astimezone(timezone.utc)
    assert anchor == challenge.schedule.start.astimezone(timezone.utc)
    assert read(deploy.deployment_name(challenge.name)) is not None  # the dispatch deployment as before


def test_a_challenge_without_endpoints_gets_no_health_deployment(tmp_path):
    challenge = make_challenge(tmp_path, Ledger())
    result = CliRunner().invoke(app, ["deploy", challenge.name])
    assert result.exit_code == 0 and "health" not in result.output
    assert read(deploy.deployment_name(challenge.name)) is not None
    assert read(deploy.health_deployment_name(challenge.name)) is None


def test_prefect_yaml_lists_the_health_deployment_too(tmp_path):
    with_endpoints = make_challenge(tmp_path, Ledger(), requests=EVERY_MINUTE)
    without = make_challenge(tmp_path, Ledger())
    folder = tmp_path / "deployments"
    folder.mkdir()
    for challenge in (with_endpoints, without):
        spec = {k: v for k, v in challenge.to_spec().items() if k != "id"}
        (folder / f"{challenge.name}.yaml").write_text(yaml.safe_dump(spec))
    document = yaml.safe_load(deploy.prefect_yaml_text(folder, work_pool="ppipe"))
    entries = {(d["entrypoint"], d["name"]): d for d in document["deployments"]}
    assert set(entries) == {(deploy.MODULE_ENTRYPOINT, with_endpoints.name), (deploy.MODULE_ENTRYPOINT, without.name),
                            (deploy.HEALTH_MODULE_ENTRYPOINT, with_endpoints.name)}
    [schedule] = entries[(deploy.HEALTH_MODULE_ENTRYPOINT, with_endpoints.name)]["schedules"]
    assert schedule["interval"] == 60 and schedule["active"] and schedule["timezone"] == "UTC"


def test_pause_resume_cancel_delete_act_on_both_deployments(tmp_path):
    name = make_challenge(tmp_path, Ledger(), requests=EVERY_MINUTE).name
    api.deploy(name)
    runner = CliRunner()
    assert states(name) == [(False, [True])] * 2
    assert runner.invoke(app, ["pause", name]).exit_code == 0
    assert states(name) == [(True, [False])] * 2
    assert runner.invoke(app, ["resume", name]).exit_code == 0
    assert states(name) == [(False, [True])] * 2
    assert runner.invoke(app, ["cancel", name]).exit_code == 0
    assert states(name) == [(True, [False])] * 2
    result = runner.invoke(app, ["delete", name, "--yes"])
    assert result.exit_code == 0, result.output
    assert [read(deployment) for deployment in deploy.deployment_names(name)] == [None, None]


def test_the_health_flow_calls_each_endpoint_and_records_it(tmp_path, services):
    from ppipe.orchestration.health import check_endpoints

    ledger = Ledger()
    name = make_challenge(tmp_path, ledger, requests=EVERY_MINUTE).name
    for participant, service_name in (("good", "correct"), ("down", "slow")):
        service.add(name, participant, ledger=ledger)
        side.register(ledger, name, participant, services[service_name] + "/predict")
    state = check_endpoints(challenge=name, return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["checked"] == {"good": "ok", "down": "timeout"}
    health = {who: call.outcome for who, call in store.calls(ledger, name, kinds=["health"])}
    assert health == {"good": "ok", "down": "timeout"}
    run_id = state.state_details.flow_run_id
    board = {row["participant"]: row for row in json.loads(artifacts(run_id)[f"ppipe-{name}-leaderboard"].data)}
    assert board["good"]["uptime"] == 1.0 and board["down"]["uptime"] == 0.0
    # A second run right away (a late run behind it, say) does not call again.
    assert check_endpoints(challenge=name)["checked"] == {}
    assert len(store.calls(ledger, name, kinds=["health"])) == 2


def test_the_health_flow_does_nothing_for_a_challenge_that_is_not_active(tmp_path, services):
    from ppipe.orchestration.health import check_endpoints

    ledger = Ledger()
    name = make_challenge(tmp_path, ledger, requests=EVERY_MINUTE).name
    service.add(name, "good", ledger=ledger)
    side.register(ledger, name, "good", services["correct"] + "/predict")
    api.pause(name)
    assert check_endpoints(challenge=name) == {"challenge": name, "skipped": f"challenge {name} is paused"}
    assert check_endpoints(challenge="gone")["skipped"] == "challenge gone is not in the ledger"
    assert store.calls(ledger, name, kinds=["health"]) == []
