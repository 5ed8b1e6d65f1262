"""Destination kinds: one folder per kind (``<kind>/spec.py``, ``client.py``, ``errors.py``),
listed once in :mod:`ppipe.destinations.registry`; ``open_destination(spec, challenge)`` builds one.

The names below are imported on first use (PEP 562), so that importing a submodule such as
:mod:`ppipe.destinations.credentials` (as ``import ppipe`` does) loads no spec and no pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ppipe.destinations.base import Destination, GrantResult, ObjectInfo
    from ppipe.destinations.registry import client_class, open_destination, register, unregister

__all__ = ["Destination", "GrantResult", "ObjectInfo", "client_class", "open_destination", "register", "unregister"]
_HOME = {"Destination": "base", "GrantResult": "base", "ObjectInfo": "base",
         "client_class": "registry", "open_destination": "registry", "register": "registry",
         "unregister": "registry"}


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"ppipe.destinations.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ppipe.destinations' has no attribute {name!r}")
