"""Challenges in the ledger: register one (validate, stage its source once), find one, forget one.

Below the Python API and the Prefect layer, both of which register challenges (``ppipe
create``, ``ppipe deploy NAME`` with only ``deployments/NAME.yaml``, a flow run of a
challenge not yet in the ledger).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ppipe import settings
from ppipe.challenge.spec import Challenge
from ppipe.challenge.specfile import load_challenge
from ppipe.errors import ConflictError
from ppipe.ledger import ChallengeRecord, Ledger


def open_ledger(ledger: Ledger | None = None) -> Ledger:
    return ledger or Ledger()


def load(path_or_challenge: str | Path | Challenge) -> Challenge:
    """A Challenge from a YAML file (or the Challenge itself)."""
    if isinstance(path_or_challenge, Challenge):
        return path_or_challenge
    return load_challenge(path_or_challenge)


def create(challenge: Challenge, *, ledger: Ledger | None = None) -> ChallengeRecord:
    """Validate, stage the source once (counting its rows) and register the challenge.

    Nothing is left behind when it fails: a taken name is refused before any work, and the
    staged copy is removed when planning refuses the row count.
    """
    from ppipe.data.staging import stage  # polars: only when a challenge is really created

    ledger = open_ledger(ledger)
    if ledger.exists(challenge.name):
        raise ConflictError(f"challenge {challenge.name!r} already exists: delete it first or pick another name")
    staged = stage(challenge)
    try:
        return ledger.add_challenge(challenge, staged.rows)
    except ConflictError:
        raise  # a concurrent create won the name: the staged copy is theirs now
    except BaseException:
        shutil.rmtree(settings.staging_dir(challenge.name), ignore_errors=True)
        raise


def ensure_registered(name: str, *, ledger: Ledger | None = None, deployments: Path | None = None) -> Challenge:
    """The challenge from the ledger, registering ``deployments/<name>.yaml`` first if needed."""
    ledger = open_ledger(ledger)
    if not ledger.exists(name):
        path = (deployments or settings.deployments_dir()) / f"{name}.yaml"
        try:
            create(load_challenge(path), ledger=ledger)
        except ConflictError:
            pass  # a concurrent run registered it first: use theirs
    return ledger.challenge(name)


def delete(name: str, *, ledger: Ledger | None = None) -> None:
    """Forget a challenge: ledger rows, staged copy and local audit copies.

    Files already delivered to destinations are left where they are: participants keep them.
    """
    ledger = open_ledger(ledger)
    ledger.delete_challenge(name)
    for folder in (settings.staging_dir(name), settings.releases_dir(name)):
        shutil.rmtree(folder, ignore_errors=True)
