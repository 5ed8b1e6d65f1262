"""The run without Prefect: the dispatch sequence, grants applied to destinations, reports, verification.

``run`` holds the sequence of one dispatch run, written once (plain :func:`dispatch` and the
Prefect flow both drive :class:`Dispatch`; the flow passes task-wrapped :class:`Steps`);
``report`` tells what a run did; ``access`` applies grants; ``verify`` checks what was
delivered; ``challenges`` registers challenges in the ledger.
"""

from ppipe.delivery.report import (
    Outcome, Report, error_text, failure_line, release_table, summary, summary_markdown,
)
from ppipe.delivery.run import (
    MANIFEST, Dispatch, Due, Steps, Uploaded, apply_grants, delivered_releases, dispatch, prepare,
    Stopped, publish_manifest, save_release, skip_reason, stage_source, stop_on_sigterm, upload, watch,
)

__all__ = [
    "MANIFEST", "Dispatch", "Due", "Outcome", "Report", "Steps", "Uploaded", "apply_grants", "delivered_releases",
    "dispatch", "error_text", "failure_line", "prepare", "publish_manifest", "release_table", "save_release",
    "skip_reason", "stage_source", "Stopped", "stop_on_sigterm", "summary", "summary_markdown", "upload", "watch",
]
