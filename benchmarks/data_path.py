"""Benchmark of the data path: naive pandas vs ppipe (stage once + slice) vs the polars floor.

    /work/venv/bin/python benchmarks/data_path.py            # 5,000,000 rows (~330 MB), a few minutes
    /work/venv/bin/python benchmarks/data_path.py --rows 200000   # quick run
    /work/venv/bin/python benchmarks/data_path.py --paths          # every path: one table vs its polars floor
    /work/venv/bin/python benchmarks/data_path.py --paths --all --rows 200000   # the whole matrix, quick
    /work/venv/bin/python benchmarks/data_path.py --paths --repeat 3     # medians of 3 alternated runs (busy machine)

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


# --- every path: source format and compression, output format, shuffle, row_id ------------------

#: (source suffix, output format, shuffle, row_id): the default table; ``--all`` runs the whole matrix.
DEFAULT_PATHS = [
    ("csv", "csv", False, False), ("csv", "csv", True, False), ("csv", "csv", False, True), ("csv", "csv", True, True),
    ("csv", "parquet", False, False), ("csv", "parquet", True, False), ("csv", "parquet", False, True),
    ("csv", "parquet", True, True), ("csv", "json", False, False), ("csv", "ndjson", True, False),
    ("csv", "json", False, True), ("tsv", "csv", False, False), ("tsv", "parquet", True, False),
    ("ndjson", "ndjson", False, False), ("ndjson", "parquet", False, False), ("ndjson", "csv", True, False),
    ("parquet", "parquet", False, False), ("parquet", "csv", False, False), ("parquet", "parquet", True, True),
    ("json", "json", False, False), ("json", "parquet", True, False),
    ("csv.gz", "csv", False, False), ("csv.gz", "parquet", True, False), ("csv.zst", "parquet", False, False),
    ("ndjson.gz", "ndjson", False, False), ("tsv.zst", "csv", False, True),
]
SOURCES = ["csv", "tsv", "ndjson", "parquet", "json"] + [f"{f}.{c}" for f in ("csv", "tsv", "ndjson") for c in ("gz", "zst")]
OUTPUTS = ["csv", "parquet", "json", "ndjson"]
SEED = 3


def all_paths() -> list[tuple[str, str, bool, bool]]:
    return [(s, o, sh, r) for s in SOURCES for o in OUTPUTS for sh in (False, True) for r in (False, True)]


def path_label(spec: tuple[str, str, bool, bool]) -> str:
    suffix, out, shuffle, row_id = spec
    return f"{suffix} > {out}" + (" shuffled" if shuffle else "") + (" row_id" if row_id else "")


def source_in(rows: int, suffix: str) -> Path:
    """The benchmark data as ``suffix`` (csv, tsv, ndjson, parquet, json, optionally .gz/.zst), cached."""
    path = DATA / f"bench_{rows}.{suffix}"
    if suffix == "csv" or path.exists():
        return source_path(rows) if suffix == "csv" else path
    import polars as pl

    base, _, compression = suffix.partition(".")
    tmp = path.with_name(path.name + ".tmp")
    if compression:
        plain = source_in(rows, base)
        if compression == "gz":
            import gzip
            import shutil

            with open(plain, "rb") as f, gzip.open(tmp, "wb", compresslevel=6) as out:
                shutil.copyfileobj(f, out, 1 << 20)
        else:
            import zstandard

            with open(plain, "rb") as f, open(tmp, "wb") as out:
                zstandard.ZstdCompressor(level=3).copy_stream(f, out)
    elif base == "tsv":
        pl.read_csv(source_path(rows), infer_schema=False).write_csv(tmp, separator="\t", quote_style="never")
    else:
        typed = pl.read_csv(source_path(rows))  # typed, as a user's NDJSON / Parquet / JSON would be
        {"ndjson": typed.write_ndjson, "parquet": typed.write_parquet, "json": typed.write_json}[base](tmp)
    tmp.replace(path)
    return path


def run_floor_path(path: Path, out: Path, spec: str) -> dict:
    """The script a user would write: read it all, add row numbers, shuffle with the seed, slice, write."""
    import io

    import polars as pl

    _, fmt, shuffle, row_id = json.loads(spec)
    base, _, compression = path.name.split(".", 1)[1].partition(".")
    source = path
    if compression:  # decompressed in memory, as polars does for a compressed CSV
        raw = path.read_bytes()
        if compression == "gz":
            import gzip

            source = io.BytesIO(gzip.decompress(raw))
        else:
            import zstandard

            source = io.BytesIO(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read())
        del raw
    frame = {
        "csv": lambda: pl.read_csv(source), "tsv": lambda: pl.read_csv(source, separator="\t", quote_char=None),
        "ndjson": lambda: pl.read_ndjson(source), "parquet": lambda: pl.read_parquet(source),
        "json": lambda: pl.read_json(source),
    }[base]()
    del source
    if row_id:
        frame = frame.with_row_index("row_id")
    if shuffle:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=SEED)
    n = frame.height
    cuts = [round(i * n / N_RELEASES) for i in range(N_RELEASES + 1)]
    for i in range(N_RELEASES):
        getattr(frame.slice(cuts[i], cuts[i + 1] - cuts[i]), f"write_{fmt}")(out / f"floor_{i}.{fmt}")
    return {}


def path_challenge(path: Path, spec: str, name: str = "bench"):
    from ppipe.challenge.spec import Challenge

    _, fmt, shuffle, row_id = json.loads(spec)
    return Challenge.model_validate({
        "name": name, "source": str(path), "releases": N_RELEASES,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
        "destinations": [{"kind": "local", "path": str(DATA / "out")}],
        "output": {"format": fmt, "shuffle": shuffle, "seed": SEED, "row_id": row_id},
    })


def run_ppipe_path(path: Path, out: Path, spec: str) -> dict:
    """What ``ppipe create`` and the flow's runs do with the data: stage, then each release."""
    from ppipe.data import release_files, staging

    challenge = path_challenge(path, spec)
    t0 = time.perf_counter()
    staged = staging.stage(challenge)
    t1 = time.perf_counter()
    for release in challenge.plan(staged.rows):
        staging.check_source_unchanged(challenge)
        release_files.write_release(challenge, staged, release)
    return {"stage_s": t1 - t0, "releases_s": time.perf_counter() - t1, "kind": staged.kind}


