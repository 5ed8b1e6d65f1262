"""Delivering due releases: the domain steps of one dispatch run, as plain functions.

No Prefect here. A run (:class:`Dispatch`) takes the release rows that are due, CLAIMS
each one in the ledger before any work on it (so two runs never deliver the same row),
stages the source once, saves each release file once, uploads it to every claimed
destination (skipping an object that is already there with the same sha256), applies
pending grants, and records every outcome in the ledger. One release (or destination)
failing does not stop the others. The I/O steps are injected (:class:`Steps`), so the
Prefect flow runs the very same sequence with each step as a task with retries.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ppipe.data.manifest import MANIFEST, write_manifest
from ppipe.data.staged import StagedSource
from ppipe.delivery.access import Applied, apply_pending
from ppipe.destinations import Destination, open_destination
from ppipe.delivery.report import Outcome, Report, error_text
from ppipe.challenge.planning import by_release
from ppipe.ledger import Ledger, ReleaseRecord, utcnow
from ppipe.settings import claim_lease
from ppipe.challenge.spec import Challenge
from ppipe.challenge.planning import PlannedRelease

if TYPE_CHECKING:  # release_files brings polars: imported by the steps only when a run saves a file
    from ppipe.data.release_files import ReleaseFile

#: "Due" for an explicitly named release (``ppipe run --release K``): any time.
ANY_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)


# --- the steps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    """A release file stored at one destination: its URI, whether it was already there, by which task."""

    uri: str
    reused: bool = False
    task_run_id: str | None = None
    attempts: int = 1


def stage_source(challenge: Challenge, source_sha256: str | None = None) -> StagedSource:
    """This machine's staged copy of the challenge's source (staged once, then checked unchanged);
    with the sha256 recorded at create, SourceMismatch when this machine's source has other bytes."""
    from ppipe.data.staging import stage

    return stage(challenge, source_sha256)


def save_release(challenge: Challenge, staged: StagedSource, release: PlannedRelease) -> ReleaseFile:
    """The release file, written atomically to the local audit folder."""
    from ppipe.data.release_files import write_release

    return write_release(challenge, staged, release)


def prepare(destination: Destination) -> None:
    """Create the destination's bucket/folder if missing (idempotent)."""
    destination.prepare()


def upload(destination: Destination, file: ReleaseFile, release: str) -> Uploaded:
    """Store ``file`` at ``destination`` unless the same bytes are already there (crash after upload)."""
    if destination.exists(file.name, file.sha256):
        return Uploaded(destination.uri_of(file.name), reused=True)
    if file.extras:  # files and late labels first: the table arriving says the release is whole
        destination.upload_many([(extra.path, extra.name) for extra in file.extras])
    return Uploaded(destination.upload(file.path, file.name))


def apply_grants(ledger: Ledger, challenge: Challenge, destination: Destination) -> list[Applied]:
    """Apply at ``destination`` the grants not applied there yet (or changed since)."""
    return apply_pending(ledger, challenge, destination)


def publish_manifest(destination: Destination, manifest: Path) -> str:
    """Upload ``manifest.json``; returns its URI."""
    return destination.upload(manifest, MANIFEST)


@dataclass(frozen=True)
class Steps:
    """The I/O steps of a run. The defaults are the plain functions above; the flow wraps them in tasks."""

    stage: Callable[[Challenge, str | None], Any] = stage_source
    save: Callable[[Challenge, Any, PlannedRelease], Any] = save_release
    prepare: Callable[[Destination], None] = prepare
    upload: Callable[[Destination, Any, str], Uploaded] = upload
    grant: Callable[[Ledger, Challenge, Destination], list] = apply_grants
    manifest: Callable[[Destination, Path], str] = publish_manifest
    #: Runs ``deliver_row(row)`` for each claimed row of a release and returns the outcomes in
    #: order: one after another here; the flow submits them to Prefect's task runner.
    fan_out: Callable[[Callable[[ReleaseRecord], Any], list[ReleaseRecord]], list] = (
        lambda deliver, rows: [deliver(row) for row in rows])


# --- what a run reports --------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One release due now: its ledger rows, one per destination, oldest release first."""

    rows: list[ReleaseRecord]

    @property
    def index(self) -> int:
        return self.rows[0].index

    @property
    def name(self) -> str:
        return self.rows[0].name

    def planned(self) -> PlannedRelease:
        row = self.rows[0]
        return PlannedRelease(row.index, row.name, row.start, row.stop, row.scheduled_at,
                              tuple(r.destination for r in self.rows))


