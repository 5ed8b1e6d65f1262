"""Staging: read the source once into what every release is cut from.

Two kinds of staged copy (see :mod:`ppipe.data.staged`), both in a folder with ``staged.json``
written last: a folder without ``staged.json`` is an unfinished staging and is redone. Staging
is a per-machine cache keyed by the source's sha256 (computed by the staging pass itself, which
reads the source once): ``PPIPE_HOME/staged/<challenge>/<first 16 hex of the sha256>/``. The
ledger records the digest at create, so every machine cuts its releases from the same bytes and
refuses a source that differs (a challenge of an older ledger, without a recorded digest, keeps
``PPIPE_HOME/staged/<challenge>/``).

* the fast path, :class:`StagedText` (see :func:`byte_range_eligible`): a CSV or TSV released
  as CSV (with or without row_id) or an NDJSON released as NDJSON, unshuffled. The source is
  validated (a CSV or TSV in the one pass over its bytes that indexes it: UTF-8, and every row
  with as many fields as the header; an NDJSON by one full polars parse that writes nothing),
  and a byte-offset index is stored instead of a copy. A text the byte pass cannot cut safely
  (a TSV whose values need CSV quotes, a blank line where a row number is appended...) is
  staged as Parquet instead.
* :class:`StagedParquet`: a copy, ``data.arrow`` (Arrow IPC) or ``data.parquet`` (with a
  scenario or files), in pieces of ROW_GROUP rows, shuffled once when ``output.shuffle`` (see
  :mod:`ppipe.data.shuffle`). CSV/TSV are staged as text, field by
  field, so a release in the source's own format carries the source's values unchanged;
  column types are worked out only when the output format needs them (see
  :mod:`ppipe.data.column_types`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from ppipe import durable, settings
from ppipe.data import parquet_in_place, sources
from ppipe.data.column_types import TypePlan, declared_misfit_error, full_plan, plan_types, type_name
from ppipe.errors import SourceError, SourceMismatch
from ppipe.challenge.spec import Challenge, Source
from ppipe.data.header import check_names
from ppipe.data.shuffle import fits_in_memory, sink_shuffled
from ppipe.data.staged import META, StagedSource
from ppipe.data.staged_parquet import DATA, DATA_IPC, ROW_GROUP, StagedParquet, scan_copy, sink_copy
from ppipe.data.staged_text import StagedText
from ppipe.data.text_index import BLOCKS, INDEX, BadText, index_text
from ppipe.scenario import cut as scenario_cut

#: staged.json's "kind" -> the class that opens it
KINDS: dict[str, type[StagedSource]] = {
    cls.kind: cls for cls in (StagedParquet, StagedText, parquet_in_place.StagedParquetSource)
}


# --- public API --------------------------------------------------------------------------------


def stage(challenge: Challenge, source_sha256: str | None = None) -> StagedSource:
    """The staged copy of the challenge's source, made now unless a finished one exists.

    ``source_sha256`` is the digest the ledger recorded at create: the copy is this machine's
    cache in ``staged/<name>/<digest>/``, made for this challenge (its id), and a source whose
    bytes differ from the recorded ones is refused (:class:`SourceMismatch`) before anything is
    cut from it. Without it (a challenge of an older ledger) the copy is ``staged/<name>/`` as before.

    Idempotent: an existing staged copy is returned as is when the source is unchanged;
    SourceError when the source changed (or vanished) since staging, or cannot be read.
    """
    existing = load_staged(challenge, source_sha256)
    if existing is not None:
        existing.check_unchanged(challenge.source)
        return existing
    if source_sha256 is None:
        return _stage_now(challenge)
    return _stage_keyed(challenge, source_sha256)


def stage_first(challenge: Challenge) -> StagedSource:
    """Stage a challenge being created, afresh, into the folder keyed by the digest this staging
    computes (``source_sha256`` of the result: what the ledger records)."""
    return _stage_keyed(challenge, None)


def check_source_unchanged(challenge: Challenge, source_sha256: str | None = None) -> None:
    """None if the source still matches the staged fingerprint; SourceError if it changed,
    disappeared, or was never staged."""
    existing = load_staged(challenge, source_sha256)
    if existing is None:
        raise SourceError(sources.display_url(challenge.source), "has not been staged yet")
    existing.check_unchanged(challenge.source)


def load_staged(challenge: Challenge, source_sha256: str | None = None) -> StagedSource | None:
    """The finished staged copy recorded in ``staged.json`` for this very challenge, or None if
    there is none: with ``source_sha256``, the one staged from those bytes; without, the one
    staged for it whatever its digest, else the older layout's ``staged/<name>/``."""
    if source_sha256:
        return _load(settings.staging_dir(challenge.name, source_sha256), str(challenge.id))
    root = settings.staging_dir(challenge.name)
    for folder in sorted(root.glob("[!.]*/")):
        if (found := _load(folder, str(challenge.id))) is not None:
            return found
    return _load(root, None)


