"""Destination kinds, registered by name; ``open_destination(spec, challenge)`` builds one.

Each kind lives in its own module, imported only when used, so a missing optional client
gives an install hint instead of breaking ``import ppipe``.
"""

from __future__ import annotations

import importlib

from ppipe.destinations.base import Destination, GrantResult, ObjectInfo
from ppipe.errors import DestinationError

#: kind -> (module, class, package that provides the client)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "local": ("ppipe.destinations.local.client", "LocalFolder", "fsspec"),
    "s3": ("ppipe.destinations.s3.client", "S3Bucket", "s3fs"),
    "gcs": ("ppipe.destinations.gcs.client", "GcsBucket", "gcsfs"),
    "drive": ("ppipe.destinations.drive.client", "DriveFolder", "pydrive2"),
}


def destination_class(kind: str) -> type[Destination]:
    try:
        module_name, class_name, package = REGISTRY[kind]
    except KeyError:
        raise DestinationError(kind, f"unknown kind: use {', '.join(REGISTRY)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DestinationError(kind, f"needs {package}: pip install {package} ({exc})") from None
    return getattr(module, class_name)


def open_destination(spec, challenge: str) -> Destination:
    """The destination for ``spec`` (a LocalDestination, S3Destination, ...) and challenge name."""
    return destination_class(spec.kind)(spec, challenge)


__all__ = ["Destination", "GrantResult", "ObjectInfo", "REGISTRY", "destination_class", "open_destination"]
