"""Load: 200 challenges x 50 releases in one ledger, on SQLite and PostgreSQL.

A script, not a timed test. It measures

1. the time to select the due releases of one challenge (``Ledger.due``, what every dispatch
   run starts with), for every challenge: median, p95 and max (target: max under 50 ms);
   and one query selecting what is due across all challenges at once (same target);
2. one dispatch tick in which exactly 200 releases are due (release 0 of every challenge),
   delivered to local folders by the same domain code the Prefect flow runs
   (``ppipe.delivery.dispatch``), with two dispatcher processes racing over every challenge
   (each with a few threads), then checks exactly-once: every due row delivered, attempts == 1,
   one release file per (release, destination), nothing else delivered, and the dispatchers'
   reports add up to 200 deliveries.

It prints the figures and exits 1 when a target is missed or exactly-once fails.

    python benchmarks/load.py                                                    # SQLite in a temp PPIPE_HOME
    python benchmarks/load.py --postgres postgresql://postgres@127.0.0.1:5432/test  # a fresh database on it

The ledger is built through ``ppipe.api.create`` (validation, staging, registration): the small
shared source is staged once, for the first challenge, and the staged copy is copied for the
others (``api.create`` then finds it, checks the source fingerprint and only registers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
EVERY = timedelta(hours=1)
#: The tick: within release 0's hour for every challenge (starts are staggered by < 10 min).
NOW = START + timedelta(minutes=30)
DUE_TARGET_MS = 50.0
ROWS_PER_RELEASE = 20


# --- building the ledger -------------------------------------------------------------------


def challenge_spec(i: int, source: Path, out: Path, n_releases: int) -> dict:
    return {
        "name": f"load-{i:03d}", "source": str(source), "releases": n_releases,
        # Staggered starts within the first 10 minutes: at NOW exactly release 0 of each is due.
        "schedule": {"start": (START - timedelta(seconds=3 * i)).isoformat(), "every": "1h"},
        "destinations": [{"kind": "local", "path": str(out)}],
    }


def build(workdir: Path, n_challenges: int, n_releases: int) -> list[str]:
    """Register the challenges through ppipe.api.create (each stages the small source afresh)."""
    from ppipe import api
    from ppipe.ledger import Ledger
    from ppipe.challenge.specfile import parse_challenge

    source = workdir / "data.csv"
    source.write_text("id,value\n" + "".join(f"{i},{i * 3}\n" for i in range(n_releases * ROWS_PER_RELEASE)))
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    ledger = Ledger()
    names = []
    for i in range(n_challenges):
        challenge = parse_challenge(challenge_spec(i, source, out, n_releases))
        api.create(challenge, ledger=ledger)
        names.append(challenge.name)
    ledger.engine.dispose()
    return names


# --- due selection -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_due_selection(names: list[str], now: datetime, repeat: int = 3) -> tuple[list[float], int]:
    """Milliseconds of ``Ledger.due(name, now)`` per call (every challenge, ``repeat`` times), rows found."""
    from ppipe.ledger import Ledger

    ledger = Ledger()
    ledger.due(names[0], now)  # warm the connection pool and statement cache
    timings, found = [], 0
    for round_ in range(repeat):
        for name in names:
            began = time.perf_counter()
            rows = ledger.due(name, now)
            timings.append((time.perf_counter() - began) * 1000)
            if round_ == 0:
                found += len(rows)
    ledger.engine.dispose()
    return timings, found


def due_everywhere_query(now: datetime):
    """What is due across all active challenges: one SELECT (the rows ``Ledger.due`` would give each:
    scheduled by ``now``, not held by a live claim, leases judged by the wall clock)."""
    from sqlmodel import select

    from ppipe.ledger import ChallengeRecord, ReleaseRecord, _claimable, utcnow

    return (
        select(ChallengeRecord.name, ReleaseRecord)
        .join(ChallengeRecord, ChallengeRecord.id == ReleaseRecord.challenge_id)
        .where(ChallengeRecord.state == "active", ReleaseRecord.scheduled_at <= now, _claimable(utcnow()))
        .order_by(ReleaseRecord.scheduled_at, ReleaseRecord.challenge_id, ReleaseRecord.index, ReleaseRecord.id)
    )


def time_due_everywhere(now: datetime, repeat: int = 20) -> tuple[list[float], int]:
    from ppipe.ledger import Ledger

    ledger = Ledger()
    timings, found = [], 0
    with ledger.session() as session:
        session.exec(due_everywhere_query(now)).all()  # warm-up
        for _ in range(repeat):
            began = time.perf_counter()
            found = len(session.exec(due_everywhere_query(now)).all())
            timings.append((time.perf_counter() - began) * 1000)
    ledger.engine.dispose()
    return timings, found


def query_plans(names: list[str], now: datetime) -> dict[str, list[str]]:
    """The database's plan for the per-challenge due query and the all-challenges one.

    The statements are captured as the driver receives them (parameters bound), then EXPLAINed.
    """
    from sqlalchemy import event

    from ppipe.ledger import Ledger

    ledger = Ledger()
    sqlite = ledger.engine.dialect.name == "sqlite"
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "releases" in statement:
            captured.append((statement, parameters))

    event.listen(ledger.engine, "before_cursor_execute", capture)
    ledger.due(names[len(names) // 2], now)
    per_challenge = captured[-1]
    with ledger.session() as session:
        session.exec(due_everywhere_query(now)).all()
    everywhere = captured[-1]
    event.remove(ledger.engine, "before_cursor_execute", capture)
    plans = {}
    raw = ledger.engine.raw_connection()
    try:
        for label, (statement, parameters) in (("per challenge", per_challenge), ("all challenges", everywhere)):
            cursor = raw.cursor()
            cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ANALYZE ") + statement, parameters)
            plans[label] = [str(row[-1]) if sqlite else str(row[0]) for row in cursor.fetchall()]
            cursor.close()
    finally:
        raw.close()
    ledger.engine.dispose()
    return plans


# --- the tick ------------------------------------------------------------------------------


def dispatcher(number: int, names: list[str], now_iso: str, threads: int, go, results, ready) -> None:
    """One dispatcher process: dispatch every challenge at ``now`` (``threads`` at a time); report."""
    from ppipe.delivery.run import dispatch
    from ppipe.ledger import Ledger

    now = datetime.fromisoformat(now_iso)
    if os.environ.get("PPIPE_LOAD_SABOTAGE"):
        _sabotage_claims()
    ledger = Ledger()
    ledger.exists(names[0])  # connect before the start signal

    def one(name: str) -> dict:
        contests = Counter()

        def listen(release: str, step: str, detail: str) -> None:
            if step == "claim":  # "<won> of <rows> destination(s)"
                won, _, total = detail.split()[:3]
                contests["won"] += int(won)
                contests["lost"] += int(total) - int(won)

        began = time.perf_counter()
        try:
            report = dispatch(ledger, name, now=now, owner=f"load-{number}-{uuid.uuid4().hex[:8]}", listener=listen)
        except Exception as exc:  # noqa: BLE001 - counted as a failure of the tick
            return {"name": name, "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - began}
        seconds = time.perf_counter() - began
        if report is None:  # the challenge is not active (never expected here)
            return {"name": name, "seconds": seconds, "error": "challenge not active"}
        failed = [f"{o.release} -> {o.destination}: {o.error}" for o in report.failed] + report.problems
        return {
            "name": name, "seconds": seconds, "delivered": [(o.index, o.destination) for o in report.delivered],
            "failed": failed, "won": contests["won"], "lost": contests["lost"],
            "idle": not contests,  # found nothing due: the other dispatcher had claimed it already
        }

    ready.put("ready")
    go.wait()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(one, names))
    results.put({"dispatcher": number, "seconds": time.perf_counter() - began, "runs": outcomes})
    ledger.engine.dispose()


def _sabotage_claims() -> None:
    """Negative control (``--sabotage``): a claim that ignores whether another run holds the row,
    so racing dispatchers deliver twice and the exactly-once check must fail."""
    from sqlalchemy import update

    from ppipe.ledger import Ledger, ReleaseRecord, utcnow

    def claim(self, release_id, owner, *, lease=None, now=None):
        now = now or utcnow()
        with self.session() as session:
            session.exec(update(ReleaseRecord).where(ReleaseRecord.id == release_id, ReleaseRecord.status != "delivered")
                         .values(status="running", claimed_by=owner, claim_expires_at=now + timedelta(minutes=5),
                                 attempts=ReleaseRecord.attempts + 1, started_at=now, updated_at=now))
            session.commit()
        time.sleep(0.05)  # widen the window, as a slow claim would
        return True

    Ledger.claim = claim


def dispatch_tick(names: list[str], now: datetime, dispatchers: int, threads: int) -> tuple[float, list[dict]]:
    """Start ``dispatchers`` processes racing over every challenge at ``now``; (wall seconds, their reports)."""
    context = multiprocessing.get_context("spawn")
    go, results, ready_queue = context.Event(), context.Queue(), context.Queue()
    processes = [
        context.Process(target=dispatcher, daemon=True,
                        args=(n, names, now.isoformat(), threads, go, results, ready_queue))
        for n in range(dispatchers)
    ]
    for process in processes:
        process.start()
    # The processes import ppipe and connect first; the clock starts when all are ready.
    for _ in processes:
        ready = ready_queue.get(timeout=180)
        assert ready == "ready", ready
    began = time.perf_counter()
    go.set()
    reports = [results.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(30)
    return elapsed, reports


def check_exactly_once(names: list[str], now: datetime, workdir: Path, reports: list[dict]) -> list[str]:
    """Every problem with the tick's outcome (empty when every due row went out exactly once)."""
    from ppipe import settings
    from ppipe.ledger import Ledger

    problems = []
    ledger = Ledger()
    due_rows = 0
    for name in names:
        for row in ledger.releases(name):
            if row.scheduled_at <= now:
                due_rows += 1
                if row.status != "delivered" or row.attempts != 1:
                    problems.append(f"{name} {row.name}: {row.status} after {row.attempts} attempt(s) (due: delivered once)")
            elif row.status != "planned" or row.attempts != 0:
                problems.append(f"{name} {row.name}: {row.status} after {row.attempts} attempt(s) (not due: untouched)")
        delivered_files = sorted(p.name for p in (workdir / "out" / name).glob("release_*"))
        audit_files = sorted(p.name for p in settings.releases_dir(name).glob("release_*"))
        expected = sorted(f"release_{row.index}.csv" for row in ledger.releases(name) if row.scheduled_at <= now)
        if delivered_files != expected:
            problems.append(f"{name}: destination holds {delivered_files}, expected {expected}")
        if audit_files != expected:
            problems.append(f"{name}: audit folder holds {audit_files}, expected {expected}")
    ledger.engine.dispose()
    reported = Counter((run["name"], index, destination)
                       for report in reports for run in report["runs"] for index, destination in run.get("delivered", []))
    twice = [key for key, count in reported.items() if count > 1]
    if twice:
        problems.append(f"{len(twice)} (release, destination) reported delivered by more than one run: {twice[:3]}")
    if sum(reported.values()) != due_rows:
        problems.append(f"the dispatchers reported {sum(reported.values())} deliveries for {due_rows} due rows")
    errors = [f"{run['name']}: {run.get('error') or run['failed']}"
              for report in reports for run in report["runs"] if run.get("error") or run.get("failed")]
    problems += errors[:10]
    if due_rows != len(names):
        problems.append(f"{due_rows} rows were due at the tick, expected exactly {len(names)} (one per challenge)")
    return problems


