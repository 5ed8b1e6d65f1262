"""What each destination kind's test fixture hands the shared contract test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ppipe.destinations import Destination


@dataclass
class DestinationCase:
    """``make(challenge_name)`` builds a destination at a fresh location on a real (local) server;
    ``identity`` is a well-formed participant identity for that kind's grants ('' for local)."""

    kind: str
    make: Callable[[str], Destination]
    identity: str