def _load(folder: Path, challenge_id: str | None) -> StagedSource | None:
    meta = folder / META
    if not meta.is_file():
        return None
    record = json.loads(meta.read_text())
    if challenge_id is not None and record.get("challenge_id") != challenge_id:
        return None  # a deleted challenge's copy (same name, same bytes): staged again for this one
    return KINDS[record.get("kind", "parquet")].load(folder, record)


def byte_range_eligible(challenge: Challenge) -> bool:
    """True when releases can be byte ranges of the source: CSV or TSV to CSV (row_id appended
    to each line if asked), NDJSON to NDJSON without row_id and declared types; never shuffled,
    with a scenario, or with prediction requests (their batches leave the label column out)."""
    source, output = challenge.source, challenge.output
    if output.shuffle or scenario_cut.applies(challenge) or _has_prediction(challenge):
        return False
    if source.format in sources.TEXT_FORMATS:
        return output.format == "csv"
    return source.format == "ndjson" and output.format == "ndjson" and not source.column_types and not output.row_id


def _has_prediction(challenge: Challenge) -> bool:
    requests = getattr(challenge, "requests", None)
    return getattr(requests, "prediction", None) is not None


# --- staging -------------------------------------------------------------------------------------


def _stage_now(challenge: Challenge) -> StagedSource:
    folder = settings.staging_dir(challenge.name)
    made_folder = not folder.exists()
    settings.private_dir(folder)
    try:
        staged = _stage_into(challenge, folder)
        settings.make_private(folder)  # polars and pyarrow write with the process umask
        return staged
    except BaseException:
        if made_folder:  # a refused source leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _stage_keyed(challenge: Challenge, expected: str | None) -> StagedSource:
    """Stage into a private folder of its own, then move it to ``staged/<name>/<digest>/`` once
    the digest (computed by the staging pass itself) is known and, when ``expected``, matches."""
    root = settings.staging_dir(challenge.name)
    tmp = root / f".staging-{uuid.uuid4().hex}"
    settings.private_dir(tmp)
    try:
        staged = _stage_into(challenge, tmp)
        settings.make_private(tmp)
        digest = staged.source_sha256
        if not digest:  # never: both kinds hash the source in their one pass
            raise SourceError(sources.display_url(challenge.source), "cannot stage: its sha256 was not computed")
        if expected is not None and digest != expected:
            raise SourceMismatch(challenge.name, sources.display_url(challenge.source), digest, expected)
        return _keep(challenge, tmp, digest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):  # a refused source leaves nothing behind (unless others are there)
            root.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _keep(challenge: Challenge, tmp: Path, digest: str) -> StagedSource:
    """Move the finished staging ``tmp`` into its digest's folder (a concurrent run's finished copy
    for this challenge stays instead) and drop what a deleted challenge of the same name left."""
    folder = settings.staging_dir(challenge.name, digest)
    challenge_id = str(challenge.id)
    for _ in range(3):
        if _load(folder, challenge_id) is not None:
            break  # a concurrent run of this challenge moved its copy in first: ours is dropped
        try:
            tmp.rename(folder)  # atomic; refused while a folder is there
            break
        except OSError:  # a deleted challenge's copy of the same bytes: set aside, then dropped
            _set_aside(folder)
    durable.fsync_dir(folder.parent)
    _drop_others(folder)
    staged = _load(folder, challenge_id)
    if staged is None:
        raise SourceError(sources.display_url(challenge.source), f"staged copy in {folder} vanished; try again")
    return staged


def _set_aside(folder: Path) -> None:
    try:
        folder.rename(folder.with_name(f".stale-{uuid.uuid4().hex}"))
    except FileNotFoundError:
        pass  # another run set it aside first


def _drop_others(folder: Path) -> None:
    """Everything beside ``folder`` but stagings under way: copies of other bytes, the older
    layout's files, copies set aside."""
    for other in folder.parent.iterdir():
        if other == folder or other.name.startswith(".staging-"):
            continue
        if other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
        else:
            other.unlink(missing_ok=True)


