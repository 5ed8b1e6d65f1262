"""The one list of destination kinds: everything that names kinds derives from it.

Each kind is one folder, ``ppipe/destinations/<kind>/`` (``spec.py``: what the organiser
declares; ``client.py``: the adapter; ``errors.py``: its provider-error table), and one
:func:`register` line below. The spec class is imported now (pydantic only: YAML parsing
needs it); the adapter only when a destination is opened, so a missing client package
gives an install hint instead of breaking ``import ppipe``.

From here derive: the challenge model's union of destination specs and its YAML ``kind:``
tags, the grant checks (``service``, ``via``, roles: the spec classes' capabilities) and
the install hints. A kind defined elsewhere (a plugin, a test) registers at runtime with
:func:`register`; the challenge model is rebuilt to accept it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ppipe.destinations.drive.spec import DriveDestination
from ppipe.destinations.gcs.spec import GcsDestination
from ppipe.destinations.local.spec import LocalDestination
from ppipe.destinations.s3.spec import S3Destination
from ppipe.destinations.spec import DestinationSpec
from ppipe.errors import DestinationError

if TYPE_CHECKING:
    from ppipe.destinations.base import Destination


@dataclass(frozen=True)
class Kind:
    """A destination kind: its spec class, its adapter (a class, or ``"module:Class"`` imported
    when first used) and the package that provides the adapter's client (for the install hint)."""

    spec: type[DestinationSpec]
    client: type | str
    package: str | None = None

    @property
    def name(self) -> str:
        return self.spec.tag()


_KINDS: dict[str, Kind] = {}
_listeners: list[Callable[[], None]] = []


def register(spec: type[DestinationSpec], client: type | str, package: str | None = None) -> Kind:
    """Add (or replace) a destination kind; models built from the registry are rebuilt."""
    kind = Kind(spec, client, package)
    _KINDS[kind.name] = kind
    for listener in list(_listeners):
        listener()
    return kind


def unregister(kind: str) -> None:
    """Remove a kind registered at runtime (a test's toy kind); models are rebuilt without it."""
    if _KINDS.pop(kind, None) is not None:
        for listener in list(_listeners):
            listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after each :func:`register` (the challenge model rebuilds its union)."""
    _listeners.append(listener)


def kinds() -> tuple[str, ...]:
    """Every kind's ``kind:`` tag, in registration order."""
    return tuple(_KINDS)


def spec_classes() -> tuple[type[DestinationSpec], ...]:
    return tuple(kind.spec for kind in _KINDS.values())


def spec_class(kind: str) -> type[DestinationSpec] | None:
    found = _KINDS.get(kind)
    return found.spec if found else None


def granting_kinds() -> tuple[str, ...]:
    """Kinds whose destinations can give participants access (``grants: - service: <kind>``)."""
    return tuple(name for name, kind in _KINDS.items() if kind.spec.can_grant)


def client_class(kind: str) -> type[Destination]:
    """The adapter class of ``kind``, imported now; DestinationError with an install hint if it cannot be."""
    try:
        found = _KINDS[kind]
    except KeyError:
        raise DestinationError(kind, f"unknown kind: use {', '.join(_KINDS)}") from None
    if not isinstance(found.client, str):
        return found.client
    module_name, class_name = found.client.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = found.package or module_name
        raise DestinationError(kind, f"needs {package}: pip install {package} ({exc})") from None
    return getattr(module, class_name)


def open_destination(spec: DestinationSpec, challenge: str) -> Destination:
    """The destination for ``spec`` (a LocalDestination, S3Destination, ...) and challenge name."""
    return client_class(spec.kind)(spec, challenge)


register(LocalDestination, "ppipe.destinations.local.client:LocalFolder", "fsspec")
register(S3Destination, "ppipe.destinations.s3.client:S3Bucket", "s3fs")
register(GcsDestination, "ppipe.destinations.gcs.client:GcsBucket", "gcsfs")
register(DriveDestination, "ppipe.destinations.drive.client:DriveFolder", "pydrive2")