#: ``listener(release, step, detail)``: progress for a caller that shows it (``ppipe run``).
Listener = Callable[[str, str, str], None]


#: Listeners of every run in this process (``ppipe run`` shows progress bars from them).
_watchers: list[Listener] = []


@contextmanager
def watch(listener: Listener) -> Iterator[None]:
    """Call ``listener`` for each step of every run in this process while the block runs."""
    _watchers.append(listener)
    try:
        yield
    finally:
        _watchers.remove(listener)


# --- one run -------------------------------------------------------------------------------


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so a run stops the same way (giving back its claims)."""


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`Stopped` instead of
    killing the process on the spot; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise Stopped(f"stopped by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Dispatch:
    """One dispatch run over one challenge. ``run()`` does it all; the flow calls the steps one by one."""

    def __init__(
        self, ledger: Ledger, challenge: Challenge, *, owner: str | None = None, now: datetime | None = None,
        release: int | None = None, steps: Steps | None = None, flow_run_id: str | None = None,
        listener: Listener | None = None, take_over: bool = False,
    ):
        self.ledger, self.challenge = ledger, challenge
        self.owner = owner or f"ppipe-{uuid.uuid4()}"
        self.now = now or utcnow()
        self.release = release
        self.steps = steps or Steps()
        self.flow_run_id = flow_run_id
        self.listener = listener
        self.take_over = take_over  # wait out other runs' claims (scheduled runs; see abandoned())
        self.report = Report(challenge.name, self.owner, self.now)
        self.destinations: dict[str, Destination] = {}
        self.unusable: dict[str, str] = {}  # destination URI -> why it could not be prepared
        self._staged: Any = None
        self.waited: set[int] = set()  # rows in_order() held back for an earlier release

    def listen(self, release: str, step: str, detail: str) -> None:
        for listener in ([self.listener] if self.listener else []) + list(_watchers):
            listener(release, step, detail)

    # -- the plan -------------------------------------------------------------------------

    def run(self) -> Report:
        """Everything, in order: prepare destinations, deliver each due release, take over what a
        dead run abandoned, manifest, finish. SIGTERM stops it like Ctrl-C: claims given back."""
        with stop_on_sigterm():
            self.prepare_destinations()
            due = self.due_releases()
            self.listen("", "due", f"{self.challenge.name}: {len(due)} release(s) due at "
                                   f"{self.now.isoformat(timespec='seconds')}")
            for item in due:
                self.deliver(item)
            for item in self.abandoned() if self.take_over else []:
                self.deliver(item)
            self.update_manifest()
            return self.finish()

    def abandoned(self, poll: float = 1.0) -> list[Due]:
        """What the first pass could not take, due now: rows another run holds and rows that
        waited for an earlier release another run was delivering. The holder may be dead (its
        machine was killed): wait while its lease runs, at most one lease. A live holder
        finishes meanwhile; the rows that waited for it are then in order and returned."""
        when = ANY_TIME if self.release is not None else self.now
        held = self.ledger.held_elsewhere(self.challenge.name, self.owner, when, index=self.release)
        if held:
            self.listen("", "wait", f"{len(held)} row(s) held by another run; waiting up to its lease")
        retry = self.waited | {row.id for row in held}
        deadline = max((row.claim_expires_at for row in held), default=utcnow())
        while held and utcnow() <= deadline:
            time.sleep(poll)
            held = self.ledger.held_elsewhere(self.challenge.name, self.owner, when, index=self.release)
        rows = [row for due in self.due_releases() for row in due.rows if row.id in retry]
        return [Due(group) for group in by_release(rows)]

    def due_releases(self) -> list[Due]:
        """Releases with rows due at ``now``, oldest first; with ``release`` K, release K and every
        earlier one not delivered yet, whenever they are scheduled (releases arrive in order)."""
        when = ANY_TIME if self.release is not None else self.now
        rows = self.ledger.due(self.challenge.name, when)
        if self.release is not None:
            rows = [row for row in rows if row.index <= self.release]
        return [Due(group) for group in by_release(rows)]

    def prepare_destinations(self) -> None:
        """Open and prepare every destination once; one that fails is remembered, the others go on."""
        for spec in self.challenge.destinations:
            destination = open_destination(spec, self.challenge.name)
            self.destinations[destination.uri] = destination
            try:
                self.steps.prepare(destination)
            except Exception as exc:  # noqa: BLE001 - recorded per release row below
                self.unusable[destination.uri] = error_text(exc)

    def deliver(self, due: Due) -> list[Outcome]:
        """Claim the release's rows, then stage, save, upload and grant; record each row's outcome.

        A row waits (is not claimed) where an earlier release is not delivered yet. Interrupted
        (Ctrl-C, SIGTERM, a cancelled flow run), the run gives its claims back before it stops,
        so the next run takes them at once instead of after a lease.
        """
        ready = self.in_order(due)
        claimed = self.claim(Due(ready)) if ready else []
        if not claimed:
            return []
        try:
            with self.heartbeat():
                try:
                    file = self.save(due)
                except Exception as exc:  # noqa: BLE001 - the release fails, the run goes on
                    return [self.record_failed(row, error_text(exc)) for row in claimed]
                return self.steps.fan_out(lambda row: self.deliver_row(row, file), claimed)
        except BaseException as exc:
            self.ledger.release_claims(self.owner, f"interrupted ({type(exc).__name__}) before it was delivered; "
                                                   "the next run delivers it")
            raise

    def in_order(self, due: Due) -> list[ReleaseRecord]:
        """``due``'s rows but those whose destination still waits for an earlier release."""
        waiting = self.ledger.waiting(self.challenge.name, due.index)
        for row in due.rows:
            if row.destination in waiting:
                self.listen(row.name, "waiting", f"{row.destination}: {waiting[row.destination]} is not delivered yet")
                self.waited.add(row.id)
        return [row for row in due.rows if row.destination not in waiting]

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew this run's claims while it works, so a slow upload keeps them and a dead run's expire."""
        stop = threading.Event()
        interval = claim_lease().total_seconds() / 3

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.ledger.renew(self.owner)
                except Exception:  # noqa: BLE001 - a missed beat only lets the lease run down
                    continue

        thread = threading.Thread(target=beat, name="ppipe-claim-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def claim(self, due: Due) -> list[ReleaseRecord]:
        """The rows this run won (a row another run holds or delivered is left alone)."""
        claimed = [row for row in due.rows if self.ledger.claim(row.id, self.owner)]
        self.listen(due.name, "claim", f"{len(claimed)} of {len(due.rows)} destination(s)")
        return claimed

    def staged(self) -> Any:
        """The staged source, staged at most once per run."""
        if self._staged is None:
            self.listen("", "stage", self.challenge.name)
            recorded = self.ledger.get(self.challenge.name).source_sha256
            self._staged = self.steps.stage(self.challenge, recorded)
        return self._staged

    def save(self, due: Due) -> ReleaseFile:
        staged = self.staged()
        self.listen(due.name, "save", due.name)
        return self.steps.save(self.challenge, staged, due.planned())

    def deliver_row(self, row: ReleaseRecord, file: ReleaseFile) -> Outcome:
        """Upload to one destination, record the outcome, then apply its grants (this row only).
        The rows of a release go through here side by side (``Steps.fan_out``)."""
        if row.destination in self.unusable:
            return self.record_failed(row, self.unusable[row.destination])
        destination = self.destinations.get(row.destination)
        if destination is None:
            return self.record_failed(row, f"destination {row.destination}: no longer in the challenge's spec")
        try:
            self.listen(row.name, "upload", row.destination)
            uploaded = self.steps.upload(destination, file, row.name)
        except Exception as exc:  # noqa: BLE001
            return self.record_failed(row, error_text(exc))
        outcome = self.record_delivered(row, file, uploaded)
        self.grant(destination)  # after the delivery is recorded: a grant never fails it
        return outcome

    def grant(self, destination: Destination) -> None:
        """Apply pending grants at ``destination``, only when there are some (no empty task runs).

        Each grant that fails is one line in the report's problems; the others go on.
        """
        if not destination.spec.can_grant or not self.ledger.unapplied_grants(
                self.challenge.name, destination.uri, destination.kind):
            return
        self.listen("", "grant", destination.uri)
        try:
            applied = self.steps.grant(self.ledger, self.challenge, destination)
        except Exception as exc:  # noqa: BLE001 - e.g. the ledger unreachable: pending grants wait
            self.report.problems.append(f"grants -> {destination.uri}: {error_text(exc)}")
            return
        for item in applied:
            if item.failed:
                self.report.problems.append(item.line())
            else:
                self.listen("", item.action, item.line())

    # -- recording ------------------------------------------------------------------------

    def record_delivered(self, row: ReleaseRecord, file: ReleaseFile, uploaded: Uploaded) -> Outcome:
        kept = self.ledger.mark_delivered(
            row.id, self.owner, sha256=file.sha256, bytes=file.bytes, row_count=file.rows, uri=uploaded.uri,
            flow_run_id=self.flow_run_id, task_run_id=uploaded.task_run_id,
        )
        if not kept:  # our lease expired and another run took the row over: its outcome counts
            return self._add(Outcome(row.index, row.name, row.destination, "failed", uploaded.uri,
                                     "lost the claim (lease expired) before recording", attempts=row.attempts + 1))
        self.listen(row.name, "delivered", row.destination)
        return self._add(Outcome(row.index, row.name, row.destination, "delivered", uploaded.uri,
                                 reused=uploaded.reused, attempts=uploaded.attempts, task_run_id=uploaded.task_run_id))

    def record_failed(self, row: ReleaseRecord, error: str) -> Outcome:
        self.ledger.mark_failed(row.id, self.owner, error, flow_run_id=self.flow_run_id)
        self.listen(row.name, "failed", f"{row.destination}: {error}")
        return self._add(Outcome(row.index, row.name, row.destination, "failed", error=error))

    def _add(self, outcome: Outcome) -> Outcome:
        self.report.outcomes.append(outcome)
        return outcome

    # -- after the releases ---------------------------------------------------------------

    def update_manifest(self) -> Path | None:
        """Rewrite manifest.json from every delivered release and upload it to each usable destination.

        Only when this run delivered something: a run with nothing to do changes nothing. Runs
        racing on one challenge each publish what the ledger says; a run publishes again while
        the ledger changed under it, so the last one to finish leaves the newest manifest.
        """
        if not self.report.delivered:
            return None
        delivered = delivered_releases(self.ledger, self.challenge.name)
        for _ in range(3):
            try:
                manifest = write_manifest(self.challenge, self.staged(), delivered)
            except Exception as exc:  # noqa: BLE001
                self.report.problems.append(f"manifest: {error_text(exc)}")
                return None
            problems = self.publish_manifest(manifest)
            latest = delivered_releases(self.ledger, self.challenge.name)
            if latest == delivered:
                break
            delivered = latest
        self.report.problems.extend(problems)
        self.report.manifest = manifest
        return manifest

    def publish_manifest(self, manifest: Path) -> list[str]:
        """Upload ``manifest`` to each usable destination; returns what failed, one line each."""
        problems = []
        for uri, destination in self.destinations.items():
            if uri in self.unusable:
                continue
            try:
                self.steps.manifest(destination, manifest)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"manifest -> {uri}: {error_text(exc)}")
        return problems

    def finish(self) -> Report:
        """Mark the challenge finished when its last release is delivered; note what comes next."""
        self.report.finished = self.ledger.finish_if_complete(self.challenge.name)
        self.report.next_due = self.ledger.next_due(self.challenge.name, self.now)
        return self.report


def delivered_releases(ledger: Ledger, name: str) -> list[dict]:
    """Every release delivered to at least one destination, as manifest entries (oldest first)."""
    delivered = by_release(row for row in ledger.releases(name) if row.status == "delivered")
    return [
        {
            "index": rows[0].index, "name": rows[0].name, "start": rows[0].start, "stop": rows[0].stop,
            "rows": rows[0].rows, "sha256": rows[0].sha256, "bytes": rows[0].bytes,
            "scheduled_at": rows[0].scheduled_at.isoformat(),
            "delivered_at": max(r.delivered_at for r in rows).isoformat(),
            "destinations": [r.destination for r in rows],
        }
        for rows in sorted(delivered, key=lambda rows: rows[0].index)
    ]


def skip_reason(ledger: Ledger, name: str) -> str | None:
    """Why a challenge gets no delivery now (paused, cancelled, finished), or None if it is active."""
    state = ledger.get(name).state
    return None if state == "active" else f"challenge {name} is {state}: nothing to deliver"


def dispatch(ledger: Ledger, name: str, *, now: datetime | None = None, release: int | None = None,
             owner: str | None = None, listener: Listener | None = None) -> Report | None:
    """Deliver what is due for challenge ``name`` without Prefect; None when it is not active."""
    if skip_reason(ledger, name):
        return None
    return Dispatch(ledger, ledger.challenge(name), owner=owner, now=now, release=release, listener=listener).run()


__all__ = [
    "Dispatch", "Due", "Steps", "Uploaded", "delivered_releases", "dispatch", "skip_reason", "watch",
]
