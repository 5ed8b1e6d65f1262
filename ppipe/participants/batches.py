"""Prediction batches: the features of release k+1 (label column removed), delivered beside release k.

``predict_{k+1}.<format>`` is cut from the staged source exactly like release k+1 will be,
minus the label, written to the audit folder, uploaded to every destination and listed in
the manifest under ``predictions``. The labels go out only with release k+1 itself.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ppipe import durable, settings
from ppipe.challenge.spec import Challenge
from ppipe.data.staged import Cut
from ppipe.data.staging import stage
from ppipe.delivery import error_text
from ppipe.destinations import open_destination
from ppipe.errors import SpecError
from ppipe.ledger import Ledger
from ppipe.participants.records import PredictionBatch

MANIFEST = "manifest.json"


def file_name(challenge: Challenge, index: int) -> str:
    return f"predict_{index}.{challenge.output.format}"


def existing(ledger: Ledger, challenge_id: uuid.UUID, index: int) -> PredictionBatch | None:
    with ledger.session() as session:
        return session.exec(select(PredictionBatch).where(
            PredictionBatch.challenge_id == challenge_id, PredictionBatch.index == index)).first()


def deliver(ledger: Ledger, challenge: Challenge, index: int, deadline: datetime) -> tuple[PredictionBatch, list[str]]:
    """Write and upload the features of release ``index`` once; returns the batch and what failed.

    A destination that fails is named in the returned problems; a batch that reached no
    destination has no URIs, and requests about it are void.
    """
    record = ledger.get(challenge.name)
    challenge_id = record.id
    if (batch := existing(ledger, challenge_id, index)) is not None:
        return batch, []
    path, cut = _write(challenge, index, record.source_sha256)
    size, digest, rows = cut.bytes, cut.sha256, cut.rows
    uris, problems = {}, []
    for spec in challenge.destinations:
        destination = open_destination(spec, challenge.name)
        try:
            uris[destination.uri] = (destination.uri_of(path.name) if destination.exists(path.name, digest)
                                     else destination.upload(path, path.name))
        except Exception as exc:  # noqa: BLE001 - one destination failing does not stop the others
            problems.append(f"{path.name} -> {destination.uri}: {error_text(exc)}")
    batch = PredictionBatch(challenge_id=challenge_id, index=index, file=path.name, rows=rows, sha256=digest,
                            bytes=size, uris=uris, deadline=deadline)
    with ledger.session() as session:
        session.add(batch)
        try:
            session.commit()
        except IntegrityError:  # a concurrent run recorded the same batch first: theirs stands
            session.rollback()
            return existing(ledger, challenge_id, index), problems
    return batch, problems


def _write(challenge: Challenge, index: int, source_sha256: str | None) -> tuple[Path, Cut]:
    """The features of release ``index`` as it will be delivered, minus the label, written atomically
    (from this machine's staged copy of the source bytes recorded at create)."""
    staged = stage(challenge, source_sha256)
    planned = challenge.plan(staged.rows)[index]
    label = challenge.requests.prediction.label
    if label not in staged.columns:
        raise SpecError("requests.prediction.label", f"the source has no column {label!r}")
    folder = settings.private_dir(settings.releases_dir(challenge.name))
    final = folder / file_name(challenge, index)
    return final, durable.write_private(final, lambda tmp: staged.cut_without(challenge, planned, tmp, [label]))


def batches(ledger: Ledger, name: str) -> list[PredictionBatch]:
    challenge_id = ledger.get(name).id
    with ledger.session() as session:
        return list(session.exec(select(PredictionBatch).where(PredictionBatch.challenge_id == challenge_id)
                                 .order_by(PredictionBatch.index)))


def manifest_entries(ledger: Ledger, name: str) -> list[dict]:
    """The manifest's ``predictions`` list: each batch delivered somewhere, with its deadline."""
    return [
        {"index": b.index, "file": b.file, "rows": b.rows, "sha256": b.sha256, "bytes": b.bytes,
         "deadline": b.deadline.isoformat(), "label_removed": True}
        for b in batches(ledger, name) if b.uris
    ]


def republish_manifest(ledger: Ledger, challenge: Challenge) -> list[str]:
    """Add ``predictions`` to the challenge's manifest.json and upload it again; returns what failed."""
    path = settings.releases_dir(challenge.name) / MANIFEST
    if not path.is_file():
        return []
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries = manifest_entries(ledger, challenge.name)
    if manifest.get("predictions", []) == entries:
        return []
    manifest["predictions"] = entries
    durable.write_json(path, manifest)
    problems = []
    for spec in challenge.destinations:
        destination = open_destination(spec, challenge.name)
        try:
            destination.upload(path, MANIFEST)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{MANIFEST} -> {destination.uri}: {error_text(exc)}")
    return problems
