"""The read-only commands start fast: they import neither Prefect nor polars (nor, for
``--help``, the ledger's SQLAlchemy or the model's pydantic). Each command runs in a fresh
interpreter, which then reports the heavy packages it loaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "polars", "pyarrow", "numpy", "fsspec", "sqlalchemy", "pydantic")
PROBE = """
import json, sys
from ppipe.cli import main
sys.argv = ["ppipe", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write("\\nLOADED " + json.dumps(sorted(m for m in {heavy} if m in sys.modules)) + "\\n")
""".format(heavy=HEAVY)


def loaded_by(*args: str, home: Path) -> list[str]:
    env = {**os.environ, "PPIPE_HOME": str(home), "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    marker = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    assert marker, done.stderr
    return json.loads(marker[-1][len("LOADED "):])


@pytest.fixture
def spec(tmp_path) -> Path:
    folder = tmp_path / "deployments"
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "deployments" / "data" / "sensors_300.csv", folder / "data")
    text = (ROOT / "deployments" / "sensors-mini.yaml").read_text()
    path = folder / "sensors-mini.yaml"
    path.write_text(text)
    return path


def test_help_loads_no_heavy_package(tmp_path):
    assert loaded_by("--help", home=tmp_path) == []


@pytest.mark.parametrize("command", [["list"], ["show", "sensors-mini"], ["show", "nope"]])
def test_looking_commands_load_no_heavy_package(tmp_path, spec, command):
    """``list`` and ``show`` read the ledger without the ORM (ppipe.ledger_view)."""
    from ppipe import api
    from ppipe.settings import environment

    with environment(PPIPE_HOME=str(tmp_path)):
        api.create(api.load(spec))
    loaded = loaded_by(*command, home=tmp_path)
    assert set(loaded) <= {"pydantic"}, loaded  # typer checks options' values with pydantic


def test_plan_of_a_local_csv_loads_no_heavy_package(tmp_path, spec):
    """Its header and row count are read without polars (ppipe.data.text_count)."""
    assert set(loaded_by("plan", str(spec), home=tmp_path)) <= {"pydantic"}


def test_plan_of_another_source_loads_polars_but_not_prefect(tmp_path, spec):
    """A Parquet, JSON, compressed or remote source is read with polars, never with Prefect."""
    import polars as pl

    pl.read_csv(spec.parent / "data" / "sensors_300.csv").write_parquet(spec.parent / "data" / "sensors_300.parquet")
    spec.write_text(spec.read_text().replace("sensors_300.csv", "sensors_300.parquet"))
    loaded = loaded_by("plan", str(spec), home=tmp_path)
    assert "polars" in loaded and "prefect" not in loaded, loaded