def run_release_path(paths: list[Path], out: Path, spec: str) -> dict:
    """Median time of one 1% release (of the smaller source) at the start and end of each source."""
    from ppipe.data import staging

    result = {}
    size = None
    for k, path in enumerate(paths):
        challenge = path_challenge(path, spec, f"flat-{k}")
        staged = staging.stage(challenge)
        size = size or max(1, staged.rows // 100)
        for where, start in (("first", 0), ("last", staged.rows - size)):
            result[f"{k}_{where}"] = release_time(challenge, staged, start, size)
    true_size = max(1, staged.rows // 100)  # a true 1% of the larger source
    for where, start in (("first", 0), ("last", staged.rows - true_size)):
        result[f"1pct_{where}"] = release_time(challenge, staged, start, true_size)
    return result


def release_time(challenge, staged, start: int, size: int) -> float:
    """Median of 5 writes of the ``size``-row release starting at row ``start``."""
    from ppipe.challenge.planning import PlannedRelease
    from ppipe.data import release_files

    release = PlannedRelease(0, "r", start, start + size, datetime.now(timezone.utc), ())
    times = []
    for _ in range(5):
        t = time.perf_counter()
        release_files.write_release(challenge, staged, release)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paths_table(args) -> None:
    specs = all_paths() if args.all else DEFAULT_PATHS
    if args.skip:
        specs = [s for s in specs if not any(word in path_label(s) for word in args.skip.split(","))]
    if args.only:
        specs = [s for s in specs if all(word in path_label(s) for word in args.only.split(","))]
        if not specs:
            print(f"error: --only {args.only!r} matches no path (see --paths without --only for the labels)",
                  file=sys.stderr)
            sys.exit(2)
    print(f"{args.rows:,} rows; {N_RELEASES} releases; each approach in its own child process"
          f"{f', median of {args.repeat} alternated runs' if args.repeat > 1 else ''}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{'path':34s} {'floor s':>8s} {'ppipe s':>8s} {'ratio':>6s} {'floor MB':>9s} {'ppipe MB':>9s} {'cpu ratio':>9s}"
          f" {'floor cpu':>9s} {'ppipe cpu':>9s}  kind")
    ratios, cpu_ratios = [], []
    for spec in specs:
        path = source_in(args.rows, spec[0])
        arg = json.dumps(spec)
        runs = [(measure("floor_path", [path], spec=arg), measure("ppipe_path", [path], spec=arg))
                for _ in range(args.repeat)]  # alternated, so both see the same load
        floor, ppipe = median_run([f for f, _ in runs]), median_run([p for _, p in runs])
        ratio = ppipe["wall_s"] / floor["wall_s"]
        ratios.append(ratio)
        cpu_ratios.append(ppipe["cpu_s"] / floor["cpu_s"])
        print(f"{path_label(spec):34s} {floor['wall_s']:8.2f} {ppipe['wall_s']:8.2f} {ratio:5.2f}x "
              f"{floor['peak_mb']:9.0f} {ppipe['peak_mb']:9.0f} {cpu_ratios[-1]:8.2f}x "
              f"{floor['cpu_s']:9.2f} {ppipe['cpu_s']:9.2f}  {ppipe['kind']} "
              f"(stage {ppipe['stage_s']:.2f}, releases {ppipe['releases_s']:.2f})", flush=True)
    print(f"worst ratio {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x (target <= 1.3); "
          f"CPU time: worst {max(cpu_ratios):.2f}x, median {statistics.median(cpu_ratios):.2f}x; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.release_times:
        print("one release of 1% of the smaller source (median of 5), at the first / last rows of it and of one"
              " 10x larger; then a true 1% of the larger:")
        for spec in specs:
            small, large = source_in(args.rows // 10, spec[0]), source_in(args.rows, spec[0])
            r = measure("release_path", [small, large], spec=json.dumps(spec))
            print(f"  {path_label(spec):34s} {args.rows // 10:,} rows: {r['0_first'] * 1e3:5.1f} / {r['0_last'] * 1e3:5.1f} ms;"
                  f"  {args.rows:,} rows: {r['1_first'] * 1e3:5.1f} / {r['1_last'] * 1e3:5.1f} ms;"
                  f"  a true 1% ({args.rows // 100:,} rows) of the larger: {r['1pct_first'] * 1e3:5.1f} / "
                  f"{r['1pct_last'] * 1e3:5.1f} ms", flush=True)


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time, its wall time, CPU time and peak memory the medians of all runs."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[len(ordered) // 2],
            **{k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_mb")}}


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
    from ppipe.data import staging

    result = {}
    for k, path in enumerate(paths):
        challenge = challenge_for(path, f"flat-{k}")
        staged = staging.stage(challenge)
        result[f"kind_{k}"] = staged.kind
        for where, start in (("first", 0), ("last", staged.rows - size)):
            result[f"{staged.rows}_{where}"] = release_time(challenge, staged, start, size)
    return result


APPROACHES = {"naive": run_naive, "ppipe": run_ppipe, "floor": run_floor}


def child(args) -> None:
    out = Path(args.out)
    os.environ["PPIPE_HOME"] = str(out / "home")
    if args.child == "release_times":
        extra = run_release_times([Path(p) for p in args.paths], out, args.size)
    elif args.child == "release_path":
        extra = run_release_path([Path(p) for p in args.paths], out, args.spec)
    elif args.child.endswith("_path"):
        extra = {"floor_path": run_floor_path, "ppipe_path": run_ppipe_path}[args.child](Path(args.paths[0]), out, args.spec)
    else:
        extra = APPROACHES[args.child](Path(args.paths[0]), out)
    print(json.dumps(extra))


def measure(name: str, paths: list[Path], size: int = 0, spec: str = "") -> dict:
    """Run one approach in a fresh child; returns wall seconds, peak RSS (MB) and its own figures."""
    with tempfile.TemporaryDirectory(dir=DATA) as out:
        cmd = [sys.executable, __file__, "--child", name, "--out", out, "--size", str(size), "--spec", spec, *map(str, paths)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        output = proc.stdout.read().decode()
        proc.stdout.close()
        if status != 0:
            raise SystemExit(f"{name} failed (status {status})")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, "cpu_s": cpu, **json.loads(output.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the large source (default 5,000,000)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive pandas run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default="", help=argparse.SUPPRESS)
    parser.add_argument("--paths", dest="table", action="store_true",
                        help="every path (source format/compression -> output, shuffle, row_id) against its polars floor")
    parser.add_argument("--all", action="store_true", help="with --paths: the whole matrix, not the default selection")
    parser.add_argument("--only", help="with --paths: only paths whose label has all these comma-separated words")
    parser.add_argument("--skip", help="with --paths: leave out paths whose label has any of these comma-separated words")
    parser.add_argument("--release-times", action="store_true", help="with --paths: also time one 1%% release")
    parser.add_argument("--repeat", type=int, default=1,
                        help="with --paths: run floor and ppipe alternately this many times; medians (default 1)")
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.table:
        return paths_table(args)

    large, small = source_path(args.rows), source_path(args.rows // 10)
    print(f"source: {large.name}, {args.rows:,} rows, {large.stat().st_size / 1e6:.0f} MB; 2nd source {args.rows // 10:,} rows")
    results = {name: measure(name, [large]) for name in ("floor", "ppipe") + (() if args.skip_naive else ("naive",))}
    for name, r in results.items():
        extra = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in r.items() if k not in ("wall_s", "peak_mb", "cpu_s"))
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
                                                            if k not in ("wall_s", "peak_mb", "cpu_s") and not k.startswith("kind")))
    print(f"  staged kind: {flat['kind_0']} ({s_rows:,} rows), {flat['kind_1']} ({args.rows:,} rows)")
    print(f"  last/first on {l:,} rows: {flat[f'{l}_last'] / flat[f'{l}_first']:.2f}x (target <= 1.5)")
    print(f"  {l:,} vs {s:,} rows (last release): {flat[f'{l}_last'] / flat[f'{s}_last']:.2f}x (target <= 1.5)")


if __name__ == "__main__":
    main()
