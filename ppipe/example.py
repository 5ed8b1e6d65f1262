"""The bundled example dataset: synthetic sensor readings, generated deterministically.

``deployments/data/sensors.csv`` (10,000 rows) and ``sensors_300.csv`` are this module's
output (``python -m ppipe.example deployments/data``), committed so that the example
challenges work from a fresh clone.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

COLUMNS = ["timestamp", "sensor_id", "temperature", "humidity", "pressure", "vibration", "label"]


def readings(n_rows: int, seed: int = 42):
    """Yield ``n_rows`` rows: a reading every minute from 8 sensors, with rare anomalies (label 1)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(n_rows):
        at = start + timedelta(minutes=i)
        hour = at.hour + at.minute / 60
        anomaly = rng.random() < 0.03
        temperature = 20 + 5 * math.sin(2 * math.pi * hour / 24) + rng.gauss(0, 0.5) + (8 if anomaly else 0)
        yield [
            at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            f"S{i % 8:02d}",
            f"{temperature:.2f}",
            f"{55 + rng.gauss(0, 4):.1f}",
            f"{1013 + rng.gauss(0, 2):.1f}",
            f"{abs(rng.gauss(0.2, 0.05)) * (5 if anomaly else 1):.3f}",
            "1" if anomaly else "0",
        ]


def write_example(path: Path, n_rows: int = 10_000, seed: int = 42) -> Path:
    """Write the example CSV to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(readings(n_rows, seed))
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m ppipe.example [FOLDER]``: write sensors.csv (10,000 rows) and sensors_300.csv
    into FOLDER, the current folder by default (never into the installed package)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else ".").resolve()
    for name, rows in (("sensors.csv", 10_000), ("sensors_300.csv", 300)):
        print(f"wrote {write_example(folder / name, rows)} ({rows} rows)")


if __name__ == "__main__":
    main()