def _stage_into(challenge: Challenge, folder: Path) -> StagedSource:
    source = challenge.source
    before = sources.fingerprint(source)
    local, sha = sources.fetch(source)
    lf = sources.scan_local(source, local)
    check_columns(challenge, lf)
    uncopied = byte_range_eligible(challenge) or parquet_in_place.eligible(challenge)
    if uncopied:
        stage_uncopied = _stage_offsets if source.format != "parquet" else parquet_in_place.stage
        staged = stage_uncopied(challenge, folder, local, sha, before, lf)
        if staged is not None:
            sources.discard_fetched(source)
            return staged
    # a CSV's fields were checked by the byte pass just made, if any; else by the side pass
    check_fields = source.format == "csv" and not uncopied
    name = DATA if challenge.scenario is not None or challenge.files is not None else DATA_IPC
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    with ThreadPoolExecutor(1) as pool:
        side = pool.submit(_side_pass, source, local, check_fields, sha is None)
        try:
            try:
                rows, plan = _write_staged(challenge, lf, tmp, os.path.getsize(local))
            except Exception:
                side.result()  # the byte pass's error, when it has one, names the ragged row
                raise
            sha = side.result() or sha
            if sources.fingerprint(source) != before:
                raise SourceError(sources.display_url(source), "changed while it was being staged; try again")
            durable.fsync_file(tmp)
            tmp.replace(folder / name)
            staged = StagedParquet(
                path=folder / name, rows=rows, fingerprint=before, columns=plan.columns, types_origin=plan.origin,
                source_sha256=sha, shuffled=challenge.output.shuffle, challenge_id=str(challenge.id),
            )
            durable.write_json(folder / META, staged.record())
        finally:
            side.cancel()
            tmp.unlink(missing_ok=True)
    sources.discard_fetched(source)
    return staged


def _write_staged(challenge: Challenge, lf: pl.LazyFrame, tmp: Path, source_bytes: int) -> tuple[int, TypePlan]:
    """Write the Parquet staged copy to ``tmp`` in one read of the source (``source_bytes``
    long): rows converted to their delivered types and (``output.shuffle``) placed in the
    seeded order, while the same read checks the planned types. Returns (rows, the plan that holds)."""
    source = challenge.source
    with sources.source_errors(source, "cannot stage"):
        plan = plan_types(challenge, lf)
        n_rows = int(lf.select(pl.len()).collect().item()) if challenge.output.shuffle else None
        if n_rows == 0:
            raise SourceError(sources.display_url(source), "has no data rows")
        in_memory = n_rows is not None and fits_in_memory(n_rows, list(plan.columns.values()), source_bytes)
        counts = _sink_typed(challenge, lf, plan, tmp, n_rows, in_memory)
        declared, inferred = plan.failures(counts)
        if declared:
            raise declared_misfit_error(source, declared)
        if inferred:  # the sample misled: infer over every row, then write again
            plan = full_plan(challenge, lf)
            _sink_typed(challenge, lf, plan, tmp, n_rows, in_memory)
    rows = int(scan_copy(tmp).select(pl.len()).collect().item())
    if rows == 0:
        raise SourceError(sources.display_url(source), "has no data rows")
    return rows, plan


def _sink_typed(challenge: Challenge, lf: pl.LazyFrame, plan: TypePlan, tmp: Path, n_rows: int | None,
                in_memory: bool = False) -> dict:
    """One read of the source: the typed (and shuffled, in memory if asked) rows to ``tmp``;
    returns the plan's check counts."""
    typed, check = plan.apply(lf)
    checks = [check] if check is not None else []
    if n_rows is not None:
        results = sink_shuffled(typed, tmp, challenge.output.seed or 0, n_rows, ROW_GROUP, checks, sink_copy, in_memory)
    else:
        results = pl.collect_all([sink_copy(typed, tmp, lazy=True), *checks], engine="streaming")[1:]
    return results[0].row(0, named=True) if results else {}


# --- the "offsets" kind: a byte-offset index of the source's text -----------------------------



