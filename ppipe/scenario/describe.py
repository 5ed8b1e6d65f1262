"""Scenario events in words, per release: for ``ppipe plan`` and ``ppipe scenario``."""

from __future__ import annotations

from typing import Any

from ppipe.scenario import labels as labels_
from ppipe.scenario import record
from ppipe.challenge.scenario import Event, events_for


def summary(event: Event) -> str:
    """One short phrase: ``drift temperature +2.5 x1.1``, ``missing humidity, pressure 5%``."""
    spec = event.perturbation
    kind = event.kind
    if kind == "drift":
        return f"drift {', '.join(spec.columns)} {spec.shift:+g} x{spec.scale:g}"
    if kind == "missing":
        return f"missing {', '.join(spec.columns)} {spec.rate:.4g}"
    if kind == "duplicates":
        return f"duplicates {spec.rate:.4g}"
    if kind == "out_of_order":
        return f"out_of_order {spec.column} {spec.rate:.4g}"
    if kind == "late_labels":
        return f"late_labels {spec.label} +{spec.lag}"
    if kind == "types":
        return "types " + ", ".join(f"{c}->{t}" for c, t in spec.columns.items())
    parts = [f"{a}->{b}" for a, b in spec.rename.items()] + [f"-{c}" for c in spec.drop] + [f"+{c}" for c in spec.add]
    return "schema " + ", ".join(parts)


def planned(challenge: Any, release: int) -> list[str]:
    """The events of release ``release`` in words, in the order they apply (``#3 drift ...``)."""
    names = labels_.release_names(challenge)
    phrases = [f"#{i} {summary(e)}" for i, e in events_for(challenge.scenario, release, names)]
    phrases += [f"labels of {names[j]}" for j in labels_.labels_shipped_with(challenge, release)]
    return phrases


def report(challenge: Any) -> dict:
    """Every release: its planned events and, once it is cut, the record of what was done."""
    names = labels_.release_names(challenge)
    cut = {r["release"]: r for r in record.read_all(challenge.name)}
    return {
        "challenge": challenge.name,
        "seed": challenge.scenario.seed if challenge.scenario else None,
        "files": challenge.files.model_dump() if challenge.files else None,
        "releases": [
            {"release": name, "index": k, "planned": planned(challenge, k), "cut": name in cut,
             "record": cut.get(name)}
            for k, name in enumerate(names)
        ],
    }


def done_rows(entry: dict) -> list[tuple[str, str, str]]:
    """(event, columns, what was done) per applied event of one release's record."""
    rows = []
    for applied in entry.get("events", []):
        count = applied["count"]
        touched = "every row" if applied["rows"] == "all" else f"{count} row{'' if count == 1 else 's'}"
        detail = _detail(applied, entry)
        rows.append((f"#{applied['event']} {applied['kind']}", ", ".join(applied["columns"]),
                     touched + (f": {detail}" if detail else "")))
    shipment = entry.get("shipment") or {}
    if shipment.get("files"):
        rows.append(("files", "", f"{len(shipment['files'])} files shipped"))
    for labels in shipment.get("labels", []):
        rows.append(("labels", "", f"{labels['file']}: {labels['rows']} labels of {labels['release']}"))
    return rows


def _detail(applied: dict, entry: dict) -> str:
    kind = applied["kind"]
    if kind == "drift":
        return f"shift {applied['shift']:+g}, scale {applied['scale']:g}"
    if kind == "late_labels":
        later = (entry.get("labels") or {}).get("ship_with")
        return f"labels ship with {later}" if later else "labels never ship (no later release)"
    if kind == "schema":
        return ", ".join([f"{a}->{b}" for a, b in applied["rename"].items()] + [f"-{c}" for c in applied["drop"]]
                         + [f"+{c}" for c in applied["add"]])
    if kind == "types":
        return ", ".join(f"{c}->{t}" for c, t in applied["to"].items())
    return f"rate {applied['rate']:g}" if "rate" in applied else ""
