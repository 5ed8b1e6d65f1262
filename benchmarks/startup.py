"""Command start-up (issue 11): ``ppipe --help``, ``list``, ``show``, ``plan`` and ``ppipe run``
of a tiny one-release challenge, each beside its floor, alternated round by round, in one run.

    .venv/bin/python benchmarks/startup.py [--repeat 7]

``ppipe run``'s floor is the Prefect flow a user would write for the same delivery, run
against the same standing server: the five tasks ppipe's run records (stage: read the CSV
with polars; save: write the release; prepare: make the folder; upload: copy the file there;
manifest: write its JSON), with Prefect's defaults. The other commands' floor is the
interpreter starting (``python -c pass``). Each command runs in a fresh process; wall and CPU
(user + system of the child) seconds, medians over ``--repeat`` rounds. Byte code is cached
(PYTHONDONTWRITEBYTECODE is dropped, one warm-up round is not counted), as on a user's machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ppipe.participants.http.serve import free_port

BIN = Path(sys.executable).parent
ROWS = 300

FLOOR_FLOW = '''
import json, shutil, sys
from pathlib import Path

import polars as pl
from prefect import flow, task


@task
def stage(source):
    return pl.read_csv(source)


@task
def save(frame, path):
    frame.write_csv(path)
    return path


@task
def prepare(folder):
    Path(folder).mkdir(parents=True, exist_ok=True)


@task
def upload(path, folder):
    return shutil.copy(path, folder)


@task
def manifest(folder, name):
    (Path(folder) / "manifest.json").write_text(json.dumps({"releases": [name]}))


@flow(name="floor")
def deliver(source, work, folder):
    frame = stage(source)
    path = save(frame, str(Path(work) / "release_0.csv"))
    prepare(folder)
    upload(path, folder)
    manifest(folder, "release_0")


if __name__ == "__main__":
    deliver(*sys.argv[1:])
'''


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one command in a fresh process; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def setup(work: Path, runs: int) -> dict:
    """The environment (a private PPIPE_HOME, a standing server on a free port) and the tiny
    challenges, one per ``ppipe run`` (a run delivers its release once)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONDONTWRITEBYTECODE", "PREFECT_API_URL")}
    env.update(PPIPE_HOME=str(work / "home"), PPIPE_PREFECT_PORT=str(free_port()),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with open(work / "tiny.csv", "w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["id", "x", "label"])
        rows.writerows([i, i * 0.5, i % 2] for i in range(ROWS))
    subprocess.run([BIN / "ppipe", "server", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    for index in range(runs):
        spec = work / f"tiny{index}.yaml"
        spec.write_text(f"name: tiny{index}\nsource: {work / 'tiny.csv'}\nreleases: 1\n"
                        f"schedule: {{start: '2026-01-01T00:00:00Z', every: 1d}}\n"
                        f"destinations: [{{kind: local, path: {work / 'out'}}}]\n")
        subprocess.run([BIN / "ppipe", "create", str(spec)], env=env, check=True, stdout=subprocess.DEVNULL)
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{env['PPIPE_PREFECT_PORT']}/api"  # the floor's flow
    (work / "floor_flow.py").write_text(FLOOR_FLOW)
    return env


def cases(work: Path, round_: int) -> list[tuple[str, list, list, float]]:
    """(label, ppipe command, floor command, target seconds) for one round."""
    ppipe, python = str(BIN / "ppipe"), sys.executable
    interpreter = [python, "-c", "pass"]
    floor_run = [python, str(work / "floor_flow.py"), str(work / "tiny.csv"), str(work),
                 str(work / "floor-out" / str(round_))]
    return [
        ("ppipe --help", [ppipe, "--help"], interpreter, 0.3),
        ("ppipe list", [ppipe, "list"], interpreter, 0.3),
        ("ppipe show NAME", [ppipe, "show", "tiny0"], interpreter, 0.3),
        ("ppipe plan FILE", [ppipe, "plan", str(work / "tiny0.yaml")], interpreter, 0.3),
        ("ppipe run NAME (1 release)", [ppipe, "run", f"tiny{round_}"], floor_run, 2.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="measured rounds (default 7)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ppipe-startup-"))
    env = setup(work, args.repeat + 1)
    times: dict[str, tuple[list, list]] = {}
    try:
        for round_ in range(args.repeat + 1):  # round 0 warms the byte-code caches
            for label, command, floor, _ in cases(work, round_):
                pair = [command, floor] if round_ % 2 else [floor, command]
                measured = {id(c): timed(c, env) for c in pair}
                if round_:
                    mine, theirs = times.setdefault(label, ([], []))
                    mine.append(measured[id(command)])
                    theirs.append(measured[id(floor)])
    finally:
        subprocess.run([BIN / "ppipe", "server", "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    report(times, {label: target for label, _, _, target in cases(work, 0)}, args.repeat)


def report(times: dict, targets: dict, repeat: int) -> None:
    print(f"medians of {repeat} alternated rounds; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'command':28} {'wall s':>7} {'cpu s':>6} {'floor s':>8} {'ratio':>6} {'target':>7}")
    for label, (mine, floor) in times.items():
        wall = statistics.median(w for w, _ in mine)
        cpu = statistics.median(c for _, c in mine)
        floor_wall = statistics.median(w for w, _ in floor)
        verdict = "met" if wall <= targets[label] else "not met"
        print(f"{label:28} {wall:7.2f} {cpu:6.2f} {floor_wall:8.2f} {wall / floor_wall:5.2f}x "
              f"{targets[label]:5.1f} s {verdict}")
    print("floor: `python -c pass` for the first four; for `run`, the same five tasks as a plain Prefect flow")


if __name__ == "__main__":
    main()
