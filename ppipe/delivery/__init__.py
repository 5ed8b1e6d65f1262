"""The run without Prefect: the dispatch sequence, grants applied to destinations, verification.

``ppipe.delivery.run`` holds the sequence of one dispatch run (written once: plain
:func:`dispatch` and the Prefect flow both drive :class:`Dispatch`); ``access`` applies grants;
``verify`` checks what was delivered.
"""

from ppipe.delivery.run import (
    MANIFEST, Dispatch, Due, Outcome, Report, Steps, Uploaded, apply_grants, delivered_releases, dispatch,
    error_text, failure_line, prepare, publish_manifest, release_table, save_release, skip_reason,
    stage_source, summary, summary_markdown, upload, watch,
)

__all__ = [
    "MANIFEST", "Dispatch", "Due", "Outcome", "Report", "Steps", "Uploaded", "apply_grants", "delivered_releases",
    "dispatch", "error_text", "failure_line", "prepare", "publish_manifest", "release_table", "save_release",
    "skip_reason", "stage_source", "summary", "summary_markdown", "upload", "watch",
]
