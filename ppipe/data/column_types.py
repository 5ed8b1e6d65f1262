"""Column types of a staged source: kept as text, declared, or inferred over every row.

Text kept as text: every column "string" from the "source". Text converted to a typed
format (Parquet, JSON, NDJSON): declared types, the others inferred over *all* rows; a
declared type that some value does not fit is a SourceError at staging rather than a failed
release later. Typed sources (Parquet, JSON, NDJSON) keep their types unless declared. The
manifest says which type each column got and where it came from. Staging writes the values
in these types (:class:`TypePlan`), so a release only reads and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from ppipe.data import sources
from ppipe.errors import SourceError
from ppipe.challenge.spec import Challenge, Source


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
    a value that does not fit becomes null (the staging checks made sure none of those exist).
    The empty field needs no rule of its own: no conversion reads "" as a value (and a rule
    copying every text first cost as much as the conversions)."""
    text = pl.col(column)
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


# --- the types, planned before the one staging pass -------------------------------------------

SAMPLE_ROWS = 10_000  # rows the candidate types are inferred on before the full pass checks them
_CONVERTED = "\x00ppipe_typed\x00"  # prefix of a converted column while its source column is still needed


@dataclass(frozen=True)
class TypePlan:
    """The delivered types, applied while staging (``conversions``), and the one-row
    aggregate (``checks``, computed in the same pass) that says whether the plan holds.

    Inference over every row is done as "infer on a sample, check on all": a type that does
    not fit the sample does not fit all rows, so the first type fitting the sample is the
    first fitting all rows exactly when its misfit count over all rows is 0. Only when a
    check fails is the source inferred again over every row (:func:`full_plan`).
    """

    columns: dict[str, str]
    origin: dict[str, str]
    conversions: dict[str, pl.Expr] = field(default_factory=dict)
    checks: list[pl.Expr] = field(default_factory=list)

    def apply(self, lf: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
        """(the rows in their delivered types, the checks' one-row frame or None): both over
        one converted frame, so that a read computing both converts each value once."""
        if not self.conversions:
            return lf, lf.select(self.checks) if self.checks else None
        wide = lf.with_columns(expr.alias(_CONVERTED + n) for n, expr in self.conversions.items())
        names = lf.collect_schema().names()
        out = wide.select(pl.col(_CONVERTED + n).alias(n) if n in self.conversions else pl.col(n) for n in names)
        return out, wide.select(self.checks) if self.checks else None

    def failures(self, counts: dict[str, int]) -> tuple[dict[str, int], bool]:
        """(declared column -> values not fitting, whether an inferred type failed its check)."""
        declared = {k.split("\x00")[0]: v for k, v in counts.items() if k.endswith("\x00declared") and v}
        inferred = any(v for k, v in counts.items() if not k.endswith("\x00declared"))
        return declared, inferred


def plan_types(challenge: Challenge, lf: pl.LazyFrame) -> TypePlan:
    """The types the staged copy is written in (the rules are in the module's docstring)."""
    schema = lf.collect_schema()
    names = list(schema.names())
    declared = challenge.source.column_types
    if challenge.source.format not in sources.TEXT_FORMATS:
        columns = {n: declared.get(n) or type_name(schema[n]) for n in names}
        origin = {n: "declared" if n in declared else "source" for n in names}
        conversions = {n: pl.col(n).cast(TYPE_DTYPES[t], strict=False) for n, t in declared.items()}
        checks = [(pl.col(n).is_not_null() & pl.col(_CONVERTED + n).is_null()).sum().alias(f"{n}\x00declared")
                  for n in declared]
        return TypePlan(columns, origin, conversions, checks)
    if not needs_types(challenge):
        return TypePlan({n: "string" for n in names}, {n: "source" for n in names})
    sample = lf.head(SAMPLE_ROWS).collect().lazy()  # read once: inference and the datetime shapes both look at it
    candidates = _candidates(sample, [n for n in names if n not in declared])
    checks = [_converted_misfits(n, t).alias(f"{n}\x00declared") for n, t in declared.items() if t != "string"]
    for n, t in candidates.items():
        if t is None:  # nothing in the sample: "string" holds only if nothing anywhere
            checks.append(_present(n).sum().alias(f"{n}\x00present"))
        elif t != "string":
            checks.append(_converted_misfits(n, t).alias(f"{n}\x00{t}"))
    plan = _text_plan(names, {**{n: t or "string" for n, t in candidates.items()}, **declared}, declared, checks)
    return _with_plain_datetimes(plan, sample, [n for n, t in candidates.items() if t == "datetime"])


def _with_plain_datetimes(plan: TypePlan, sample: pl.LazyFrame, names: list[str]) -> TypePlan:
    """The plan converting the inferred datetime columns whose sampled values are all plain
    ``YYYY-MM-DD HH:MM:SS`` with polars' fast fixed-format parser (about 4x cheaper than the
    general format, whose fractional seconds need the slow one). For text of exactly that
    shape both parsers give the same value, so the check is: every value has that shape."""
    plain = [n for n in names if _shape_misfits(sample, n) == 0]
    if not plain:
        return plan
    conversions = {**plan.conversions, **{n: _plain_datetime(n) for n in plain}}
    checks = [c for c in plan.checks if c.meta.output_name() not in {f"{n}\x00datetime" for n in plain}]
    checks += [(_present(n) & (pl.col(_CONVERTED + n).is_null() | ~pl.col(n).str.contains(_PLAIN_DATETIME)))
               .sum().alias(f"{n}\x00datetime") for n in plain]
    return TypePlan(plan.columns, plan.origin, conversions, checks)


_PLAIN_DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"


def _plain_datetime(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)


def _shape_misfits(sample: pl.LazyFrame, column: str) -> int:
    bad = _present(column) & ~pl.col(column).str.contains(_PLAIN_DATETIME)
    return int(sample.select(bad.sum()).collect().item())


def full_plan(challenge: Challenge, lf: pl.LazyFrame) -> TypePlan:
    """The plan from inference over every row (one extra streaming pass): used when a
    sampled type failed its check. Declared types have passed theirs by then."""
    names = list(lf.collect_schema().names())
    declared = challenge.source.column_types
    inferred = _candidates(lf, [n for n in names if n not in declared])
    return _text_plan(names, {**{n: t or "string" for n, t in inferred.items()}, **declared}, declared, [])


def declared_misfit_error(source: Source, bad: dict[str, int]) -> SourceError:
    detail = ", ".join(f"{n} ({c} values are not {source.column_types[n]})" for n, c in bad.items())
    return SourceError(sources.display_url(source), f"does not fit source.column_types: {detail}")


def staged_casts(staged: TypedColumns, text_source: bool, schema: pl.Schema) -> list[pl.Expr]:
    """Expressions turning the columns of a staged copy into their delivered types, for the
    columns staged in another type (a copy staged before types were applied while staging)."""
    exprs = []
    for name, type_name_ in staged.columns.items():
        if staged.types_origin[name] == "source" or schema[name] == TYPE_DTYPES[type_name_]:
            continue
        if text_source and schema[name] == pl.String:
            exprs.append(text_to(name, type_name_).alias(name))
        elif not text_source:
            exprs.append(pl.col(name).cast(TYPE_DTYPES[type_name_]).alias(name))
    return exprs


def _text_plan(names: list[str], types: dict[str, str], declared: dict[str, str], checks: list[pl.Expr]) -> TypePlan:
    columns = {n: types[n] for n in names}
    origin = {n: "declared" if n in declared else "inferred" for n in names}
    conversions = {n: text_to(n, t) for n, t in columns.items() if t != "string"}
    return TypePlan(columns, origin, conversions, checks)


def _present(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & (pl.col(column) != "")


def _converted_misfits(column: str, type_name_: str) -> pl.Expr:
    """As :func:`_misfits`, from the column converted beside it (no second conversion)."""
    bad = _present(column) & pl.col(_CONVERTED + column).is_null()
    if type_name_ in ("int", "float"):
        bad = bad | (_present(column) & pl.col(column).str.contains(_INT_LIKE_WITH_LEADING_ZERO))
    return bad.sum()


def _candidates(lf: pl.LazyFrame, names: list[str]) -> dict[str, str | None]:
    """Per column, the first type fitting every value of ``lf`` ("string" if none does),
    None if ``lf`` has no value in that column."""
    if not names:
        return {}
    checks = [_misfits(n, t) for n in names for t in INFERENCE_ORDER]
    checks += [_present(n).sum().alias(f"{n}\x00present") for n in names]
    counts = lf.select(checks).collect(engine="streaming").row(0, named=True)
    result: dict[str, str | None] = {}
    for n in names:
        fits = [t for t in INFERENCE_ORDER if counts[f"{n}\x00{t}"] == 0]
        result[n] = (fits[0] if fits else "string") if counts[f"{n}\x00present"] > 0 else None
    return result
