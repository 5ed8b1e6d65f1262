"""ppipe: turn one dataset into an MLOps challenge whose releases arrive on a schedule."""

from ppipe.errors import PpipeError, SpecError, SourceError, DestinationError
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
from ppipe.challenge.planning import PlannedRelease

__all__ = [
    "Challenge", "Delivery", "DriveDestination", "GcsDestination", "Grant", "LocalDestination",
    "Output", "PlannedRelease", "S3Destination", "Schedule", "Source",
    "PpipeError", "SpecError", "SourceError", "DestinationError",
]
__version__ = "0.1.0"
