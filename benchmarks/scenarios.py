"""Benchmarks of scenarios: what perturbations cost at the cut, and shipping referenced files.

    .venv/bin/python benchmarks/scenarios.py perturb [--rows 2000000]   # cut with vs without events
    .venv/bin/python benchmarks/scenarios.py perturb --parts            # what each event adds to one release
    .venv/bin/python benchmarks/scenarios.py files [--files 10000]      # local folder vs cp -r
    .venv/bin/python benchmarks/scenarios.py files --s3                 # and moto S3 vs aws s3 cp --recursive

``perturb``: one release (a quarter of the source) cut by :func:`ppipe.release_files.write_release`
from the same staged copy, with the challenge's scenario (missing, drift, duplicates,
out-of-order, types, schema on that release) and without it (the same challenge minus the
scenario, cut from the same Parquet copy), each case cut right next to its cut without events
(which goes first alternates by round), ``--repeat`` rounds: the ratio printed is the median of
the rounds' paired ratios, so a load that changes between seconds moves both sides of a ratio;
also the challenge without a scenario on its own path (byte ranges of the source for CSV to CSV).
Late labels are timed apart (they write a second file, the labels of the release before).
Wall and CPU seconds (all threads) are printed: on a loaded machine the CPU time moves less.

``files``: a release whose 10,000 rows each reference a file of 1 KB to 1 MB (sizes
log-uniform, seeded) is cut (every file hashed) and delivered by a real dispatch run, against
``cp -r`` of the same folder (local) and ``aws s3 cp --recursive`` to the same moto server
(S3), alternated, page cache warm for both, median of ``--repeat``.
Data is cached in benchmarks/.data/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_path import DATA, source_path  # noqa: E402

EVENTS = [
    {"at": 1, "missing": {"columns": ["x", "y"], "rate": 0.05}},
    {"at": 1, "drift": {"columns": ["x"], "shift": 1.0, "scale": 1.1}},
    {"at": 1, "duplicates": {"rate": 0.01}},
    {"at": 1, "out_of_order": {"column": "ts", "rate": 0.1}},
    {"at": 1, "types": {"count": "float"}},
    {"at": 1, "schema": {"rename": {"name": "user"}, "add": {"version": "2"}}},
]
LATE = [{"from": 1, "late_labels": {"label": "label", "lag": 1}}]
ISSUE = [  # the issue's example on this data, over 7 releases: at most four events per release
    {"at": 3, "drift": {"columns": ["x"], "shift": 2.5, "scale": 1.1}},
    {"from": 2, "missing": {"columns": ["x", "y"], "rate": 0.05}},
    {"at": 4, "duplicates": {"rate": 0.01}},
    {"at": 5, "schema": {"rename": {"name": "user"}, "drop": ["y"], "add": {"firmware": "v2"}}},
    {"from": 1, "late_labels": {"label": "label", "lag": 1}},
    {"at": 2, "out_of_order": {"column": "ts", "rate": 0.1}},
    {"at": 6, "types": {"count": "float"}},
]
LATER = datetime(2030, 1, 1, tzinfo=timezone.utc)


def challenge(source: Path, name: str, output: str, events: list | None, releases: int = 4):
    from ppipe.challenge.specfile import parse_challenge

    spec = {
        "name": name, "source": str(source), "releases": releases,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
        "destinations": [{"kind": "local", "path": str(DATA / "out")}],
        "output": {"format": output, "row_id": True},
    }
    if events:
        spec["scenario"] = {"seed": 1, "events": events}
    return parse_challenge(spec)


def time_cuts(made, staged, indexes: list[int]) -> tuple[float, float]:
    """Wall and CPU seconds (every thread of this process) to cut releases ``indexes`` of ``made``
    (write_release, as a dispatch run does). On a loaded machine the CPU time moves less."""
    from ppipe.data.release_files import write_release

    releases = made.plan(staged.rows)
    began, cpu = time.perf_counter(), time.process_time()
    for index in indexes:
        write_release(made, staged, releases[index])
    return time.perf_counter() - began, time.process_time() - cpu


BASELINES = ("without events", "7 releases without events")


def baseline_of(case: str) -> str:
    return BASELINES[1] if case.startswith("7 releases") else BASELINES[0]


def bench_perturb(rows: int, repeat: int) -> None:
    from ppipe.data.staging import stage

    source = source_path(rows)
    os.environ["PPIPE_HOME"] = tempfile.mkdtemp(prefix="ppipe-bench-")
    print(f"source: {source.name}, {rows:,} rows; {repeat} rounds, in each every case cut right next to the "
          "cut without events from the same Parquet copy (which goes first alternates by round); ratio: the median "
          "of the rounds' paired ratios [lowest-highest]; seconds: medians")
    print(f"{'output':8} {'case':44} {'seconds':>8} {'ratio':>6} {'':13} {'cpu s':>7} {'ratio':>6}")
    for output in ("csv", "parquet"):
        cases = perturb_cases()
        made = {name: challenge(source, f"c{i}-{output}", output, events, releases)
                for i, (name, (events, releases, _, _)) in enumerate(cases.items())}
        staged = {name: stage(m) for name, m in made.items() if cases[name][3] is None}
        staged.update({name: staged[copy] for name, (_, _, _, copy) in cases.items() if copy is not None})
        pairs = {name: [] for name in cases if name not in BASELINES}
        alone = {name: [] for name in BASELINES}

        def cut(name: str) -> tuple[float, float]:
            return time_cuts(made[name], staged[name], cases[name][2])

        for round_ in range(repeat):
            for name in pairs:
                # the load on a shared machine moves between seconds: a case and its baseline are
                # timed next to each other, so each pair's ratio sees one load
                if round_ % 2 == 0:
                    base = cut(baseline_of(name))
                    pairs[name].append((cut(name), base))
                else:
                    pairs[name].append((cut(name), cut(baseline_of(name))))
                alone[baseline_of(name)].append(pairs[name][-1][1])
        for name in cases:
            print_case(output, name, pairs.get(name) or [(t, t) for t in alone[name]])
    shutil.rmtree(os.environ["PPIPE_HOME"], ignore_errors=True)


def print_case(output: str, name: str, pairs: list[tuple[tuple[float, float], tuple[float, float]]]) -> None:
    """One line: median wall and CPU seconds of the case, and the medians of its paired ratios."""
    columns = []
    for i in (0, 1):  # wall, CPU
        ratios = [case[i] / base[i] for case, base in pairs]
        columns.append(f"{statistics.median(case[i] for case, _ in pairs):{8 - i}.3f} {statistics.median(ratios):6.2f} "
                       f"{f'[{min(ratios):.2f}-{max(ratios):.2f}]':13}")
    print(f"{output:8} {name:44} {columns[0]} {columns[1]}".rstrip())


def perturb_cases() -> dict[str, tuple[list, int, list[int], str | None]]:
    """name: (events, releases, the releases cut, the case whose staged copy it cuts or None: its own).

    A challenge with a scenario always has a Parquet copy; the same challenge without one may
    be released as byte ranges of the source (CSV to CSV). "without events" cuts the Parquet
    copy of the six-event challenge with the scenario left out, so the ratios are the cost of
    the events alone; "..., its own path" is what the challenge without a scenario gets."""
    one, seven = "the six events on one release", "7 releases, the issue's scenario"
    cases = {"without events": ([], 4, [1], one)}
    cases.update({f"{next(k for k in e if k != 'at')} alone": ([e], 4, [1], None) for e in EVENTS})
    cases[one] = (EVENTS, 4, [1], None)
    cases["late labels (+ the labels file)"] = (LATE, 4, [1], None)
    cases["without events, its own path"] = ([], 4, [1], None)
    cases["7 releases without events"] = ([], 7, list(range(7)), seven)
    cases[seven] = (ISSUE, 7, list(range(7)), None)
    cases["7 releases without events, their own path"] = ([], 7, list(range(7)), None)
    return cases


PARTS = {  # one event at a time on release 2 of the 7-release challenge, against the same release without it
    "missing (x, y; 5%)": [{"at": 2, "missing": {"columns": ["x", "y"], "rate": 0.05}}],
    "drift (x)": [{"at": 2, "drift": {"columns": ["x"], "shift": 2.5, "scale": 1.1}}],
    "duplicates (1%)": [{"at": 2, "duplicates": {"rate": 0.01}}],
    "out_of_order (10%)": [{"at": 2, "out_of_order": {"column": "ts", "rate": 0.1}}],
    "types (count: float)": [{"at": 2, "types": {"count": "float"}}],
    "schema (rename, drop, add)": [{"at": 2, "schema": {"rename": {"name": "user"}, "drop": ["y"], "add": {"firmware": "v2"}}}],
    "late labels (label out, labels_1 file)": [{"from": 1, "until": 2, "late_labels": {"label": "label", "lag": 1}}],
}


def bench_parts(rows: int, repeat: int) -> None:
    """What each event adds to one release: release 2 of the 7-release challenge cut with one event
    and without it, next to each other, ``repeat`` rounds; CPU milliseconds added (median of the
    paired differences) and the ratio."""
    from ppipe.data.staging import stage

    source = source_path(rows)
    os.environ["PPIPE_HOME"] = tempfile.mkdtemp(prefix="ppipe-bench-")
    print(f"source: {source.name}, {rows:,} rows; release 2 of 7 ({rows // 7:,} rows), one event against none, "
          f"{repeat} rounds, next to each other; CPU ms: the median of the paired differences")
    for output in ("csv", "parquet"):
        plain = challenge(source, f"parts-{output}", output, None, 7)
        staged = stage(challenge(source, f"parts-staged-{output}", output, ISSUE, 7))
        for i, (name, events) in enumerate(PARTS.items()):
            made = challenge(source, f"parts-{output}-{i}", output, events, 7)
            time_cuts(made, staged, [2])  # not timed: the first cut of a challenge makes its folders
            pairs = []
            for round_ in range(repeat):
                sides = (plain, made) if round_ % 2 == 0 else (made, plain)
                cpu = {id(m): time_cuts(m, staged, [2])[1] for m in sides}
                pairs.append((cpu[id(made)], cpu[id(plain)]))
            added = statistics.median(1000 * (a - b) for a, b in pairs)
            ratio = statistics.median(a / b for a, b in pairs)
            base = statistics.median(1000 * b for _, b in pairs)
            print(f"{output:8} {name:40} {added:+7.1f} ms CPU on {base:6.1f}  ratio {ratio:5.2f}")
    shutil.rmtree(os.environ["PPIPE_HOME"], ignore_errors=True)


# --- files -----------------------------------------------------------------------------------


def file_set(count: int) -> Path:
    """``count`` files of 1 KB to 1 MB (log-uniform sizes, seeded) and a table referencing them."""
    import numpy as np
    import polars as pl

    folder = DATA / f"files_{count}"
    table = folder / "table.csv"
    if table.exists():
        return table
    rng = np.random.default_rng(0)
    sizes = np.exp(rng.uniform(np.log(1024), np.log(1024 * 1024), count)).astype(int)
    (folder / "files").mkdir(parents=True, exist_ok=True)
    names = []
    for i, size in enumerate(sizes):
        name = f"files/{i // 1000:02d}/f_{i:05d}.bin"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(rng.bytes(int(size)))
        names.append(name)
    pl.DataFrame({"id": range(count), "file": names}).write_csv(table)
    return table


def deliver(table: Path, destination: dict) -> float:
    """Seconds for a real dispatch run delivering the one release (cut + hashing + upload)."""
    from ppipe import api
    from ppipe.delivery import dispatch
    from ppipe.ledger import Ledger
    from ppipe.challenge.specfile import parse_challenge

    name = f"files-{uuid.uuid4().hex[:8]}"
    made = parse_challenge({
        "name": name, "source": str(table), "releases": 1,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
        "destinations": [destination], "files": {"column": "file", "root": str(table.parent)},
    })
    api.create(made)
    began = time.perf_counter()
    report = dispatch(Ledger(), name, now=LATER)
    elapsed = time.perf_counter() - began
    assert report.ok, (report.failed, report.problems)
    return elapsed


def timed(command: list[str], env: dict | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - began


def bench_files(count: int, repeat: int, s3: bool, local: bool = True) -> None:
    table = file_set(count)
    files = table.parent / "files"
    total = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
    os.environ["PPIPE_HOME"] = tempfile.mkdtemp(prefix="ppipe-bench-")
    work = Path(tempfile.mkdtemp(prefix="ppipe-bench-out-", dir=DATA))
    print(f"{count:,} files, {total / 2**20:.0f} MiB (1 KB-1 MB, log-uniform); median of {repeat}")
    timed(["cp", "-r", str(files), str(work / "warm")])  # page cache warm for both sides
    ours, theirs = [], []
    for i in range(repeat if local else 0):
        os.sync()  # each side starts without the other's dirty pages to write back
        theirs.append(timed(["cp", "-r", str(files), str(work / f"cp_{i}")]))
        os.sync()
        ours.append(deliver(table, {"kind": "local", "path": str(work / f"ppipe_{i}")}))
        shutil.rmtree(work / f"cp_{i}"), shutil.rmtree(work / f"ppipe_{i}")  # keep the disk's free space steady
    if local:
        report("local folder", "cp -r", ours, theirs)
    shutil.rmtree(work, ignore_errors=True)
    if s3:
        bench_s3(table, files, repeat)
    shutil.rmtree(os.environ["PPIPE_HOME"], ignore_errors=True)


def bench_s3(table: Path, files: Path, repeat: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.servers import moto_process  # the moto server in a process of its own, as for the CLI

    os.environ.pop("AWS_CA_BUNDLE", None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1")
    with moto_process() as endpoint:
        ours, theirs = [], []
        for _ in range(repeat):
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            subprocess.run(["aws", "--endpoint-url", endpoint, "s3", "mb", f"s3://{bucket}"], check=True,
                           stdout=subprocess.DEVNULL)
            theirs.append(timed(["aws", "--endpoint-url", endpoint, "s3", "cp", "--recursive", "--quiet", str(files),
                                 f"s3://{bucket}/cli/files"]))
            ours.append(deliver(table, {"kind": "s3", "bucket": bucket, "endpoint_url": endpoint,
                                        "region": "eu-west-1"}))
        report("moto S3", "aws s3 cp --recursive", ours, theirs)


def report(where: str, baseline: str, ours: list[float], theirs: list[float]) -> None:
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"{where}: ppipe {mine:.2f} s (dispatch run: cut + upload), {baseline} {base:.2f} s, "
          f"ratio {mine / base:.2f}  [runs: ppipe {', '.join(f'{t:.2f}' for t in ours)}; "
          f"{baseline} {', '.join(f'{t:.2f}' for t in theirs)}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    perturb = sub.add_parser("perturb")
    perturb.add_argument("--rows", type=int, default=2_000_000)
    perturb.add_argument("--repeat", type=int, default=5)
    perturb.add_argument("--parts", action="store_true", help="what each event adds to one release, paired")
    files = sub.add_parser("files")
    files.add_argument("--files", type=int, default=10_000)
    files.add_argument("--repeat", type=int, default=3)
    files.add_argument("--s3", action="store_true", help="also moto S3 against aws s3 cp --recursive")
    files.add_argument("--no-local", action="store_true", help="skip the local folder against cp -r")
    args = parser.parse_args()
    if args.what == "perturb":
        (bench_parts if args.parts else bench_perturb)(args.rows, args.repeat)
    else:
        bench_files(args.files, args.repeat, args.s3, local=not args.no_local)


if __name__ == "__main__":
    main()
