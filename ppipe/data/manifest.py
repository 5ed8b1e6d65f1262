"""The manifest: ``manifest.json``, next to the release files and at every destination.

It lists the delivered releases (by index) and the delivered columns with their type and
whether that type was kept as in the source, inferred, or declared. :data:`MANIFEST` is the
one place its file name is written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ppipe import durable, settings
from ppipe.challenge.spec import Challenge
from ppipe.data.staged import ROW_ID, StagedSource
from ppipe.scenario import record as scenario_record

MANIFEST = "manifest.json"


def write_manifest(challenge: Challenge, staged: StagedSource, delivered: list[dict]) -> Path:
    """Write ``manifest.json`` next to the release files (atomically) and return its path.

    It lists the delivered releases (by index) and the delivered columns with their type and
    whether that type was kept as in the source, inferred, or declared.
    """
    columns = [
        {"name": n, "type": t, "origin": staged.types_origin[n]} for n, t in staged.columns.items()
    ]
    if challenge.output.row_id:
        columns.append({"name": ROW_ID, "type": "int", "origin": "ppipe: 0-based row number in the source"})
    releases = [_release_entry(challenge, d) for d in sorted(delivered, key=lambda d: d["index"])]
    manifest = {
        "challenge": challenge.name,
        "format": challenge.output.format,
        "shuffled": challenge.output.shuffle,
        "source": {
            "format": challenge.source.format,
            "compression": challenge.source.compression,
            "rows": staged.rows,
            "sha256": staged.source_sha256,
        },
        "columns": columns,
        "releases": releases,
        "total_rows_delivered": sum(r["rows"] for r in releases),
        "updated_at": datetime.now(timezone.utc).isoformat(),
    }
    folder = settings.private_dir(settings.releases_dir(challenge.name))
    path = folder / MANIFEST
    durable.write_json(path, manifest)  # private, as everything under PPIPE_HOME
    return path


_RELEASE_KEYS = ("index", "name", "start", "stop", "rows", "sha256", "bytes", "scheduled_at", "delivered_at")


def _release_entry(challenge: Challenge, delivered: dict) -> dict:
    entry = {key: delivered.get(key) for key in _RELEASE_KEYS}
    entry["file"] = challenge.release_file_name(delivered["index"])
    entry.update({k: v for k, v in scenario_record.shipment(challenge.name, entry["name"]).items() if v})
    for key in ("scheduled_at", "delivered_at"):
        if isinstance(entry[key], datetime):
            entry[key] = entry[key].isoformat()
    return entry
