"""Issue 10, point 12: the flow's parameters are hostile: the challenge name must be a slug, and a
deployment's runs cannot move the clock (``now``) or pick a future release (``release``)."""

from __future__ import annotations

import pytest
import yaml

from ppipe.ledger import Ledger
from tests.hardening.core_helpers import spec

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(autouse=True)
def own_pool(monkeypatch, request):
    monkeypatch.setenv("PPIPE_WORK_POOL", f"ppipe-hc-{abs(hash(request.node.name)) % 10**8}")


@pytest.mark.parametrize("name", ["{tmp}/evil", "../evil", "evil/../../x", "Evil Name"])
def test_the_challenge_parameter_must_be_a_slug(tmp_path, name, monkeypatch):
    from flows.dispatch import dispatch_challenge

    deployments = tmp_path / "deployments"
    deployments.mkdir()
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(deployments))
    evil = spec(tmp_path, "evil")
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(evil))  # an absolute path would load this file
    state = dispatch_challenge(challenge=name.format(tmp=tmp_path), return_state=True)
    assert state.is_failed()
    assert "slug" in state.message or "challenge" in state.message, state.message
    assert Ledger().list_challenges() == []
    assert not (tmp_path / "out").exists()


def _deployment_run(tmp_path, parameters: dict):
    """A flow run of a real deployment, created on the server and executed here as a worker would."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.dispatch import dispatch_challenge
    from ppipe import api
    from ppipe.challenge.specfile import parse_challenge

    challenge = parse_challenge(spec(tmp_path, "future", schedule={"start": "2030-01-01T00:00:00Z", "every": "1d"}))
    api.create(challenge)
    deployment_id = api.deploy("future")
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    return run_flow(dispatch_challenge, flow_run=flow_run, parameters={"challenge": "future", **parameters},
                    return_type="state")


@pytest.mark.parametrize("override", [{"now": "2031-01-01T00:00:00+00:00"}, {"release": 2}], ids=["now", "release"])
def test_a_deployment_run_refuses_now_and_release_overrides(tmp_path, override):
    state = _deployment_run(tmp_path, override)
    assert state.is_failed()
    assert next(iter(override)) in state.message, state.message
    assert {row.status for row in Ledger().releases("future")} == {"planned"}
    assert not (tmp_path / "out" / "future").exists() or not any((tmp_path / "out" / "future").iterdir())


def test_a_deployment_run_without_overrides_still_runs(tmp_path):
    state = _deployment_run(tmp_path, {})
    assert state.is_completed(), state.message
