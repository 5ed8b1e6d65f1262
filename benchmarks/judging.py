"""Judging a 1,000,000-row validation answer with 10 mixed columns: ppipe's vectorised judge against the
prototype's row-by-row judge (a dict per row, ``np.isclose`` per number), reimplemented here as the baseline.

Both judge the same answer (shuffled, numbers within tolerance, a few values wrong, a few rows
missing, a few extra) and must reach the same verdict (status, matched, missing, extra). Prints
the times and their ratio; exits 1 when the vectorised judge takes more than 1 s or is less than
50x faster.

    python benchmarks/judging.py                 # 1,000,000 rows
    python benchmarks/judging.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from ppipe.participants.judging import judge_validation

RTOL = ATOL = 1e-6


def make_expected(n: int, seed: int = 1) -> pl.DataFrame:
    """What a release delivered: row ids and 10 columns of mixed types, with nulls and NaN."""
    rng = np.random.default_rng(seed)
    floats = rng.normal(20, 5, n)
    floats[rng.random(n) < 0.01] = np.nan
    frame = pl.DataFrame({
        "row_id": rng.permutation(n * 2)[:n].astype(np.int64),
        "temperature": floats,
        "humidity": rng.normal(55, 4, n),
        "pressure": rng.normal(1013, 2, n),
        "vibration": np.abs(rng.normal(0.2, 0.05, n)),
        "count": rng.integers(0, 1_000_000, n),
        "sensor": pl.Series([f"S{i:02d}" for i in rng.integers(0, 64, n)]),
        "site": pl.Series(rng.choice(["north", "south", "east", "west"], n)),
        "ok": rng.random(n) < 0.9,
        "day": pl.Series([date(2026, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 365, n)]),
        "label": rng.integers(0, 2, n),
    })
    return frame.with_columns(pl.when(pl.int_range(pl.len()) % 97 == 0).then(None)
                              .otherwise(pl.col("humidity")).alias("humidity"))


def make_answer(expected: pl.DataFrame, seed: int = 2) -> pl.DataFrame:
    """The participant's answer: shuffled, noise within tolerance, 100 wrong values, 50 rows missing, 20 extra."""
    rng = np.random.default_rng(seed)
    n = expected.height
    noise = pl.Series(rng.uniform(-0.5, 0.5, n)) * (ATOL + RTOL * expected["pressure"].abs())
    answer = expected.with_columns(pl.col("pressure") + noise)
    wrong = rng.choice(n, 100, replace=False)
    answer = answer.with_columns(pl.when(pl.int_range(pl.len()).is_in(pl.Series(wrong).implode()))
                                 .then(pl.col("count") + 1).otherwise(pl.col("count")).alias("count"))
    answer = answer.slice(50)  # 50 rows missing
    extra = expected.head(20).with_columns(pl.col("row_id") + 10 * n)  # ids never requested
    return pl.concat([answer, extra]).sample(fraction=1.0, shuffle=True, seed=seed)


def prototype_judge(expected_rows: list[dict], answer_rows: list[dict]) -> tuple:
    """The prototype's judge, row by row: a dict per row, np.isclose per numeric value (plus the
    same rules ppipe applies: null equals null, NaN equals NaN, duplicates invalid)."""
    by_id = {row["row_id"]: row for row in expected_rows}
    seen, matched, extra = set(), 0, 0
    for row in answer_rows:
        row_id = row["row_id"]
        if row_id in seen:
            return ("invalid", 0, len(by_id), 0)
        seen.add(row_id)
        want = by_id.get(row_id)
        if want is None:
            extra += 1
            continue
        right = True
        for column, value in want.items():
            got = row.get(column)
            if value is None or got is None:
                right = value is None and got is None
            elif isinstance(value, float):
                right = bool(np.isclose(got, value, rtol=RTOL, atol=ATOL, equal_nan=True))
            else:
                right = got == value
            if not right:
                break
        matched += right
    missing = len(by_id) - len(seen & by_id.keys())
    n = len(by_id)
    status = "correct" if matched == n and extra == 0 else "incorrect" if matched == 0 else "partial"
    return (status, matched, missing, extra)


def best_of(repeat: int, func) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    expected = make_expected(args.rows)
    answer = make_answer(expected)
    print(f"{args.rows:,} requested rows x {expected.width - 1} columns; answer {answer.height:,} rows")

    fast, verdict = best_of(3, lambda: judge_validation(expected, answer, rtol=RTOL, atol=ATOL))
    ours = (verdict.status, verdict.matched, verdict.missing, verdict.extra)
    print(f"vectorised judge:   {fast:8.3f} s  -> {ours}")

    expected_rows, answer_rows = expected.to_dicts(), answer.to_dicts()  # conversion not timed
    slow, theirs = best_of(1, lambda: prototype_judge(expected_rows, answer_rows))
    print(f"row-by-row judge:   {slow:8.3f} s  -> {theirs}")
    ratio = slow / fast
    print(f"speed-up: {ratio:.1f}x (target >= 50x); vectorised time {fast:.3f} s (target <= 1 s)")
    ok = ours == theirs and fast <= 1.0 and ratio >= 50
    if ours != theirs:
        print("the two judges disagree", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
