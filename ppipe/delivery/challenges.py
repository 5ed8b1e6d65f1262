"""Challenges in the ledger: register one (validate, stage its source once), find one, forget one.

Below the Python API and the Prefect layer, both of which register challenges (``ppipe
create``, ``ppipe deploy NAME`` with only ``deployments/NAME.yaml``, a flow run of a
challenge not yet in the ledger).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ppipe import settings
from ppipe.challenge.spec import Challenge
from ppipe.challenge.specfile import load_challenge
from ppipe.destinations.bucket import BucketDestination
from ppipe.errors import ConflictError, NotFoundError, SpecError
from ppipe.ledger import ChallengeRecord, Ledger
from ppipe.naming import prefixes_overlap
from ppipe.scenario import record as scenario_record


SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")


def open_ledger(ledger: Ledger | None = None, *, create: bool = True) -> Ledger:
    """``ledger``, or the configured one; ``create=False`` (commands that only read) never makes
    a ledger that is not there: NotFoundError instead."""
    return ledger or Ledger(create=create)


def existing_ledger(name: str | None = None) -> Ledger:
    """The ledger for a command that only reads: never made by looking. Without one, NotFoundError
    saying so (and naming the challenge that was asked for)."""
    try:
        return Ledger(create=False)
    except NotFoundError as exc:
        if name is None:
            raise
        raise NotFoundError(f"no challenge named {name!r}: {exc}") from None


def create(challenge: Challenge, *, ledger: Ledger | None = None) -> ChallengeRecord:
    """Validate, stage the source once (counting its rows and hashing its bytes) and register the
    challenge with the source's sha256, which every machine's staging then checks against.

    Nothing is left behind when it fails: a taken name is refused before any work, and the
    staged copy is removed when planning refuses the row count.
    """
    from ppipe.data.shuffle import STAGED_ROW_ID
    from ppipe.data.staging import stage_first  # polars: only when a challenge is really created
    from ppipe.scenario.check import check_source

    ledger = open_ledger(ledger)
    if ledger.exists(challenge.name):
        raise ConflictError(f"challenge {challenge.name!r} already exists: delete it first or pick another name")
    check_prefixes_free(challenge, ledger)
    ledger.check_locations_free(challenge)
    check_destinations(challenge)
    staged = stage_first(challenge)
    try:
        check_source(challenge, staged, STAGED_ROW_ID if staged.shuffled else None)
        check_label(challenge, staged.columns)
        return ledger.add_challenge(challenge, staged.rows, staged.source_sha256)
    except ConflictError:
        raise  # a concurrent create won the name: the staged copy is theirs now
    except BaseException:
        shutil.rmtree(settings.staging_dir(challenge.name), ignore_errors=True)
        raise


def check_label(challenge: Challenge, columns: dict) -> None:
    """Prediction requests need their label column in the source (checked at create, not at the first delivery)."""
    prediction = challenge.requests.prediction if challenge.requests else None
    if prediction is not None and prediction.label not in columns:
        raise SpecError("requests.prediction.label",
                        f"the source has no column {prediction.label!r} (it has {', '.join(columns)})")


def _bucket_prefixes(challenge: Challenge) -> list[tuple[int, tuple, str, str]]:
    """(index, bucket key, prefix, location) of the challenge's bucket destinations (S3, GCS)."""
    return [
        (i, (spec.kind, spec.endpoint_url or "", spec.bucket_for(challenge.name)), spec.prefix_for(challenge.name),
         spec.location(challenge.name))
        for i, spec in enumerate(challenge.destinations) if isinstance(spec, BucketDestination)
    ]


def check_prefixes_free(challenge: Challenge, ledger: Ledger) -> None:
    """Refuse a prefix that is, contains or lies in another challenge's prefix in the same bucket
    (an empty prefix is the whole bucket): a grant on one would read the other's files."""
    ours = _bucket_prefixes(challenge)
    if not ours:
        return
    for record in ledger.list_challenges():
        for _, bucket, prefix, location in _bucket_prefixes(record.challenge()):
            for i, our_bucket, our_prefix, our_location in ours:
                if bucket == our_bucket and prefixes_overlap(prefix, our_prefix):
                    raise SpecError(f"destinations.{i}.prefix", (
                        f"{our_location} overlaps challenge {record.name}'s {location}: challenges sharing a bucket "
                        "need prefixes that neither nest nor are empty"))
def check_destinations(challenge: Challenge) -> None:
    """What can be known about the destinations without writing to them: a local folder that
    cannot be made or written is refused at create, not days later at the first delivery."""
    from ppipe.destinations import open_destination

    for spec in challenge.destinations:
        check = getattr(open_destination(spec, challenge.name), "check", None)
        if check is not None:
            check()


def checked_name(name: object, field: str = "challenge") -> str:
    """``name`` when it is a challenge slug; SpecError otherwise (it becomes a file name and a path)."""
    if not isinstance(name, str) or not SLUG.fullmatch(name):
        raise SpecError(field, f"{str(name)[:80]!r} is not a challenge name: use 1-50 lowercase letters, digits "
                               "and hyphens (a slug), no '/', '..' or spaces")
    return name


def check_release_index(name: str, release: int | None, *, ledger: Ledger | None = None) -> None:
    """SpecError naming the range when ``release`` is not one of the challenge's releases."""
    if release is None:
        return
    count = open_ledger(ledger).challenge(name).release_count
    if not 0 <= release < count:
        raise SpecError("--release", f"{name} has releases 0 to {count - 1}: there is no release {release}")


def ensure_registered(name: str, *, ledger: Ledger | None = None, deployments: Path | None = None) -> Challenge:
    """The challenge from the ledger, registering ``deployments/<name>.yaml`` first if needed."""
    name = checked_name(name)
    ledger = open_ledger(ledger)
    if not ledger.exists(name):
        path = (deployments or settings.deployments_dir()) / f"{name}.yaml"
        try:
            create(load_challenge(path), ledger=ledger)
        except ConflictError:
            pass  # a concurrent run registered it first: use theirs
    return ledger.challenge(name)


def delete(name: str, *, ledger: Ledger | None = None, keep_access: bool = False) -> list[str]:
    """Revoke every grant of a challenge, then forget it: ledger rows, staged copy, local audit copies.

    Files already delivered to destinations are left where they are: participants keep them.
    When a revoke fails nothing is deleted (the grants stay recorded as revoked, so a later
    ``delete`` or run retries them): ConflictError saying which and why. With ``keep_access``
    the challenge is deleted anyway; returns the access left in place, one line each.
    """
    from ppipe.delivery.access import revoke_everywhere

    ledger = open_ledger(ledger)
    failed = [item.line() for item in revoke_everywhere(ledger, name)]
    if failed and not keep_access:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ConflictError(f"cannot delete {name}: access could not be revoked, so it stays: "
                            f"{failed[0]}{more}; fix that and delete again, or delete --keep-access")
    ledger.delete_challenge(name)
    for folder in (settings.staging_dir(name), settings.releases_dir(name), scenario_record.folder(name)):
        shutil.rmtree(folder, ignore_errors=True)
    return failed
