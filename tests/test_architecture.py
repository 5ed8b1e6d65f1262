"""The architecture holds: import contracts (lint-imports), one settings module, a light CLI import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ppipe.cli import app
from ppipe.settings import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """The Prefect boundary, the layers and no cycles (pyproject's [tool.importlinter]), checked by import-linter."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"Contracts: [3-9]\d* kept, 0 broken", result.stdout), result.stdout[-2000:]


def test_every_ppipe_variable_is_read_in_settings_and_listed_by_help():
    read_elsewhere, named = [], set()
    for path in (ROOT / "ppipe").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"\bPPIPE_[A-Z_]+\b", text))
        if path.name != "settings.py" and re.search(r"environ(?:\.get)?\s*[\[(]\s*['\"]PPIPE_", text):
            read_elsewhere.append(str(path.relative_to(ROOT)))
    assert read_elsewhere == [], "PPIPE_* read outside ppipe/settings.py"
    assert named <= set(ENVIRONMENT), f"not documented in settings.ENVIRONMENT: {sorted(named - set(ENVIRONMENT))}"
    shown = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=400).output.split())
    assert [name for name in ENVIRONMENT if name not in shown] == []


def test_the_cli_imports_neither_prefect_nor_polars():
    """``ppipe --help``, ``list``, ``show`` and ``plan`` start without Prefect's or polars' import cost."""
    code = "import sys, ppipe.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'polars'}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
