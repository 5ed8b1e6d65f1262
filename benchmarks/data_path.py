"""Benchmark of the data path: naive pandas vs ppipe (stage once + slice) vs the polars floor.

    /work/venv/bin/python benchmarks/data_path.py            # 5,000,000 rows (~330 MB), a few minutes
    /work/venv/bin/python benchmarks/data_path.py --rows 200000   # quick run

Each approach runs in its own child process; wall time is measured by the parent and peak
memory is the child's ru_maxrss (os.wait4). Sources are cached in benchmarks/.data/.
Release-time flatness: one release of a fixed size (1% of the *smaller* source, which is
rows/10) is timed at the start and the end of the large source and of a source 10x smaller,
so that "flat" compares the same amount of output work at different positions and sizes.
Both ppipe runs go through the public staging/release functions, so they take the path a
real challenge over these sources takes (CSV to CSV: the byte-range path, "offsets"); the
staged kind is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"
N_RELEASES = 10


def source_path(rows: int) -> Path:
    """The cached benchmark CSV of ``rows`` rows, generated with polars on first use."""
    path = DATA / f"bench_{rows}.csv"
    if not path.exists():
        import numpy as np
        import polars as pl

        DATA.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        frame = pl.DataFrame({
            "id": np.arange(rows),
            "ts": pl.from_epoch(pl.Series(1_704_067_200 + rng.integers(0, 365 * 86_400, rows)), time_unit="s"),
            "x": np.round(rng.normal(size=rows), 6),
            "y": np.round(rng.uniform(size=rows) * 1000, 3),
            "count": rng.integers(0, 10_000, rows),
            "name": "u" + pl.Series(rng.integers(0, 100_000, rows)).cast(pl.String),
            "label": pl.Series(rng.choice(["cat", "dog", "bird", "fish"], rows)),
        })
        tmp = path.with_suffix(".tmp")
        frame.write_csv(tmp, datetime_format="%Y-%m-%d %H:%M:%S")
        tmp.replace(path)
    return path


def challenge_for(path: Path, name: str, releases: int = N_RELEASES):
    from ppipe.challenge.spec import Challenge

    return Challenge.model_validate({
        "name": name, "source": str(path), "releases": releases,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
        "destinations": [{"kind": "local", "path": str(DATA / "out")}],
    })


# --- the approaches, each run in a child process ---------------------------------------------


def run_naive(path: Path, out: Path) -> dict:
    import pandas as pd

    n = sum(1 for _ in open(path, "rb")) - 1
    cuts = [round(i * n / N_RELEASES) for i in range(N_RELEASES + 1)]
    for i in range(N_RELEASES):
        frame = pd.read_csv(path)
        frame.iloc[cuts[i]:cuts[i + 1]].to_csv(out / f"naive_{i}.csv", index=False)
    return {}


def run_ppipe(path: Path, out: Path) -> dict:
    from ppipe.data import release_files, sources, staging

    challenge = challenge_for(path, "bench")
    t0 = time.perf_counter()
    n = sources.count_rows(challenge.source)
    t1 = time.perf_counter()
    staged = staging.stage(challenge)
    t2 = time.perf_counter()
    for release in challenge.plan(n):
        staging.check_source_unchanged(challenge)
        release_files.write_release(challenge, staged, release)
    t3 = time.perf_counter()
    return {"count_s": t1 - t0, "stage_s": t2 - t1, "releases_s": t3 - t2, "kind": staged.kind}


def run_floor(path: Path, out: Path) -> dict:
    import polars as pl

    pl.read_csv(path).write_csv(out / "floor.csv")
    return {}


def run_release_times(paths: list[Path], out: Path, size: int) -> dict:
    """Median time of writing one ``size``-row release at the start and end of each source."""
    from ppipe.data import release_files, staging
    from ppipe.challenge.planning import PlannedRelease

    result = {}
    for k, path in enumerate(paths):
        challenge = challenge_for(path, f"flat-{k}")
        staged = staging.stage(challenge)
        result[f"kind_{k}"] = staged.kind
        for where, start in (("first", 0), ("last", staged.rows - size)):
            release = PlannedRelease(0, "r", start, start + size, datetime.now(timezone.utc), ())
            times = []
            for _ in range(5):
                t = time.perf_counter()
                release_files.write_release(challenge, staged, release)
                times.append(time.perf_counter() - t)
            result[f"{staged.rows}_{where}"] = statistics.median(times)
    return result


APPROACHES = {"naive": run_naive, "ppipe": run_ppipe, "floor": run_floor}


def child(args) -> None:
    out = Path(args.out)
    os.environ["PPIPE_HOME"] = str(out / "home")
    if args.child == "release_times":
        extra = run_release_times([Path(p) for p in args.paths], out, args.size)
    else:
        extra = APPROACHES[args.child](Path(args.paths[0]), out)
    print(json.dumps(extra))


def measure(name: str, paths: list[Path], size: int = 0) -> dict:
    """Run one approach in a fresh child; returns wall seconds, peak RSS (MB) and its own figures."""
    with tempfile.TemporaryDirectory(dir=DATA) as out:
        cmd = [sys.executable, __file__, "--child", name, "--out", out, "--size", str(size), *map(str, paths)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        output = proc.stdout.read().decode()
        proc.stdout.close()
        if status != 0:
            raise SystemExit(f"{name} failed (status {status})")
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, **json.loads(output.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the large source (default 5,000,000)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive pandas run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    large, small = source_path(args.rows), source_path(args.rows // 10)
    print(f"source: {large.name}, {args.rows:,} rows, {large.stat().st_size / 1e6:.0f} MB; 2nd source {args.rows // 10:,} rows")
    results = {name: measure(name, [large]) for name in ("floor", "ppipe") + (() if args.skip_naive else ("naive",))}
    for name, r in results.items():
        extra = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in r.items() if k not in ("wall_s", "peak_mb"))
        print(f"{name:6s} wall {r['wall_s']:7.2f} s  peak RSS {r['peak_mb']:7.0f} MB  {extra}")
    floor, ppipe = results["floor"], results["ppipe"]
    print(f"ppipe / floor time: {ppipe['wall_s'] / floor['wall_s']:.2f}x (target <= 1.3)")
    if "naive" in results:
        naive = results["naive"]
        print(f"naive / ppipe time: {naive['wall_s'] / ppipe['wall_s']:.1f}x (target >= 10)")
        print(f"ppipe / naive peak memory: {ppipe['peak_mb'] / naive['peak_mb']:.2f} (target <= 0.33)")

    size = max(1, args.rows // 10 // 100)
    s_rows = args.rows // 10
    flat = measure("release_times", [small, large], size)
    s, l = args.rows // 10, args.rows
    print(f"one {size:,}-row release (median of 5): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in flat.items()
                                                            if k not in ("wall_s", "peak_mb") and not k.startswith("kind")))
    print(f"  staged kind: {flat['kind_0']} ({s_rows:,} rows), {flat['kind_1']} ({args.rows:,} rows)")
    print(f"  last/first on {l:,} rows: {flat[f'{l}_last'] / flat[f'{l}_first']:.2f}x (target <= 1.5)")
    print(f"  {l:,} vs {s:,} rows (last release): {flat[f'{l}_last'] / flat[f'{s}_last']:.2f}x (target <= 1.5)")


if __name__ == "__main__":
    main()
