"""Benchmark of live-endpoint calls: a round to many endpoints, and ppipe's own cost per call.

    .venv/bin/python benchmarks/endpoints.py                  # 200 endpoints, 20 of them hanging
    .venv/bin/python benchmarks/endpoints.py --endpoints 50   # quick run

1. **Round**: one prediction round (50 rows each) to ``--endpoints`` registered services,
   ``--hanging`` of which never answer, with a per-call timeout of ``--timeout`` seconds.
   Goal: the round ends within 1.5x the per-call timeout.
2. **Overhead**: ``--calls`` sequential calls to one local service, alternating a bare httpx
   POST of the same body on a fresh connection (what ppipe does: one connection per call,
   to the address it checked) and ``probe.call`` (guard, encode without the label, sign,
   pinned connection, trace timings, capped read, decode and row check). Medians side by
   side; goal: ppipe's median at most 5 ms above the bare call's.

The services are real uvicorn servers in a child process (tests/endpoints/services.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from ppipe.endpoints import probe, protocols  # noqa: E402
from ppipe.endpoints.guard import Policy  # noqa: E402
from ppipe.endpoints.probe import CallSettings, Endpoint  # noqa: E402
from tests.endpoints.conftest import SECRET, start_services, stop_services  # noqa: E402

ROWS = [{"row_id": i, "x": i / 50, "y": i * 3, "city": f"c{i % 7}", "label": i % 2} for i in range(50)]


def round_benchmark(urls: list[str], hanging: list[str], timeout: float) -> dict:
    endpoints = [Endpoint(f"e{i}", url + "/predict", "ppipe", SECRET) for i, url in enumerate(urls + hanging)]
    settings = CallSettings(timeout=timeout, policy=Policy(True, True), label="label")
    started = time.perf_counter()
    results = asyncio.run(probe.run_round(endpoints, ROWS, settings))
    elapsed = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return {"endpoints": len(endpoints), "hanging": len(hanging), "timeout_s": timeout,
            "round_s": round(elapsed, 3), "ratio": round(elapsed / timeout, 3), "outcomes": outcomes}


async def overhead_benchmark(url: str, calls: int) -> dict:
    settings = CallSettings(timeout=5, policy=Policy(True, True), label="label")
    endpoint = Endpoint("one", url + "/predict", "ppipe", SECRET)
    body = protocols.get("ppipe").encode(protocols.features(ROWS, "label"), "bench")
    headers = {"content-type": "application/json"}
    fresh = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)
    times: dict[str, list[float]] = {"bare httpx, fresh connection": [], "ppipe probe.call": []}
    await fresh.post(url + "/predict", content=body, headers=headers)  # warm up both paths
    await probe.call(endpoint, ROWS, settings)
    for _ in range(calls):
        started = time.perf_counter()
        response = await fresh.post(url + "/predict", content=body, headers=headers)
        times["bare httpx, fresh connection"].append(time.perf_counter() - started)
        assert response.status_code == 200
        started = time.perf_counter()
        result = await probe.call(endpoint, ROWS, settings)
        times["ppipe probe.call"].append(time.perf_counter() - started)
        assert result.outcome == "ok", result.error
    await fresh.aclose()
    medians = {name: round(statistics.median(values) * 1000, 3) for name, values in times.items()}
    p95 = {name: round(sorted(values)[int(0.95 * len(values))] * 1000, 3) for name, values in times.items()}
    return {"calls": calls, "median_ms": medians, "p95_ms": p95,
            "overhead_ms": round(medians["ppipe probe.call"] - medians["bare httpx, fresh connection"], 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--hanging", type=int, default=20)
    parser.add_argument("--servers", type=int, default=20, help="uvicorn servers the answering endpoints share")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    answering = args.endpoints - args.hanging
    process, ports = start_services("--many", str(args.servers), "--hanging", str(min(args.hanging, 5)))
    try:
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        good = [base[f"correct-{i % args.servers}"] for i in range(answering)]
        slow = [base[f"slow-{i % min(args.hanging, 5)}"] for i in range(args.hanging)] if args.hanging else []
        round_figures = round_benchmark(good, slow, args.timeout)
        overhead = asyncio.run(overhead_benchmark(base["correct"], args.calls))
    finally:
        stop_services(process)
    figures = {"round": round_figures, "overhead": overhead,
               "goals": {"round_within_1.5x_timeout": round_figures["ratio"] <= 1.5,
                         "overhead_at_most_5ms": overhead["overhead_ms"] <= 5}}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        r = round_figures
        print(f"round: {r['endpoints']} endpoints ({r['hanging']} hanging), timeout {r['timeout_s']:g}s: "
              f"{r['round_s']:.3f}s = {r['ratio']:.2f}x the timeout (goal <= 1.5x); outcomes {r['outcomes']}")
        print(f"per call, {overhead['calls']} calls each, interleaved:")
        print(f"  {'':30} {'median ms':>10} {'p95 ms':>8}")
        for name, median in overhead["median_ms"].items():
            print(f"  {name:30} {median:>10.3f} {overhead['p95_ms'][name]:>8.3f}")
        print(f"ppipe overhead over the bare call: {overhead['overhead_ms']:.3f} ms (goal <= 5 ms)")
    return 0 if all(figures["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
