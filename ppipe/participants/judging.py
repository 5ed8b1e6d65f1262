"""Judging answers, vectorised (polars): validation rows against what was delivered, predictions against labels.

Validation rules: rows are keyed by ``row_id``; numbers match within ``atol + rtol*|expected|``
(integers exactly); null equals null and NaN equals NaN; strings, booleans and dates exactly.
A duplicate or unknown row id (never delivered) makes the answer ``invalid``; a requested row
that is absent counts as wrong; a delivered row that was not requested is ``extra``.
``correct`` = every requested row right and nothing extra; ``incorrect`` = no row right;
``partial`` otherwise. Answer columns the release does not have are ignored (and named).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

ROW_ID = "row_id"
PREDICTION = "prediction"
MAX_SHOWN = 20
_GOT = "\x00got:"  # suffix of the answer's columns after the join: cannot clash with a real column
_PRESENT = "\x00present"


class Invalid(ValueError):
    """An answer that cannot be judged: the message says what is wrong, naming the column or row."""


@dataclass(frozen=True)
class Verdict:
    """The judgement of one validation answer."""

    status: str  # correct | partial | incorrect | invalid
    expected: int
    matched: int = 0
    missing: int = 0
    extra: int = 0
    mismatches: list[dict] = field(default_factory=list)
    missing_row_ids: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    reason: str | None = None

    def to_json(self) -> dict:
        doc = {
            "status": self.status, "matched": self.matched, "expected": self.expected,
            "missing": self.missing, "extra": self.extra, "mismatches": self.mismatches,
        }
        if self.missing_row_ids:
            doc["missing_row_ids"] = self.missing_row_ids
        if self.ignored_columns:
            doc["ignored_columns"] = self.ignored_columns
        if self.reason:
            doc["reason"] = self.reason
        return doc


def invalid(expected: int, reason: str) -> Verdict:
    return Verdict("invalid", expected, missing=expected, reason=reason)


# --- validation ----------------------------------------------------------------------------


def judge_validation(
    expected: pl.DataFrame, answer: pl.DataFrame, *, rtol: float = 1e-6, atol: float = 1e-6,
    known_ids: pl.Series | None = None,
) -> Verdict:
    """Judge ``answer`` against ``expected`` (the requested rows as delivered, with ``row_id``).

    ``known_ids`` are the row ids delivered so far: an answered id outside them is unknown
    (invalid); without them any id that was not requested is merely extra.
    """
    n = expected.height
    try:
        ids = row_ids(answer)
    except Invalid as exc:
        return invalid(n, str(exc))
    if (duplicate := first_duplicate(ids)) is not None:
        return invalid(n, f"row_id {duplicate} appears more than once")
    requested = ids.is_in(expected[ROW_ID].implode())
    if known_ids is not None and (unknown := ~requested & ~ids.is_in(known_ids.implode())).any():
        return invalid(n, f"row_id {ids.filter(unknown)[0]} is not a row that was delivered")
    columns = [c for c in expected.columns if c != ROW_ID]
    answered = (
        answer.with_columns(ids).filter(requested)
        .select([ROW_ID] + [pl.col(c).alias(c + _GOT) for c in columns if c in answer.columns])
        .with_columns(pl.lit(True).alias(_PRESENT))
    )
    joined = expected.join(answered, on=ROW_ID, how="left")  # unsorted: only the few rows shown get sorted
    present = joined[_PRESENT].fill_null(False)
    oks = {c: same(joined[c], joined[c + _GOT], rtol=rtol, atol=atol) if c + _GOT in joined.columns
           else pl.repeat(False, n, eager=True) for c in columns}
    right = pl.DataFrame(oks).select(pl.all_horizontal(pl.all())).to_series() if columns else pl.repeat(True, n, eager=True)
    right = right & present
    matched = int(right.sum())
    missing = n - int(present.sum())
    extra = int((~requested).sum())
    status = "correct" if matched == n and extra == 0 else "incorrect" if matched == 0 else "partial"
    return Verdict(
        status, n, matched, missing, extra,
        mismatches=_mismatches(joined, oks, present & ~right),
        missing_row_ids=joined.filter(~present)[ROW_ID].sort().head(MAX_SHOWN).to_list(),
        ignored_columns=sorted(set(answer.columns) - set(expected.columns)),
    )


def first_duplicate(ids: pl.Series) -> int | None:
    """The smallest row id that appears twice, or None (a sort: cheaper than hashing on a busy machine)."""
    ordered = np.sort(ids.to_numpy())
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    return int(repeated[0]) if len(repeated) else None


def row_ids(answer: pl.DataFrame) -> pl.Series:
    """The answer's ``row_id`` column as Int64; Invalid naming the first row that is not an integer."""
    if ROW_ID not in answer.columns:
        raise Invalid("the answer has no row_id column")
    raw = answer[ROW_ID]
    if raw.dtype.is_float():
        ids = raw.cast(pl.Int64, strict=False)
        bad = raw.is_null() | raw.is_nan() | (ids.cast(pl.Float64) != raw).fill_null(True)
    else:
        source = raw.cast(pl.String).str.strip_chars() if raw.dtype == pl.String else raw
        ids = source.cast(pl.Int64, strict=False)
        bad = ids.is_null()
    if bad.any():
        position = int(bad.arg_true()[0])
        raise Invalid(f"row {position}: row_id {raw[position]!r} is not an integer")
    return ids.alias(ROW_ID)


