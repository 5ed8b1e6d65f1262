"""Destination kinds: one folder per kind (``<kind>/spec.py``, ``client.py``, ``errors.py``),
listed once in :mod:`ppipe.destinations.registry`; ``open_destination(spec, challenge)`` builds one.
"""

from __future__ import annotations

from ppipe.destinations.base import Destination, GrantResult, ObjectInfo
from ppipe.destinations.registry import client_class, open_destination, register

__all__ = ["Destination", "GrantResult", "ObjectInfo", "client_class", "open_destination", "register"]