def _stage_offsets(
    challenge: Challenge, folder: Path, local: Path, sha: str | None, before: dict, lf: pl.LazyFrame
) -> StagedSource | None:
    """Stage ``local`` (the source's bytes) as a byte-offset index; None when its text is not
    one ppipe cuts by bytes (then the caller stages Parquet). SourceError as the Parquet path."""
    source = challenge.source
    url = sources.display_url(source)
    token = uuid.uuid4().hex
    tmp_index, tmp_blocks = folder / f".{INDEX}.{token}.tmp", folder / f".{BLOCKS}.{token}.tmp"
    try:
        # polars (its own threads) counts the rows (CSV) or parses every record (NDJSON) while
        # the byte pass indexes, hashes and (CSV) validates the text.
        with ThreadPoolExecutor(1) as pool:
            parsed = pool.submit(_polars_rows, source, lf)
            try:
                with sources.source_errors(source, "cannot stage"):
                    try:
                        scanned = index_text(local, tmp_index, tmp_blocks, source.format, hash_it=sha is None,
                                             strict=challenge.output.row_id)
                    except BadText as exc:
                        raise SourceError(url, f"cannot stage: {exc}") from None
            except Exception:
                parsed.result()  # polars' error, when there is one, says more
                raise
            schema, polars_rows = parsed.result()
        if scanned is None:  # the Parquet path decides (and says what is wrong, if anything)
            return None
        if polars_rows == 0:
            raise SourceError(url, "has no data rows")
        rows, digest = scanned
        if rows != polars_rows:  # never cut by an index that disagrees with polars
            raise SourceError(url, f"cannot be indexed safely: {rows} rows by line breaks, {polars_rows} counted by polars")
        if sources.fingerprint(source) != before:
            raise SourceError(url, "changed while it was being staged; try again")
        if sources.needs_fetch(source):  # the fetched (decompressed) copy becomes the staged text
            text = folder / f"source.{source.format}"
            durable.fsync_file(local)
            os.replace(local, text)
        else:  # local and uncompressed: cut from the source itself, every block CRC-checked
            text = Path(local).resolve()
        for tmp, final in ((tmp_blocks, BLOCKS), (tmp_index, INDEX)):
            durable.fsync_file(tmp)
            tmp.replace(folder / final)
        names = list(schema.names())
        if source.format in sources.TEXT_FORMATS:
            columns = {n: "string" for n in names}
        else:
            columns = {n: type_name(schema[n]) for n in names}
        staged = StagedText(
            path=folder / INDEX, rows=rows, fingerprint=before, columns=columns,
            types_origin={n: "source" for n in names}, source_sha256=sha or digest, shuffled=False, text=text,
            challenge_id=str(challenge.id),
        )
        durable.write_json(folder / META, staged.record())
    finally:
        tmp_index.unlink(missing_ok=True)
        tmp_blocks.unlink(missing_ok=True)
    return staged


def _polars_rows(source: Source, lf: pl.LazyFrame) -> tuple[pl.Schema, int]:
    """(schema, rows) as polars reads the source. CSV: ``len()`` only, which counts records
    (quote-aware) without splitting fields: cheap; the fields are checked by :func:`index_text`.
    NDJSON: one full parse that writes nothing (null_count needs every column built), so a
    malformed record fails as it does when staging Parquet."""
    with sources.source_errors(source, "cannot stage"):
        schema = lf.collect_schema()
        if source.format in sources.TEXT_FORMATS:
            return schema, int(lf.select(pl.len()).collect().item())
        counts = lf.select(pl.len().alias("\x00ppipe_rows"), pl.all().null_count()).collect(engine="streaming")
    return schema, int(counts.item(0, 0))


def _side_pass(source: Source, local: Path, check_fields: bool, hash_it: bool) -> str | None:
    """What runs beside the polars pass that stages the copy (hashlib, zlib and numpy release the
    GIL): ``check_fields``, the byte pass the fast path makes, without its index and CRCs, so a ragged
    CSV is refused whatever the output (polars would null-fill a short row); ``hash_it``, the
    sha256 of the local source (returned; else None)."""
    digest = None
    if check_fields:  # checked and hashed only: no index, no CRCs
        with sources.source_errors(source, "cannot stage"):
            try:
                scanned = index_text(local, None, None, "csv", hash_it=hash_it)
            except BadText as exc:
                raise SourceError(sources.display_url(source), f"cannot stage: {exc}") from None
        digest = scanned[1] if scanned is not None else None
    if hash_it and digest is None:  # not hashed by a byte pass (none, or one that stopped early)
        digest = durable.file_sha256(local)[1]
    return digest


NESTED = (pl.Struct, pl.List, pl.Array, pl.Object)


def check_columns(challenge: Challenge, lf: pl.LazyFrame) -> None:
    """Refuse what no output could hold faithfully: a repeated header name, a nested column as CSV,
    a row_id column the source already has, declared types of columns it does not have."""
    with sources.source_errors(challenge.source):
        schema = lf.collect_schema()
    names = schema.names()
    url = sources.display_url(challenge.source)
    check_names(challenge, names)
    if challenge.output.format == "csv":
        nested = next((n for n in names if isinstance(schema[n], NESTED)), None)
        if nested:
            raise SourceError(url, f"column {nested!r} is nested ({schema[nested]}): output.format csv cannot "
                                   "hold it; use parquet, json or ndjson")