def same(expected: pl.Series, got: pl.Series, *, rtol: float = 1e-6, atol: float = 1e-6) -> pl.Series:
    """Element-wise: does ``got`` equal ``expected`` under the judging rules? (no nulls in the result)"""
    dtype = expected.dtype
    coerced = coerce(got, dtype)
    unparsable = got.is_not_null() & coerced.is_null()
    both_null = expected.is_null() & coerced.is_null()
    if dtype.is_float():
        e, g = expected.cast(pl.Float64), coerced.cast(pl.Float64)
        nan = e.is_nan() & g.is_nan()
        close = ((g - e).abs() <= atol + rtol * e.abs()) | (g == e)  # == covers infinities
        values = (nan | (close & ~e.is_nan() & ~g.is_nan())).fill_null(False)
    else:
        values = (expected == coerced).fill_null(False)
    return (both_null & ~unparsable) | values


def coerce(got: pl.Series, dtype: pl.DataType) -> pl.Series:
    """``got`` as ``dtype`` where it can be read as one, null where it cannot (never raises)."""
    if got.dtype == dtype:
        return got
    try:
        if got.dtype == pl.Null:
            return pl.Series(got.name, [None] * got.len(), dtype=dtype)
        if dtype == pl.Boolean and got.dtype == pl.String:
            return _bool_from_text(got.str.strip_chars().str.to_lowercase())
        if dtype.is_integer() and got.dtype.is_float():
            # 3.0 is 3, but 3.5 is not an integer (a plain cast would truncate it to 3)
            as_int = got.cast(dtype, strict=False)
            return as_int.zip_with(as_int.cast(pl.Float64) == got, pl.Series([None], dtype=dtype))
        if dtype.is_integer() and got.dtype == pl.String:
            text = got.str.strip_chars()
            as_int = text.cast(dtype, strict=False)
            as_float = text.cast(pl.Float64, strict=False)
            return as_int.fill_null(coerce(as_float, dtype))
        if dtype.is_temporal() and got.dtype == pl.String:
            return _temporal_from_text(got, dtype)
        if dtype == pl.String and got.dtype.is_temporal():
            return got.dt.to_string()
        return got.cast(dtype, strict=False)
    except (pl.exceptions.PolarsError, ValueError, TypeError):
        return pl.Series(got.name, [None] * got.len(), dtype=dtype)


def _bool_from_text(text: pl.Series) -> pl.Series:
    return pl.select(
        pl.when(text.is_in(["true", "1"])).then(True).when(text.is_in(["false", "0"])).then(False)
        .otherwise(None).alias(text.name)
    ).to_series()


def _temporal_from_text(got: pl.Series, dtype: pl.DataType) -> pl.Series:
    text = got.str.strip_chars()
    if dtype == pl.Date:
        return text.str.to_date(strict=False)
    parsed = text.str.to_datetime(strict=False, time_unit=getattr(dtype, "time_unit", "us") or "us")
    zone = getattr(dtype, "time_zone", None)
    if zone and parsed.dtype.time_zone is None:
        return parsed.dt.replace_time_zone(zone)
    if zone:
        return parsed.dt.convert_time_zone(zone)
    return parsed.dt.replace_time_zone(None) if parsed.dtype.time_zone else parsed


