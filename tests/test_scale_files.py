"""The scale-out files nothing here can run (Docker, Kubernetes, Helm): they parse, and they
agree with what Prefect itself says.

- the Kubernetes base job template declares the very job variables of
  ``prefect work-pool get-default-base-job-template --type kubernetes`` and a real Prefect
  server accepts it as a work pool's template;
- the Helm values configure what docs/scale-out.md promises (API replicas, one separate
  background-services process, external PostgreSQL and Redis, the ppipe pool);
- the Dockerfile is made of known instructions, copies only the wheel and the pins, and the
  wheel it installs carries the flow's module (the deployments name it by module path).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "kubernetes" / "base-job-template.json"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
#: What the ppipe template adds to Prefect's default: secrets into the flow-run container.
ADDED_TO_CONTAINER = {"envFrom", "volumeMounts"}


def _load_yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "helm" / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def default_template(prefect_server) -> dict:
    """What ``prefect work-pool get-default-base-job-template --type kubernetes`` prints (run for real)."""
    from ppipe.orchestration import server

    env = {**server.server_environment(), "PREFECT_API_URL": prefect_server}
    out = subprocess.run(
        [server.prefect_executable(), "work-pool", "get-default-base-job-template", "--type", "kubernetes"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stdout
    return json.loads(out)


def _placeholders(value) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def _without_defaults(schema: dict) -> dict:
    return {name: {k: v for k, v in spec.items() if k != "default"} for name, spec in schema["properties"].items()}


def test_job_variables_are_prefects_kubernetes_ones(default_template):
    ours = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert _without_defaults(ours["variables"]) == _without_defaults(default_template["variables"])
    assert _placeholders(ours["job_configuration"]) <= set(ours["variables"]["properties"])


def test_template_only_adds_the_secrets_to_prefects_job(default_template):
    ours = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    pod = ours["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"secretRef": {"name": "ppipe-ledger"}} in container["envFrom"]  # PPIPE_DATABASE_URL
    assert any(ref["secretRef"]["name"] == "ppipe-storage" for ref in container["envFrom"])
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert mounted == {v["name"] for v in pod["volumes"]}
    # Remove our additions: what remains is Prefect's default job, unchanged.
    for key in ADDED_TO_CONTAINER:
        container.pop(key)
    pod.pop("volumes")
    assert ours["job_configuration"] == default_template["job_configuration"]


def test_a_prefect_server_accepts_the_template(prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"ppipe-k8s-{uuid.uuid4().hex[:8]}"
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="kubernetes", base_job_template=template))
        try:
            stored = client.read_work_pool(name)
            assert stored.base_job_template == template
        finally:
            client.delete_work_pool(name)


def test_server_values_run_api_replicas_apart_from_one_services_process():
    values = _load_yaml("prefect-server-values.yaml")
    assert values["server"]["replicaCount"] >= 2
    services = values["backgroundServices"]
    assert services["runAsSeparateDeployment"] is True and services["replicaCount"] == 1
    assert services["messaging"]["broker"] == services["messaging"]["cache"] == "prefect_redis.messaging"
    assert services["messaging"]["redis"]["host"] and services["messaging"]["docket"]["existingSecret"]
    assert values["migrations"]["enabled"] is True
    # External PostgreSQL and Redis, credentials from Secrets, never inline.
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    assert values["externalDatabase"]["existingSecret"] and values["externalDatabase"]["connectionStringSecretKey"]
    assert "password" not in json.dumps(values["externalDatabase"]).lower().replace("secretkey", "")
    assert values["global"]["prefect"]["image"]["prefectTag"].startswith(_prefect_version())


def test_worker_values_poll_the_ppipe_kubernetes_pool_at_prefects_default_or_slower():
    from prefect.settings import get_current_settings

    config = _load_yaml("prefect-worker-values.yaml")["worker"]["config"]
    assert config["type"] == "kubernetes" and config["workPool"] == "ppipe"
    assert config["queryInterval"] >= get_current_settings().worker.query_seconds
    assert "baseJobTemplate" in config  # filled with --set-file from deploy/kubernetes


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


# --- the Dockerfile ------------------------------------------------------------------------

INSTRUCTIONS = {"FROM", "ARG", "ENV", "RUN", "COPY", "ADD", "USER", "WORKDIR", "CMD", "ENTRYPOINT",
                "LABEL", "EXPOSE", "VOLUME", "HEALTHCHECK", "SHELL", "STOPSIGNAL", "ONBUILD"}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            logical.append(pending)
            pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    pairs = []
    for entry in logical:
        keyword, _, rest = entry.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_parses_and_installs_only_the_wheel():
    pairs = dockerfile_instructions((DEPLOY / "docker" / "Dockerfile").read_text(encoding="utf-8"))
    unknown = [keyword for keyword, _ in pairs if keyword not in INSTRUCTIONS]
    assert not unknown, f"unknown Dockerfile instructions: {unknown}"
    keywords = [keyword for keyword, _ in pairs]
    assert "FROM" in keywords and keywords.index("FROM") <= min(i for i, k in enumerate(keywords) if k != "ARG")
    copied = [args.split()[0] for keyword, args in pairs if keyword == "COPY"]
    assert copied == ["constraints.txt", "dist/"]  # no checkout of the project in the image
    for source in copied:
        assert source == "dist/" or (ROOT / source).exists()
    run = " ".join(args for keyword, args in pairs if keyword == "RUN")
    assert "-c /opt/ppipe/constraints.txt" in run and "ppipe-*.whl)[scale]" in run
    cmd = json.loads(next(args for keyword, args in pairs if keyword == "CMD"))
    assert cmd[:3] == ["prefect", "worker", "start"] and cmd[cmd.index("--pool") + 1] == "ppipe"
    user = next(args for keyword, args in pairs if keyword == "USER")
    assert user != "root" and user != "0"


def test_the_wheel_carries_the_flow_module(tmp_path):
    """The image installs ppipe from its wheel: the flow's module must be in it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, timeout=300, capture_output=True)
    wheel = next(tmp_path.glob("ppipe-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flows/dispatch.py" in names and "ppipe/__init__.py" in names
