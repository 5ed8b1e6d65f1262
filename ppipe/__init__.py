"""ppipe: turn one dataset into an MLOps challenge whose releases arrive on a schedule.

The public model is re-exported here (``from ppipe import Challenge, LocalDestination, ...``);
the Python API is :mod:`ppipe.api`. Kept light: no Prefect or polars import happens here.
"""

from ppipe.challenge.planning import PlannedRelease
from ppipe.challenge.spec import (
    Challenge,
    Delivery,
    DriveDestination,
    GcsDestination,
    Grant,
    LocalDestination,
    Output,
    S3Destination,
    Schedule,
    Source,
)
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