# --- main ----------------------------------------------------------------------------------


def summary(timings: list[float]) -> str:
    return (f"median {statistics.median(timings):.2f} ms, p95 {percentile(timings, 0.95):.2f} ms, "
            f"max {max(timings):.2f} ms")


def run(args, workdir: Path, backend: str) -> bool:
    ok = True
    began = time.perf_counter()
    names = build(workdir, args.challenges, args.releases)
    print(f"[{backend}] registered {len(names)} challenges x {args.releases} releases "
          f"({len(names) * args.releases} release rows) through ppipe.api.create in {time.perf_counter() - began:.1f} s")

    timings, found = time_due_selection(names, NOW)
    worst = max(timings)
    print(f"[{backend}] due selection per challenge (Ledger.due, {len(timings)} calls, {found} rows due): "
          f"{summary(timings)} (target max < {DUE_TARGET_MS:g} ms) {'OK' if worst < DUE_TARGET_MS else 'MISSED'}")
    ok &= worst < DUE_TARGET_MS
    everywhere, found_all = time_due_everywhere(NOW)
    print(f"[{backend}] due selection across all challenges (one query, {found_all} rows): "
          f"{summary(everywhere)} (target max < {DUE_TARGET_MS:g} ms) {'OK' if max(everywhere) < DUE_TARGET_MS else 'MISSED'}")
    ok &= max(everywhere) < DUE_TARGET_MS
    if found != len(names) or found_all != len(names):
        print(f"[{backend}] expected {len(names)} due rows, found {found} / {found_all}")
        ok = False
    if args.plans:
        for label, plan in query_plans(names, NOW).items():
            print(f"[{backend}] plan ({label}):")
            for line in plan:
                print(f"    {line}")

    elapsed, reports = dispatch_tick(names, NOW, args.dispatchers, args.threads)
    runs = [run for report in reports for run in report["runs"]]
    won = sum(run.get("won", 0) for run in runs)
    lost = sum(run.get("lost", 0) for run in runs)
    idle = sum(bool(run.get("idle")) for run in runs)
    per_run = [run["seconds"] for run in runs]
    problems = check_exactly_once(names, NOW, workdir, reports)
    print(f"[{backend}] tick: {len(runs)} dispatch runs ({args.dispatchers} racing processes x {args.threads} threads) "
          f"over {len(names)} challenges in {elapsed:.1f} s; claims won {won}, lost to the other dispatcher {lost}, "
          f"runs that found the release already claimed {idle}; "
          f"per run: median {statistics.median(per_run) * 1000:.0f} ms, max {max(per_run) * 1000:.0f} ms")
    if problems:
        print(f"[{backend}] exactly-once FAILED ({len(problems)} problem(s)):")
        for problem in problems[:20]:
            print(f"    {problem}")
        ok = False
    else:
        print(f"[{backend}] exactly-once OK: {won} due releases delivered, each once (attempts == 1), "
              f"one file per (release, destination), nothing else delivered")

    timings_after, _ = time_due_selection(names, NOW, repeat=1)
    print(f"[{backend}] due selection per challenge after the tick: {summary(timings_after)}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--challenges", type=int, default=200)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--dispatchers", type=int, default=2, help="racing dispatcher processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per dispatcher process (default 4)")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a fresh database is created on it, then dropped)")
    parser.add_argument("--plans", action="store_true", help="print the query plans of the due selections")
    parser.add_argument("--sabotage", action="store_true",
                        help="negative control: claims that do not exclude each other (the check must fail)")
    args = parser.parse_args()
    if args.sabotage:
        os.environ["PPIPE_LOAD_SABOTAGE"] = "1"  # read by the dispatcher processes

    with tempfile.TemporaryDirectory(prefix="ppipe-load-") as tmp:
        workdir = Path(tmp)
        os.environ["PPIPE_HOME"] = str(workdir / "home")
        os.environ.pop("PPIPE_DATABASE_URL", None)
        backend, database = "sqlite", None
        if args.postgres:
            database = create_database(args.postgres)
            os.environ["PPIPE_DATABASE_URL"] = database
            backend = "postgresql"
        began = time.perf_counter()
        try:
            ok = run(args, workdir, backend)
        finally:
            if database:
                drop_database(args.postgres, database)
        print(f"[{backend}] {'all targets met' if ok else 'FAILED'} ({time.perf_counter() - began:.0f} s in all)")
    sys.exit(0 if ok else 1)


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
