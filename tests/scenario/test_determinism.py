"""Determinism: the same challenge run twice, in two processes with two PPIPE_HOMEs (and
different hash seeds), delivers byte-identical releases, labels files and referenced files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scenario.support import ROOT, SHAPES
from tests.scenario.test_delivery import ISSUE_EVENTS

RUN = """
import sys
from datetime import datetime, timezone
from ppipe import api
from ppipe.delivery import dispatch
from ppipe.ledger import Ledger
made = api.load(sys.argv[1])
api.create(made)
report = dispatch(Ledger(), made.name, now=datetime(2030, 1, 1, tzinfo=timezone.utc))
assert report.ok, report.failed
"""


def run_in_a_fresh_process(spec: Path, home: Path, hash_seed: str) -> None:
    env = {**os.environ, "PPIPE_HOME": str(home), "PYTHONHASHSEED": hash_seed}
    env.pop("PPIPE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", RUN, str(spec)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def delivered(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def without_times(manifest: bytes) -> dict:
    document = json.loads(manifest)
    document.pop("updated_at")
    for release in document["releases"]:
        release.pop("delivered_at")
    return document


def run_twice(tmp_path: Path, spec: dict) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Run ``spec`` in two processes (hash seeds 1 and 2) into runs ``a`` and ``b`` of ``tmp_path``,
    each with its own PPIPE_HOME and destination folder; returns what each delivered."""
    for seed, run in enumerate(("a", "b"), start=1):
        path = tmp_path / run / "challenge.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump({**spec, "destinations": [{"kind": "local", "path": str(tmp_path / run / "out")}]}))
        run_in_a_fresh_process(path, tmp_path / run / "home", str(seed))
    return delivered(tmp_path / "a" / "out"), delivered(tmp_path / "b" / "out")


@pytest.mark.parametrize("output", ["csv", "parquet"])
def test_two_runs_two_homes_identical_bytes(tmp_path, output):
    first, second = run_twice(tmp_path, {
        "name": "twice", "source": str(ROOT / "deployments" / "data" / "sensors.csv"), "releases": 7,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "output": {"row_id": True, "format": output, "shuffle": True, "seed": 5},
        "scenario": {"seed": 11, "events": ISSUE_EVENTS},
    })
    assert len(first) == 7 + 5 and first == second
    manifests = [(tmp_path / run / "out" / "twice" / "manifest.json").read_bytes() for run in ("a", "b")]
    assert without_times(manifests[0]) == without_times(manifests[1])
    records = [sorted((tmp_path / run / "home" / "scenario" / "twice").iterdir()) for run in ("a", "b")]
    assert [p.read_bytes() for p in records[0]] == [p.read_bytes() for p in records[1]]


def test_the_multimodal_example_twice(tmp_path):
    spec = yaml.safe_load((ROOT / "deployments" / "shapes.yaml").read_text())
    spec["source"], spec["files"]["root"] = str(SHAPES / "shapes.csv"), str(SHAPES)
    first, second = run_twice(tmp_path, spec)
    assert first == second and sum(name.endswith(".png") for name in first) >= 228
