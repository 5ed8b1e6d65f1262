"""Prefect global concurrency limits per storage provider, shared by every worker and run.

``ppipe deploy`` creates them (idempotent; an existing limit keeps what an operator set):

- ``ppipe-upload-<kind>`` for s3, gcs and local: at most ``PPIPE_UPLOAD_CONCURRENCY``
  uploads to that provider at once, across all machines;
- ``ppipe-upload-drive``: a rate limit, ``PPIPE_DRIVE_UPLOADS_PER_SECOND`` uploads a second
  (slots decay at that rate), to stay inside Drive's per-user write quota.

The upload task occupies one slot of its provider's limit while it uploads. The slots are
leased through the server's lease storage (Redis when several API processes run), so a dead
machine's slots come back on their own.
"""

from __future__ import annotations

from typing import Iterable

from ppipe import settings

KINDS = ("local", "s3", "gcs", "drive")
RATE_LIMITED = {"drive"}


def limit_name(kind: str) -> str:
    return f"ppipe-upload-{kind}"


def wanted_limits(kinds: Iterable[str] = KINDS) -> dict[str, tuple[int, float]]:
    """name -> (slots, slot decay per second) of the limits of ``kinds``; a decay makes it a rate limit."""
    wanted, chosen = {}, set(kinds)
    for kind in (kind for kind in KINDS if kind in chosen):
        if kind in RATE_LIMITED:
            rate = settings.drive_uploads_per_second()
            wanted[limit_name(kind)] = (max(1, int(rate)), rate)
        else:
            wanted[limit_name(kind)] = (settings.upload_concurrency(), 0.0)
    return wanted


def ensure_limits(kinds: Iterable[str] = KINDS) -> list[str]:
    """Create the limits of ``kinds`` (default: every provider's) that do not exist yet; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    wanted = wanted_limits(kinds)
    with get_client(sync_client=True) as client:
        for name, (slots, decay) in wanted.items():
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                        name=name, limit=slots, slot_decay_per_second=decay))
                except ObjectAlreadyExists:  # another deploy created it meanwhile
                    pass
    return list(wanted)


def upload_slot(kind: str):
    """Context manager holding one slot of ``kind``'s limit (taking one token for a rate limit)."""
    from contextlib import nullcontext

    from prefect.concurrency.sync import concurrency, rate_limit

    name = limit_name(kind)
    if kind in RATE_LIMITED:
        rate_limit(name, occupy=1)
        return nullcontext()
    if kind in KINDS:
        return concurrency(name, occupy=1)
    return nullcontext()
