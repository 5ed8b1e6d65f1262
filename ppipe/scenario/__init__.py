"""Scenarios: what goes wrong in a challenge's data, release by release, and releases that carry files.

``spec`` (the ``scenario:`` and ``files:`` keys), ``check`` (validation against the
challenge and its source), ``perturb`` (the deterministic engine over polars frames),
``cut`` (a release's table and what ships beside it), ``files`` (referenced files),
``labels`` (late labels: which release brings whose labels), ``record`` (the organiser-only
record under PPIPE_HOME).
"""
