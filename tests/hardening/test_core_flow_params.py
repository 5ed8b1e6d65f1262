"""Issue 10, point 12: the flow's parameters are hostile: the challenge name must be a slug, and a
deployment's runs cannot move the clock (``now``) or pick a future release (``release``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ppipe.ledger import Ledger
from tests.hardening.core_helpers import ROOT, spec

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(autouse=True)
def own_pool(monkeypatch, request):
    monkeypatch.setenv("PPIPE_WORK_POOL", f"ppipe-hc-{abs(hash(request.node.name)) % 10**8}")


# The flow runs in a process of its own, as under a worker: a flow run in this process would
# leave Prefect's event workers bound to this server for the tests that follow.
RUN = """
import json, sys
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from ppipe.orchestration.flow import dispatch_challenge

deployment_id, parameters = sys.argv[1], json.loads(sys.argv[2])
flow_run = None
if deployment_id:
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        parameters = {"challenge": "future", **parameters}
state = run_flow(dispatch_challenge, flow_run=flow_run, parameters=parameters, return_type="state")
print(json.dumps({"failed": state.is_failed(), "completed": state.is_completed(), "message": state.message or ""}))
"""


def _run(deployment_id: str, parameters: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, deployment_id, json.dumps(parameters)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["{tmp}/evil", "../evil", "evil/../../x", "Evil Name"])
def test_the_challenge_parameter_must_be_a_slug(tmp_path, name, monkeypatch):
    deployments = tmp_path / "deployments"
    deployments.mkdir()
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(deployments))
    evil = spec(tmp_path, "evil")
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(evil))  # an absolute path would load this file
    state = _run("", {"challenge": name.format(tmp=tmp_path)})
    assert state["failed"]
    assert "slug" in state["message"] or "challenge" in state["message"], state["message"]
    assert Ledger().list_challenges() == []
    assert not (tmp_path / "out").exists()


def _deployment_run(tmp_path, parameters: dict) -> dict:
    """A flow run of a real deployment, created on the server and executed as a worker would."""
    from ppipe import api
    from ppipe.challenge.specfile import parse_challenge

    challenge = parse_challenge(spec(tmp_path, "future", schedule={"start": "2030-01-01T00:00:00Z", "every": "1d"}))
    api.create(challenge)
    deployment_id = api.deploy("future")
    return _run(str(deployment_id), parameters)


@pytest.mark.parametrize("override", [{"now": "2031-01-01T00:00:00+00:00"}, {"release": 2}], ids=["now", "release"])
def test_a_deployment_run_refuses_now_and_release_overrides(tmp_path, override):
    state = _deployment_run(tmp_path, override)
    assert state["failed"]
    assert next(iter(override)) in state["message"], state["message"]
    assert {row.status for row in Ledger().releases("future")} == {"planned"}
    assert not (tmp_path / "out" / "future").exists() or not any((tmp_path / "out" / "future").iterdir())


def test_a_deployment_run_without_overrides_still_runs(tmp_path):
    state = _deployment_run(tmp_path, {})
    assert state["completed"], state["message"]
