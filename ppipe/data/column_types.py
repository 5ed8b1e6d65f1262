"""Column types of a staged source: kept as text, declared, or inferred over every row.

Used when text (CSV/TSV) is converted to a typed format (Parquet, JSON, NDJSON); the
manifest says which type each column got and where it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import polars as pl

from ppipe.data import sources
from ppipe.errors import SourceError
from ppipe.challenge.spec import Challenge, Source
from ppipe.data.shuffle import STAGED_ROW_ID


class TypedColumns(Protocol):
    """Delivered column types and where each came from (a ppipe.data.staged.StagedSource)."""

    columns: dict[str, str]
    types_origin: dict[str, str]

TYPE_DTYPES = {
    "string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean,
    "date": pl.Date, "datetime": pl.Datetime("us"),
}


def needs_types(challenge: Challenge) -> bool:
    """True when text (CSV/TSV) is converted to a typed format, so column types must be chosen."""
    return challenge.source.format in sources.TEXT_FORMATS and challenge.output.format != "csv"


def column_types(challenge: Challenge, staged_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(column -> type name as delivered, column -> "source" | "inferred" | "declared").

    Text kept as text: every column "string" from the "source". Text converted: declared
    types, others inferred over *all* staged rows (one streaming pass); a declared type that
    some value does not fit is a SourceError now rather than a failed release later. Typed
    sources (Parquet, JSON, NDJSON) keep their types unless declared.
    """
    schema = pl.scan_parquet(staged_path).collect_schema()
    names = [n for n in schema.names() if n != STAGED_ROW_ID]
    declared = challenge.source.column_types
    if challenge.source.format in sources.TEXT_FORMATS and not needs_types(challenge):
        return {n: "string" for n in names}, {n: "source" for n in names}
    if challenge.source.format not in sources.TEXT_FORMATS:
        _check_declared(challenge.source, staged_path, declared, text=False)
        columns = {n: declared.get(n) or type_name(schema[n]) for n in names}
        return columns, {n: "declared" if n in declared else "source" for n in names}
    _check_declared(challenge.source, staged_path, declared, text=True)
    inferred = _infer_text_types(staged_path, [n for n in names if n not in declared])
    columns = {n: declared.get(n) or inferred[n] for n in names}
    return columns, {n: "declared" if n in declared else "inferred" for n in names}


def type_name(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "string"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return str(dtype)


_INT_LIKE_WITH_LEADING_ZERO = r"^[+-]?0\d"
INFERENCE_ORDER = ("bool", "int", "float", "date", "datetime")


def text_to(column: str, type_name: str) -> pl.Expr:
    """Expression converting text column ``column`` to ``type_name``; an empty field becomes null,
    a value that does not fit becomes null (the staging checks made sure none of those exist)."""
    text = pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column))
    if type_name == "string":
        return pl.col(column)
    if type_name == "int":
        return text.str.to_integer(strict=False)
    if type_name == "float":
        return text.cast(pl.Float64, strict=False)
    if type_name == "bool":
        lower = text.str.to_lowercase()
        return pl.when(lower == "true").then(True).when(lower == "false").then(False).otherwise(None)
    if type_name == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    if type_name == "datetime":
        return text.str.replace(" ", "T", literal=True).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
    raise ValueError(f"unknown type {type_name!r}")


def _misfits(column: str, type_name: str) -> pl.Expr:
    """Number of non-empty values of text column ``column`` that ``type_name`` cannot hold exactly."""
    present = pl.col(column).is_not_null() & (pl.col(column) != "")
    bad = present & text_to(column, type_name).is_null()
    if type_name in ("int", "float"):  # "00501" is an identifier, not the number 501
        bad = bad | (present & pl.col(column).str.contains(_INT_LIKE_WITH_LEADING_ZERO))
    return bad.sum().alias(f"{column}\x00{type_name}")


def _infer_text_types(staged_path: Path, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    checks = [_misfits(n, t) for n in names for t in INFERENCE_ORDER]
    checks += [(pl.col(n).is_not_null() & (pl.col(n) != "")).sum().alias(f"{n}\x00present") for n in names]
    counts = pl.scan_parquet(staged_path).select(checks).collect(engine="streaming").row(0, named=True)
    result = {}
    for n in names:
        fits = [t for t in INFERENCE_ORDER if counts[f"{n}\x00{t}"] == 0]
        result[n] = fits[0] if fits and counts[f"{n}\x00present"] > 0 else "string"
    return result


def _check_declared(source: Source, staged_path: Path, declared: dict[str, str], text: bool) -> None:
    if not declared:
        return
    lf = pl.scan_parquet(staged_path)
    if text:
        checks = [_misfits(n, t).alias(n) for n, t in declared.items()]
    else:
        checks = [
            (pl.col(n).is_not_null() & pl.col(n).cast(TYPE_DTYPES[t], strict=False).is_null()).sum().alias(n)
            for n, t in declared.items()
        ]
    with sources.source_errors(source, "checking source.column_types"):
        counts = lf.select(checks).collect(engine="streaming").row(0, named=True)
    bad = {n: c for n, c in counts.items() if c}
    if bad:
        detail = ", ".join(f"{n} ({c} values are not {declared[n]})" for n, c in bad.items())
        raise SourceError(sources.display_url(source), f"does not fit source.column_types: {detail}")


def declared_or_inferred_cast(staged: TypedColumns, text_source: bool) -> list[pl.Expr]:
    """Expressions turning staged columns into their delivered types (identity for kept columns)."""
    exprs = []
    for name, type_name in staged.columns.items():
        origin = staged.types_origin[name]
        if origin == "source":
            exprs.append(pl.col(name))
        elif text_source:
            exprs.append(text_to(name, type_name).alias(name))
        else:
            exprs.append(pl.col(name).cast(TYPE_DTYPES[type_name]).alias(name))
    return exprs
