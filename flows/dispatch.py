"""Entrypoint of the dispatch flow, as ``prefect.yaml`` and ``prefect deploy`` name it.

The flow itself lives in :mod:`ppipe.orchestration.flow`; this file only makes it reachable
at ``flows/dispatch.py:dispatch_challenge``.
"""

from ppipe.orchestration.flow import FLOW_NAME, dispatch_challenge

__all__ = ["FLOW_NAME", "dispatch_challenge"]
