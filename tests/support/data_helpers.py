"""Helpers shared by the data-path tests: challenges over a given source, CSV parsing as strings."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ppipe.challenge.spec import Challenge

NASTY_ROWS = [
    ["zip", "text", "amount", "day", "note"],
    ["00501", "a, b", "1.50", "2024-01-02", ""],
    ["", 'say "hi"\nnext line', "-3", "2024-02-03", "x"],
    ["0", "é ü 漢字 🙂", "", "", "trailing space "],
    ["10", "", "1e3", "2024-12-31", '"'],
]


def make_challenge(source, releases=3, output=None, name="data-test", **extra) -> Challenge:
    """A valid challenge over ``source`` (a URL or a Source dict) with a local destination."""
    return Challenge.model_validate(
        {
            "name": name,
            "source": source,
            "releases": releases,
            "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
            "destinations": [{"kind": "local", "path": "/tmp/ppipe-test-out"}],
            "output": output or {},
            **extra,
        }
    )


def write_nasty_csv(path: Path) -> Path:
    """A CSV with quotes, embedded newlines and commas, leading zeros, empty vs missing, non-ASCII.

    Row 2's first field is a quoted empty string; row 3's amount and day are missing (nothing).
    """
    lines = [
        "zip,text,amount,day,note",
        '00501,"a, b",1.50,2024-01-02,""',
        '"","say ""hi""\nnext line",-3,2024-02-03,x',
        "0,é ü 漢字 🙂,,,trailing space ",
        '10,"",1e3,2024-12-31,""""',
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def csv_rows(data: bytes | str | Path, delimiter: str = ",") -> list[list[str]]:
    """All rows (header included) of a CSV, every field a string, parsed by Python's csv module."""
    if isinstance(data, Path):
        data = data.read_bytes()
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return list(csv.reader(io.StringIO(data, newline=""), delimiter=delimiter))