def _mismatches(joined: pl.DataFrame, oks: dict[str, pl.Series], wrong: pl.Series) -> list[dict]:
    """Up to MAX_SHOWN (row, column, expected, got) of rows that were answered but wrong, by row id."""
    flags = pl.DataFrame({f"\x00ok:{c}": ok for c, ok in oks.items()})
    rows = pl.concat([joined, flags], how="horizontal").filter(wrong).sort(ROW_ID).head(MAX_SHOWN)
    shown: list[dict] = []
    for row in rows.iter_rows(named=True):
        for column in oks:
            if row[f"\x00ok:{column}"] or len(shown) >= MAX_SHOWN:
                continue
            got_column = column + _GOT
            shown.append({
                "row_id": row[ROW_ID], "column": column, "expected": jsonable(row[column]),
                "got": jsonable(row[got_column]) if got_column in row else None,
                **({} if got_column in row else {"problem": "column missing"}),
            })
    return shown


def jsonable(value: Any) -> Any:
    """A value strict JSON can carry: NaN and infinities as strings, dates as ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


# --- predictions ---------------------------------------------------------------------------


def check_predictions(answer: pl.DataFrame, row_ids_requested: pl.Series, *, numeric: bool) -> pl.DataFrame:
    """The answer as (row_id, prediction); Invalid for a duplicate or unknown row id, a missing
    column, or (regression metrics) a missing or non-numeric prediction."""
    ids = row_ids(answer)
    if PREDICTION not in answer.columns:
        raise Invalid("the answer has no prediction column")
    if (duplicate := first_duplicate(ids)) is not None:
        raise Invalid(f"row_id {duplicate} appears more than once")
    if (unknown := ~ids.is_in(row_ids_requested.implode())).any():
        raise Invalid(f"row_id {ids.filter(unknown)[0]} is not in this request")
    frame = pl.DataFrame({ROW_ID: ids, PREDICTION: answer[PREDICTION]})
    if numeric:
        values = coerce(frame[PREDICTION], pl.Float64)
        bad = values.is_null() | ~values.is_finite().fill_null(False)
        if bad.any():
            raise Invalid(f"row_id {ids.filter(bad)[0]}: prediction {frame[PREDICTION].filter(bad)[0]!r} is not a finite number")
        if (absent := ~row_ids_requested.is_in(ids.implode())).any():
            raise Invalid(f"row_id {row_ids_requested.filter(absent)[0]}: no prediction (rmse and mae need every row)")
        frame = frame.with_columns(values)
    return frame


def score(metric: str, truth: pl.Series, predicted: pl.Series) -> float:
    """The metric of ``predicted`` against ``truth`` (same order); a null prediction is wrong."""
    if truth.len() == 0:
        return float("nan")
    if metric in ("rmse", "mae"):
        error = coerce(predicted, pl.Float64).to_numpy() - truth.cast(pl.Float64).to_numpy()
        return float(np.sqrt(np.mean(error ** 2))) if metric == "rmse" else float(np.mean(np.abs(error)))
    guess = coerce(predicted, truth.dtype)
    if metric == "accuracy":
        return float((guess == truth).fill_null(False).mean())
    if metric == "macro_f1":
        return macro_f1(truth, guess)
    raise ValueError(f"unknown metric {metric!r}")


def macro_f1(truth: pl.Series, guess: pl.Series) -> float:
    """Unweighted mean of per-class F1 over every class seen in truth or predictions (as scikit-learn)."""
    missing = "\x00missing"
    t = truth.cast(pl.String).fill_null(missing).to_numpy()
    g = guess.cast(pl.String).fill_null(missing).to_numpy()
    classes, codes = np.unique(np.concatenate([t, g]), return_inverse=True)
    t_codes, g_codes = codes[: len(t)], codes[len(t):]
    k = len(classes)
    tp = np.bincount(t_codes[t_codes == g_codes], minlength=k)
    fp = np.bincount(g_codes, minlength=k) - tp
    fn = np.bincount(t_codes, minlength=k) - tp
    # A null prediction is wrong, but "no prediction" is not a class of its own.
    keep = classes != missing
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k, dtype=float), where=denominator > 0)
    return float(f1[keep].mean()) if keep.any() else 0.0
