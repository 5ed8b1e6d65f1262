"""Load: 200 challenges x 50 releases in one ledger, on SQLite and PostgreSQL.

Measures (1) the time to select the due releases of a challenge (target: under 50 ms) and
(2) one dispatch tick in which 200 releases are due (one per challenge), delivered to local
folders by the same domain code the Prefect flow runs, checking every release is delivered
exactly once.

    .venv/bin/python benchmarks/load.py                      # SQLite in a temp PPIPE_HOME
    .venv/bin/python benchmarks/load.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


def build(workdir: Path, n_challenges: int, n_releases: int) -> list[str]:
    """Register n_challenges challenges of n_releases releases (staging one shared small CSV)."""
    from ppipe import api
    from ppipe.specfile import parse_challenge

    source = workdir / "data.csv"
    source.write_text("id,value\n" + "".join(f"{i},{i * 3}\n" for i in range(n_releases * 20)))
    (workdir / "out").mkdir(exist_ok=True)
    names = []
    for i in range(n_challenges):
        challenge = parse_challenge({
            "name": f"load-{i:03d}", "source": str(source), "releases": n_releases,
            # staggered starts: at the tick, exactly one release of each challenge is due
            "schedule": {"start": (START - timedelta(hours=i % 7)).isoformat(), "every": "1h"},
            "destinations": [{"kind": "local", "path": str(workdir / "out")}],
        })
        api.create(challenge)
        names.append(challenge.name)
    return names


def time_due_selection(names: list[str], now: datetime) -> list[float]:
    from ppipe.ledger import Ledger

    ledger = Ledger()
    timings = []
    for name in names:
        began = time.perf_counter()
        ledger.due(name, now)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def dispatch_tick(names: list[str], now: datetime, workers: int) -> tuple[float, int]:
    """Dispatch every challenge at ``now`` (two runs per challenge racing); returns (seconds, deliveries)."""
    from ppipe.delivery import dispatch

    began = time.perf_counter()
    # Each challenge is dispatched twice concurrently: the claims must still deliver once.
    jobs = [name for name in names for _ in range(2)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda name: dispatch(name, now=now), jobs))
    elapsed = time.perf_counter() - began
    return elapsed, 0


def count_delivered(names: list[str]) -> dict[str, int]:
    from ppipe.ledger import Ledger

    ledger = Ledger()
    return {name: sum(r.status == "delivered" for r in ledger.releases(name)) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--challenges", type=int, default=200)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--postgres", help="PostgreSQL server URL (a fresh database is created on it)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ppipe-load-") as tmp:
        workdir = Path(tmp)
        os.environ["PPIPE_HOME"] = str(workdir / "home")
        backend = "sqlite"
        database = None
        if args.postgres:
            database = create_database(args.postgres)
            os.environ["PPIPE_DATABASE_URL"] = database
            backend = "postgresql"
        try:
            run(args, workdir, backend)
        finally:
            if database:
                drop_database(args.postgres, database)


def run(args, workdir: Path, backend: str) -> None:
    began = time.perf_counter()
    names = build(workdir, args.challenges, args.releases)
    print(f"[{backend}] registered {len(names)} challenges x {args.releases} releases "
          f"in {time.perf_counter() - began:.1f} s")
    now = START + timedelta(minutes=30)  # one release of each challenge is due
    timings = time_due_selection(names, now)
    print(f"[{backend}] due selection per challenge: median {statistics.median(timings):.2f} ms, "
          f"p95 {sorted(timings)[int(len(timings) * 0.95)]:.2f} ms, max {max(timings):.2f} ms (target < 50 ms)")
    due_total = sum(len(due) for due in [__import__('ppipe.ledger', fromlist=['Ledger']).Ledger().due(n, now) for n in names])
    elapsed, _ = dispatch_tick(names, now, args.workers)
    delivered = count_delivered(names)
    total = sum(delivered.values())
    once = total == due_total
    print(f"[{backend}] tick: {due_total} releases due, {total} delivered in {elapsed:.1f} s "
          f"({'each exactly once' if once else 'MISMATCH'})")
    if not once:
        raise SystemExit(1)


def create_database(server_url: str) -> str:
    import psycopg

    name = f"ppipe_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


def drop_database(server_url: str, database_url: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
