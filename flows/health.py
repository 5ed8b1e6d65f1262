"""Entrypoint of the endpoint health-check flow, as ``prefect.yaml`` and ``prefect deploy`` name it.

The flow itself lives in :mod:`ppipe.orchestration.health`; this file only makes it reachable
at ``flows/health.py:check_endpoints`` (and ``flows.health:check_endpoints`` by module path).
"""

from ppipe.orchestration.health import HEALTH_FLOW_NAME, check_endpoints

__all__ = ["HEALTH_FLOW_NAME", "check_endpoints"]
