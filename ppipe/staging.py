"""Staging: read the source once into a local Parquet copy that every release slices.

``PPIPE_HOME/staged/<challenge>/`` holds ``data.parquet`` (row groups of ROW_GROUP rows,
shuffled once when ``output.shuffle``) and ``staged.json`` (fingerprint, rows, column types),
written last: a folder without ``staged.json`` is an unfinished staging and is redone.
CSV/TSV are staged as text, field by field, so a release in the source's own format
carries the source's values unchanged; column types are worked out only when the output
format needs them (see :func:`column_types`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ppipe import durable, settings, sources
from ppipe.errors import SourceError
from ppipe.model import Challenge, Source

ROW_GROUP = 65_536
DATA, META = "data.parquet", "staged.json"
ROW_ID = "row_id"
STAGED_ROW_ID = "__ppipe_row_id"  # original row number, stored only in a shuffled copy
SHUFFLE_BUCKET_ROWS = 262_144  # rows held in memory at once while shuffling
SHUFFLE_MAX_BUCKETS = 1024  # open files while shuffling; beyond it buckets grow instead
TYPE_DTYPES = {
    "string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean,
    "date": pl.Date, "datetime": pl.Datetime("us"),
}


@dataclass(frozen=True)
class StagedSource:
    """The staged copy: its path, row count, the source fingerprint it was made from, and the
    type of each column as delivered (``columns``) with where that type came from
    (``types_origin``: "source" = kept as in the source, "inferred", or "declared")."""

    path: Path
    rows: int
    fingerprint: dict
    columns: dict[str, str]
    types_origin: dict[str, str]
    source_sha256: str | None = None
    shuffled: bool = False


# --- public API --------------------------------------------------------------------------------


def stage(challenge: Challenge) -> StagedSource:
    """The staged copy of the challenge's source, made now unless a finished one exists.

    Idempotent: an existing staged copy is returned as is when the source is unchanged;
    SourceError when the source changed (or vanished) since staging, or cannot be read.
    """
    existing = load_staged(challenge)
    if existing is not None:
        _compare(challenge.source, existing.fingerprint)
        return existing
    return _stage_now(challenge)


def check_source_unchanged(challenge: Challenge) -> None:
    """None if the source still matches the staged fingerprint; SourceError if it changed,
    disappeared, or was never staged."""
    existing = load_staged(challenge)
    if existing is None:
        raise SourceError(sources.display_url(challenge.source), "has not been staged yet")
    _compare(challenge.source, existing.fingerprint)


def load_staged(challenge: Challenge) -> StagedSource | None:
    """The finished staged copy recorded in ``staged.json``, or None if there is none."""
    folder = settings.staging_dir(challenge.name)
    meta, data = folder / META, folder / DATA
    if not (meta.is_file() and data.is_file()):
        return None
    record = json.loads(meta.read_text())
    record["path"] = data
    return StagedSource(**record)


# --- staging -------------------------------------------------------------------------------------


def _compare(source: Source, recorded: dict) -> None:
    current = sources.fingerprint(source)
    if current != recorded:
        changed = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
        raise SourceError(
            sources.display_url(source),
            f"changed since it was staged ({', '.join(changed)} differ): releases would mix two versions; "
            "restore the original or make a new challenge",
        )


def _stage_now(challenge: Challenge) -> StagedSource:
    folder = settings.staging_dir(challenge.name)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _stage_into(challenge, folder)
    except BaseException:
        if made_folder:  # a refused source leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _stage_into(challenge: Challenge, folder: Path) -> StagedSource:
    source = challenge.source
    before = sources.fingerprint(source)
    local, sha = sources.fetch(source)
    tmp = folder / f".{DATA}.{uuid.uuid4().hex}.tmp"
    shuffled_tmp = tmp.with_suffix(".shuffled")
    try:
        lf = sources.scan_local(source, local)
        _check_columns(challenge, lf)
        with sources.source_errors(source, "cannot stage"):
            lf.sink_parquet(tmp, compression="lz4", row_group_size=ROW_GROUP, statistics=False)
        rows = pq.ParquetFile(tmp).metadata.num_rows
        if rows == 0:
            raise SourceError(sources.display_url(source), "has no data rows")
        if challenge.output.shuffle:
            shuffle_parquet(tmp, shuffled_tmp, challenge.output.seed or 0)
            shuffled_tmp.replace(tmp)
        columns, origin = column_types(challenge, tmp)
        if sha is None:  # local, uncompressed: hash now, it is still in the page cache
            sha = sources.sha256_file(local)
        if sources.fingerprint(source) != before:
            raise SourceError(sources.display_url(source), "changed while it was being staged; try again")
        durable.fsync_file(tmp)
        tmp.replace(folder / DATA)
        staged = StagedSource(
            path=folder / DATA, rows=rows, fingerprint=before, columns=columns, types_origin=origin,
            source_sha256=sha, shuffled=challenge.output.shuffle,
        )
        write_json_atomically(folder / META, {k: v for k, v in asdict(staged).items() if k != "path"})
    finally:
        tmp.unlink(missing_ok=True)
        shuffled_tmp.unlink(missing_ok=True)
    sources.discard_fetched(source)
    return staged


def _check_columns(challenge: Challenge, lf: pl.LazyFrame) -> None:
    with sources.source_errors(challenge.source):
        names = lf.collect_schema().names()
    url = sources.display_url(challenge.source)
    if challenge.output.row_id and ROW_ID in names:
        raise SourceError(url, f"already has a column named {ROW_ID!r}: set output.row_id to false or rename it")
    unknown = sorted(set(challenge.source.column_types) - set(names))
    if unknown:
        raise SourceError(url, f"source.column_types names columns it does not have: {', '.join(unknown)}")


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` via a fsynced temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    durable.fsync_dir(path.parent)


# --- shuffle -----------------------------------------------------------------------------------


def shuffle_parquet(src: Path, dst: Path, seed: int) -> None:
    """Write the rows of ``src`` to ``dst`` in a seeded uniformly random order, adding STAGED_ROW_ID.

    Two-pass external shuffle (Rao 1961 / Sandelius): each row goes to a random bucket file,
    then each bucket is permuted in memory and appended. Memory is one bucket (about
    SHUFFLE_BUCKET_ROWS rows) whatever the source size; disk is one extra copy, briefly.
    The order depends only on the seed and the row count (numpy's PCG64 stream).
    Hand-written: neither polars nor pyarrow offers a bounded-memory seeded shuffle.
    """
    parquet = pq.ParquetFile(src)
    n_rows = parquet.metadata.num_rows
    n_buckets = int(min(SHUFFLE_MAX_BUCKETS, max(1, -(-n_rows // SHUFFLE_BUCKET_ROWS))))
    rng = np.random.default_rng(seed)
    bucket_paths = [dst.with_name(f"{dst.name}.bucket{b}") for b in range(n_buckets)]
    writers: list[pq.ParquetWriter | None] = [None] * n_buckets
    try:
        offset = 0
        for batch in parquet.iter_batches(batch_size=ROW_GROUP):
            table = pa.Table.from_batches([batch])
            table = table.append_column(STAGED_ROW_ID, pa.array(np.arange(offset, offset + len(table))))
            offset += len(table)
            keys = rng.integers(0, n_buckets, len(table))
            order = np.argsort(keys, kind="stable")
            cuts = np.searchsorted(keys[order], np.arange(n_buckets + 1))
            for b in range(n_buckets):
                if cuts[b] < cuts[b + 1]:
                    if writers[b] is None:
                        writers[b] = pq.ParquetWriter(bucket_paths[b], table.schema, compression="lz4")
                    writers[b].write_table(table.take(order[cuts[b]:cuts[b + 1]]))
        for writer in writers:
            if writer is not None:
                writer.close()
        with pq.ParquetWriter(dst, _schema_with_row_id(parquet), compression="lz4") as out:
            for b, path in enumerate(bucket_paths):
                if writers[b] is None:
                    continue
                bucket = pq.read_table(path)
                out.write_table(bucket.take(rng.permutation(len(bucket))), row_group_size=ROW_GROUP)
                path.unlink()
    finally:
        for path in bucket_paths:
            path.unlink(missing_ok=True)


def _schema_with_row_id(parquet: pq.ParquetFile) -> pa.Schema:
    return parquet.schema_arrow.append(pa.field(STAGED_ROW_ID, pa.int64()))


# --- column types ------------------------------------------------------------------------------


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
        columns = {n: declared.get(n) or _type_name(schema[n]) for n in names}
        return columns, {n: "declared" if n in declared else "source" for n in names}
    _check_declared(challenge.source, staged_path, declared, text=True)
    inferred = _infer_text_types(staged_path, [n for n in names if n not in declared])
    columns = {n: declared.get(n) or inferred[n] for n in names}
    return columns, {n: "declared" if n in declared else "inferred" for n in names}


def _type_name(dtype: pl.DataType) -> str:
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


def declared_or_inferred_cast(staged: StagedSource, text_source: bool) -> list[pl.Expr]:
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
