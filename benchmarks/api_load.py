"""API load: 200 participants polling their feed and fetching their requests from a real `ppipe api`
(uvicorn) on loopback, on SQLite or PostgreSQL.

Each participant is an async aiohttp client (its own keep-alive connection) that, every ``--interval`` seconds, reads its feed from
its cursor (``/v1/feed?after=``), then its open requests (``/v1/requests``), then one request by id,
as a participant's pipeline would. Prints throughput, latency percentiles and errors over the
measured window (after a warm-up); exits 1 below 500 requests/s, above 50 ms at p99 or on any error.

    python benchmarks/api_load.py                                                    # SQLite
    python benchmarks/api_load.py --postgres postgresql://postgres@127.0.0.1:5432/test --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS, TARGET_P99_MS = 500, 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(home: Path, participants: int) -> list[str]:
    """A challenge with release 0 delivered and ``participants`` participants; returns their tokens."""
    from ppipe import api, delivery
    from ppipe.ledger import Ledger
    from ppipe.participants import service
    from ppipe.challenge.specfile import parse_challenge

    ledger = Ledger()
    start = datetime.now(timezone.utc) - timedelta(seconds=5)
    challenge = parse_challenge({
        "name": "load-api", "source": str(ROOT / "deployments" / "data" / "sensors.csv"), "releases": 10,
        "schedule": {"start": start.isoformat(), "every": "1h"},
        "destinations": [{"kind": "local", "path": str(home / "out")}],
        "output": {"format": "parquet", "row_id": True},
        "requests": {"validation": {"rows": 20}, "prediction": {"label": "label"}},
    })
    api.create(challenge, ledger=ledger)
    tokens = [service.add(challenge.name, f"p{i:03d}", ledger=ledger).token for i in range(participants)]
    delivery.dispatch(ledger, challenge.name)
    service.judge(challenge.name, ledger=ledger)
    ledger.engine.dispose()
    return tokens


def start_server(env: dict, port: int, workers: int) -> subprocess.Popen:
    executable = shutil.which("ppipe", path=str(Path(sys.executable).parent)) or "ppipe"
    process = subprocess.Popen([executable, "api", "--port", str(port), "--workers", str(workers)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"ppipe api did not start: {process.stderr.read().decode()[-2000:]}")


async def participant(http, token: str, interval: float, stop: float, warm: float,
                      latencies: list, errors: list) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    after, request_id = 0, None
    await asyncio.sleep(np.random.default_rng(hash(token) % 2**32).uniform(0, interval))  # spread the starts
    while time.perf_counter() < stop:
        began = time.perf_counter()
        paths = [f"/v1/feed?after={after}", "/v1/requests"] + ([f"/v1/requests/{request_id}"] if request_id else [])
        for path in paths:
            sent = time.perf_counter()
            try:
                async with http.get(path, headers=headers) as response:
                    status, body = response.status, await response.json() if response.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors.append(f"{path}: {type(exc).__name__}")
                continue
            elapsed = time.perf_counter() - sent
            if sent >= warm:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(f"{path}: {status}")
            if path.startswith("/v1/feed") and body is not None:
                after = body["next_after"]
            elif path == "/v1/requests" and body:
                request_id = body[0]["id"]
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - began)))


async def drive(base: str, tokens: list[str], seconds: float, interval: float, warmup: float) -> tuple:
    """One keep-alive connection per participant, as 200 separate pipelines would hold."""
    latencies, errors = [], []
    connector = aiohttp.TCPConnector(limit=len(tokens), keepalive_timeout=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        now = time.perf_counter()
        warm, stop = now + warmup, now + warmup + seconds
        await asyncio.gather(*(participant(http, t, interval, stop, warm, latencies, errors) for t in tokens))
    return latencies, errors


def client_process(args: tuple) -> tuple:
    """One load-generating process driving a share of the participants (one uvloop loop each).
    aiohttp, not httpx: httpx spent about 5 ms of client CPU per request here, so the two
    client processes, not the server, were what saturated the two cores."""
    uvloop.install()
    return asyncio.run(drive(*args))


def load(base: str, tokens: list[str], seconds: float, interval: float, warmup: float, processes: int) -> tuple:
    """Spread the participants over ``processes`` client processes, so the client is not the bottleneck."""
    shares = [tokens[i::processes] for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(client_process, [(base, share, seconds, interval, warmup) for share in shares])
    return [x for r in results for x in r[0]], [x for r in results for x in r[1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (a fresh database is made, then dropped)")
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a participant's polls (3 GETs each)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    parser.add_argument("--workers", type=int, default=1, help="`ppipe api --workers`")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ppipe-api-load-"))
    database = None
    try:
        if args.postgres:
            from benchmarks.load import create_database

            database = create_database(args.postgres)
        url = database or f"sqlite:///{home / 'ledger.db'}"
        os.environ.update(PPIPE_HOME=str(home), PPIPE_DATABASE_URL=url)
        tokens = build(home, args.participants)
        port = free_port()
        server = start_server(dict(os.environ), port, args.workers)
        try:
            latencies, errors = load(f"http://127.0.0.1:{port}", tokens, args.seconds, args.interval,
                                     args.warmup, args.clients)
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        if database:
            from benchmarks.load import drop_database

            drop_database(args.postgres, database)
        shutil.rmtree(home, ignore_errors=True)
    ms = np.array(latencies) * 1000
    rps = len(latencies) / args.seconds
    p50, p95, p99 = (np.percentile(ms, q) for q in (50, 95, 99))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{backend}, {args.workers} server worker(s), {args.clients} client process(es), every {args.interval} s:")
    print(f"  {args.participants} participants, {len(latencies):,} requests in {args.seconds:.0f} s: "
          f"{rps:.0f} req/s; latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms; errors {len(errors)}")
    if errors:
        print("first errors:", errors[:5], file=sys.stderr)
    ok = rps >= TARGET_RPS and p99 <= TARGET_P99_MS and not errors
    print(f"targets: >= {TARGET_RPS} req/s, p99 <= {TARGET_P99_MS:.0f} ms, no error: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
