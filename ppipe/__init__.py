"""ppipe: turn one dataset into an MLOps challenge whose releases arrive on a schedule.

The public model is re-exported here (``from ppipe import Challenge, LocalDestination, ...``);
the Python API is :mod:`ppipe.api`. Kept light: no Prefect, polars or pydantic import happens here.
"""

from ppipe.errors import DestinationError, PpipeError, SourceError, SpecError
from ppipe.orchestration import blocks as _blocks

# Composition root: destinations load named credentials blocks through the Prefect layer
# (the dependency points from orchestration to destinations, never back).
_blocks.install()

__all__ = [
    "Challenge", "Delivery", "DriveDestination", "GcsDestination", "Grant", "LocalDestination",
    "Output", "PlannedRelease", "S3Destination", "Schedule", "Source",
    "PpipeError", "SpecError", "SourceError", "DestinationError",
]
__version__ = "0.1.0"

#: where each re-exported name lives; imported on first use (PEP 562), so that commands which
#: need no model (``ppipe --help``) do not pay for pydantic
_LAZY = {"PlannedRelease": "ppipe.challenge.planning", **{
    name: "ppipe.challenge.spec" for name in (
        "Challenge", "Delivery", "DriveDestination", "GcsDestination", "Grant", "LocalDestination",
        "Output", "S3Destination", "Schedule", "Source",
    )
}}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ppipe' has no attribute {name!r}")
