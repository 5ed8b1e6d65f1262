"""Integrity: is every delivered release really there, unchanged, and do they add up to the source?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ppipe.destinations import open_destination
from ppipe.errors import PpipeError
from ppipe.ledger import Ledger, ReleaseRecord
from ppipe.scenario import record as scenario_record


@dataclass
class Report:
    """What ``verify`` found: checked objects and one line per problem."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(name: str, ledger: Ledger | None = None) -> Report:
    """Check every delivered (release, destination) and the row accounting of the challenge.

    For each delivered row: the object exists with the recorded size and sha256 (read back).
    Across releases: each delivered release holds exactly its planned rows, the delivered
    ranges never overlap, and when all are delivered they cover the source's rows exactly.
    """
    ledger = ledger or Ledger()
    record = ledger.get(name)
    challenge = record.challenge()
    rows = ledger.releases(name)
    destinations = {spec.location(name): open_destination(spec, name) for spec in challenge.destinations}
    report = Report()
    for row in rows:
        if row.status == "delivered":
            report.checked += 1
            problem = _check_object(row, destinations, challenge.release_file_name(row.index))
            if problem:
                report.problems.append(problem)
            elif row.destination in destinations:
                _check_shipment(report, row, destinations[row.destination], scenario_record.shipment(name, row.name))
    report.problems.extend(_check_rows(rows, record.n_rows))
    if record.state != "cancelled":
        report.problems.extend(_undelivered(rows, ledger.database_now()))
    return report


def _check_shipment(report: Report, row: ReleaseRecord, destination, shipment: dict) -> None:
    """Every file and late-labels file the release shipped beside its table, read back."""
    stored = [(f["path"], f["bytes"], f["sha256"]) for f in shipment.get("files", [])]
    stored += [(f["file"], f["bytes"], f["sha256"]) for f in shipment.get("labels", [])]
    for file_name, size, sha256 in stored:
        report.checked += 1
        problem = _check_stored(f"{row.name} at {row.destination}: {file_name}", destination, file_name, size, sha256)
        if problem:
            report.problems.append(problem)
def _undelivered(rows: list[ReleaseRecord], now: datetime) -> list[str]:
    """One line per release that is due but not delivered everywhere (a stuck claim, a failure),
    and per release whose delivery failed even before its time (a run with ``--now``)."""
    late: dict[int, list[ReleaseRecord]] = {}
    for row in rows:
        if row.status == "failed" or (row.scheduled_at <= now and row.status != "delivered"):
            late.setdefault(row.index, []).append(row)
    lines = []
    for index in sorted(late):
        group = late[index]
        when = group[0].scheduled_at.isoformat()
        when = f"due since {when}" if group[0].scheduled_at <= now else f"scheduled {when}"
        where = ", ".join(f"{row.destination} ({row.status}{': ' + row.error if row.error else ''})" for row in group)
        lines.append(f"{group[0].name}: {when}, not delivered at {where}")
    return lines


def _check_object(row: ReleaseRecord, destinations: dict, file_name: str) -> str | None:
    where = f"{row.name} at {row.destination}"
    destination = destinations.get(row.destination)
    if destination is None:
        return f"{where}: the challenge has no such destination any more"
    return _check_stored(where, destination, file_name, row.bytes, row.sha256)


def _check_stored(where: str, destination, file_name: str, size: int, sha256: str) -> str | None:
    try:
        info = destination.stat(file_name)
    except PpipeError as exc:
        return f"{where}: cannot be read: {exc}"
    if info is None:
        return f"{where}: missing ({destination.uri_of(file_name)} does not exist)"
    if info.size != size:
        return f"{where}: {info.size} bytes stored, {size} delivered"
    if info.sha256 != sha256:
        return f"{where}: content changed (sha256 {info.sha256[:12]}… stored, {sha256[:12]}… delivered)"
    return None


def _check_rows(rows: list[ReleaseRecord], n_rows: int) -> list[str]:
    problems = []
    delivered: dict[int, ReleaseRecord] = {}
    for row in rows:
        if row.status != "delivered":
            continue
        if row.row_count != row.rows:
            problems.append(f"{row.name} at {row.destination}: {row.row_count} rows delivered, {row.rows} planned")
        delivered.setdefault(row.index, row)
    ranges = sorted((row.start, row.stop, row.name) for row in delivered.values())
    for (_, stop, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < stop:
            problems.append(f"{first} and {second} overlap: rows [{start}, {stop}) would be delivered twice")
    all_indexes = {row.index for row in rows}
    if delivered and set(delivered) == all_indexes:
        covered = sum(stop - start for start, stop, _ in ranges)
        if covered != n_rows or ranges[0][0] != 0 or ranges[-1][1] != n_rows:
            problems.append(f"the releases cover {covered} rows, the source has {n_rows}")
    return problems
