"""Late labels, answered from the challenge spec alone: whose labels ship with which release.

For the participant side: a prediction request about release k is scored with the labels
participants were actually given, and those arrive with :func:`labels_release` (k itself
unless late labels hold them back). A release that ships without its label column has
:func:`withheld_label`; the files ``labels_<j>`` (row_id, label) it brings are
:func:`labels_shipped_with`.
"""

from __future__ import annotations

from typing import Any

from ppipe.challenge.scenario import LateLabels, release_indexes


def release_names(challenge: Any) -> list[str]:
    return [challenge.release_name(k) for k in range(challenge.release_count)]


def _late(challenge: Any, release: int) -> LateLabels | None:
    scenario = getattr(challenge, "scenario", None)
    names = release_names(challenge)
    for event in scenario.events if scenario else []:
        if isinstance(event.perturbation, LateLabels) and release in release_indexes(event, names):
            return event.perturbation
    return None


def withheld_label(challenge: Any, release: int) -> str | None:
    """The label column release ``release`` ships without (late labels), or None."""
    late = _late(challenge, release)
    return late.label if late else None


def labels_release(challenge: Any, release: int) -> int | None:
    """Index of the release whose delivery brings release ``release``'s labels: itself when
    they are not late, ``release + lag`` when late, None when that release does not exist."""
    late = _late(challenge, release)
    if late is None:
        return release
    later = release + late.lag
    return later if later < challenge.release_count else None


def labels_shipped_with(challenge: Any, release: int) -> list[int]:
    """Indexes of the releases whose ``labels_<k>`` files ship with release ``release``."""
    return [k for k in range(release) if _late(challenge, k) and labels_release(challenge, k) == release]


def labels_file_name(challenge: Any, index: int) -> str:
    """The file release ``index``'s late labels ship as: ``labels_<index>.<format>`` (row_id, label)."""
    return f"labels_{index}.{challenge.output.format}"
