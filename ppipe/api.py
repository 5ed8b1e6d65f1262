"""The Python API: everything the ``ppipe`` command does, as functions (each CLI command is a thin call).

Challenges: :func:`load`, :func:`plan`, :func:`create`, :func:`list_challenges`, :func:`show`,
:func:`release_status`, :func:`delete`. Access: :func:`grant`, :func:`revoke`. Prefect:
:func:`deploy`, :func:`write_prefect_yaml`, :func:`run`, :func:`pause`, :func:`resume`,
:func:`cancel`, :func:`demo`, :func:`server_start`, :func:`server_stop`, :func:`server_status`,
:func:`worker`. Integrity: :func:`verify`. Prefect-backed functions use ``PREFECT_API_URL``
when set, else the standing local server (started if needed). Every module beyond the
standard library is imported by the functions that need it, so ``import ppipe.api`` stays
light, and the commands that only look (``list``, ``show``) read through
:class:`ppipe.ledger_view.LedgerView` instead of the ORM unless given a Ledger.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ppipe.errors import NotFoundError, SpecError

if TYPE_CHECKING:
    from uuid import UUID

    from ppipe.challenge.planning import PlannedRelease
    from ppipe.challenge.spec import Challenge, Grant
    from ppipe.ledger import ChallengeRecord, Ledger, ReleaseRecord
    from ppipe.ledger_view import ChallengeRow, LedgerView


# --- the ledger: registering and opening (ppipe.delivery.challenges) ----------------------------


def load(path_or_challenge: str | Path | Challenge) -> Challenge:
    """A Challenge from a YAML file (or the Challenge itself)."""
    from ppipe.challenge.spec import Challenge
    from ppipe.challenge.specfile import load_challenge

    return path_or_challenge if isinstance(path_or_challenge, Challenge) else load_challenge(path_or_challenge)


def create(challenge: Challenge, *, ledger: Ledger | None = None) -> ChallengeRecord:
    """Validate, stage the source once (counting rows) and register the challenge in the ledger."""
    from ppipe.delivery.challenges import create as register

    return register(challenge, ledger=ledger)


def ensure_registered(name: str, *, ledger: Ledger | None = None, deployments: Path | None = None) -> Challenge:
    """The challenge ``name`` from the ledger, else registered from ``deployments/NAME.yaml``."""
    from ppipe.delivery.challenges import ensure_registered as ensure

    return ensure(name, ledger=ledger, deployments=deployments)


def open_ledger(ledger: Ledger | None = None, *, create: bool = True) -> Ledger:
    """``ledger``, or the configured one (``create=False``: never made by looking)."""
    from ppipe.delivery.challenges import open_ledger as opened

    return opened(ledger, create=create)


@contextlib.contextmanager
def reading(name: str | None = None, *, ledger: Ledger | None = None) -> Iterator[Ledger | LedgerView]:
    """What a command that only looks reads: ``ledger`` when given, else a read-only view of the
    configured ledger, closed afterwards. Without a ledger, NotFoundError (naming ``name``)."""
    if ledger is not None:
        yield ledger
        return
    from ppipe.ledger_view import LedgerView

    try:
        view = LedgerView()
    except NotFoundError as exc:
        if name is None:
            raise
        raise NotFoundError(f"no challenge named {name!r}: {exc}") from None
    with view:
        yield view


def plan(challenge: Challenge) -> tuple[int, list[PlannedRelease]]:
    """Count the source's rows and plan the releases; nothing is written."""
    if challenge.scenario is None and challenge.files is None:
        from ppipe.data.header import check_names
        from ppipe.data.text_count import header_and_rows

        counted = header_and_rows(challenge.source)  # a local CSV or TSV, read without polars
        if counted is not None:
            names, n_rows = counted
            releases = challenge.plan(n_rows)
            check_names(challenge, names)  # the header: what create would refuse
            return n_rows, releases
    from ppipe.data.sources import count_rows, scan_source, source_errors
    from ppipe.scenario.check import check_files, check_source_columns, file_column

    from ppipe.data.staging import check_columns

    n_rows = count_rows(challenge.source)
    releases = challenge.plan(n_rows)
    check_columns(challenge, scan_source(challenge.source))  # the header: what create would refuse
    if challenge.scenario is not None or challenge.files is not None:
        with source_errors(challenge.source):
            lf = scan_source(challenge.source)
            columns = lf.collect_schema().names()
        check_source_columns(challenge, lambda: columns)
        if challenge.files is not None:
            with source_errors(challenge.source):
                paths = file_column(challenge.files, lf)
            check_files(challenge.files, paths)
    return n_rows, releases


def scenario(name: str, *, ledger: Ledger | None = None) -> dict:
    """What the challenge's scenario did to each release cut so far, and what is planned for the
    others (the organiser-only record kept under PPIPE_HOME; see ppipe.scenario.record)."""
    from ppipe.scenario.describe import report

    return report(open_ledger(ledger).challenge(name))


__all__ = [
    "cancel", "create", "delete", "demo", "deploy", "ensure_registered", "grant", "list_challenges", "load",
    "open_ledger", "pause", "plan", "release_status", "scenario", "resume", "revoke", "run", "server_start", "server_status",
    "server_stop", "show", "summary", "verify", "worker", "write_prefect_yaml", "deployment_name", "health_deployment",
    "prefect_ui",
    "revoke_identity", "grant_status", "GrantStatus", "reading",
]


def list_challenges(*, ledger: Ledger | None = None) -> list:
    """The challenges in the ledger, as ChallengeRecord-like rows (none when there is no ledger
    yet: looking never makes one)."""
    try:
        with reading(ledger=ledger) as reader:
            return reader.list_challenges()
    except NotFoundError:
        return []


#: The states ``show --status`` filters on.
STATUSES = ("planned", "running", "delivered", "failed", "partial")


def show(name: str, *, ledger: Ledger | None = None, status: str | None = None,
         last: int | None = None) -> tuple[ChallengeRecord | ChallengeRow, list[ReleaseStatus]]:
    """A challenge's ledger record and where each of its releases stands, per destination;
    only those in ``status``, only the ``last`` N. Never makes a ledger."""
    if status is not None and status not in STATUSES:
        raise SpecError("--status", f"{status!r} is not a release state: use {', '.join(STATUSES)}")
    if last is not None and last < 1:
        raise SpecError("--last", f"must be 1 or more, not {last}")
    with reading(name, ledger=ledger) as reader:
        record, releases = reader.get(name), release_status(name, ledger=reader)
    if status is not None:
        releases = [release for release in releases if release.status == status]
    if last is not None:
        releases = releases[-last:]
    return record, releases


def summary(name: str, *, ledger: Ledger | None = None) -> dict:
    """Counts of releases per state and the next release due (``show`` and ``run`` start with it)."""
    with reading(name, ledger=ledger) as reader:
        record, releases = reader.get(name), release_status(name, ledger=reader)
    upcoming = next((release for release in releases if release.status != "delivered"), None)
    return {
        "name": name, "state": record.state, "rows": record.n_rows, "releases": len(releases),
        "counts": {state: sum(release.status == state for release in releases) for state in STATUSES},
        "next": (upcoming.name, upcoming.scheduled_at) if upcoming else None,
    }


@dataclass(frozen=True)
class ReleaseStatus:
    """One release with its per-destination rows, for ``ppipe show``."""

    index: int
    name: str
    start: int
    stop: int
    scheduled_at: object
    deliveries: list[ReleaseRecord]

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def status(self) -> str:
        states = {row.status for row in self.deliveries}
        for state in ("failed", "running", "planned"):
            if state in states:
                return "partial" if state == "planned" and "delivered" in states else state
        return "delivered"

    def to_json(self) -> dict:
        return {
            "index": self.index, "name": self.name, "start": self.start, "stop": self.stop,
            "rows": self.rows, "scheduled_at": self.scheduled_at.isoformat(), "status": self.status,
            "destinations": [row.destination for row in self.deliveries],
            "deliveries": [
                {
                    "destination": row.destination, "status": row.status, "sha256": row.sha256,
                    "uri": row.uri, "bytes": row.bytes, "attempts": row.attempts, "error": row.error,
                    "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
                }
                for row in self.deliveries
            ],
        }


def release_status(name: str, *, ledger: Ledger | LedgerView | None = None) -> list[ReleaseStatus]:
    """Each release of ``name`` with its rows, one per destination. Never makes a ledger."""
    from ppipe.challenge.planning import by_release

    with reading(name, ledger=ledger) as reader:
        rows = reader.releases(name)
    return [ReleaseStatus(group[0].index, group[0].name, group[0].start, group[0].stop, group[0].scheduled_at, group)
            for group in by_release(rows)]


def grant(name: str, grant: Grant, *, ledger: Ledger | None = None):
    """Give a participant access on every destination of the grant's service (no data upload)."""
    from ppipe.delivery.access import change_grant

    return change_grant(open_ledger(ledger), name, grant)


def revoke(name: str, grant: Grant, *, ledger: Ledger | None = None):
    """Remove a participant's access on every destination of the grant's service."""
    from ppipe.delivery.access import change_grant

    return change_grant(open_ledger(ledger), name, grant, revoke=True)


# --- deployments and runs (Prefect, against PREFECT_API_URL or the standing local server) ----


def deploy(challenge: Challenge | str, *, work_pool: str | None = None, ledger: Ledger | None = None) -> UUID:
    """Publish as a Prefect deployment (against PREFECT_API_URL, else the standing local
    server, started if needed); returns the deployment id. Registers the challenge first if needed."""
    from ppipe.orchestration import deploy as deployments, server

    with server.connect():
        return deployments.deploy(challenge, work_pool=work_pool, ledger=ledger)


def delete(name: str, *, ledger: Ledger | None = None, keep_access: bool = False) -> list[str]:
    """Revoke the challenge's grants and delete it from the ledger (see
    :func:`ppipe.delivery.challenges.delete`), then its Prefect deployments (dispatch and
    health checks) on ``PREFECT_API_URL``, else on the local server this ``PPIPE_HOME``
    started, when it runs: none is started just to delete. Returns the access left in place,
    one line each."""
    from ppipe.delivery.challenges import delete as forget
    from ppipe.orchestration import deploy as deployments, server

    left = forget(name, ledger=ledger, keep_access=keep_access)
    if server.answering() is not None:  # without a server, its health runs find no challenge: they do nothing
        with server.connect():
            deployments.remove(name)
    return left


def write_prefect_yaml(path: Path | None = None) -> Path:
    """Write prefect.yaml from deployments/*.yaml (for ``prefect deploy --all``); returns its path."""
    from ppipe.orchestration import deploy as deployments

    return deployments.write_prefect_yaml(path)


def deployment_name(challenge: str) -> str:
    """``<flow name>/<challenge>``, as Prefect names the challenge's deployment."""
    from ppipe.orchestration.deploy import deployment_name as name

    return name(challenge)


def health_deployment(challenge: str, *, ledger: Ledger | None = None) -> str | None:
    """``check-endpoints/<challenge>`` and its interval when the challenge takes live endpoints
    (``ppipe deploy`` then publishes its health checks too), else None."""
    from ppipe.orchestration.deploy import health_deployment_name

    spec = open_ledger(ledger).challenge(challenge)
    endpoint = spec.requests.endpoint if spec.requests is not None else None
    if endpoint is None:
        return None
    return f"{health_deployment_name(challenge)} every {endpoint.health_every.total_seconds():g}s"


def _schedule_change(name: str, action: str, ledger: Ledger | None) -> bool:
    from ppipe.orchestration import deploy as deployments, server

    with server.connect():
        return getattr(deployments, action)(name, ledger=ledger)


def pause(name: str, *, ledger: Ledger | None = None) -> bool:
    """Pause deliveries and the deployment's schedule; returns whether the challenge has a deployment."""
    return _schedule_change(name, "pause", ledger)


def resume(name: str, *, ledger: Ledger | None = None) -> bool:
    """Resume a paused challenge and its schedule (overdue releases go out at the next run)."""
    return _schedule_change(name, "resume", ledger)


def cancel(name: str, *, ledger: Ledger | None = None) -> bool:
    """Cancel for good (no more deliveries) and pause the schedule."""
    return _schedule_change(name, "cancel", ledger)


def run(name: str, *, now: datetime | str | None = None, release: int | None = None, listener=None,
        quiet: bool = False, on_start=None):
    """Run the dispatch flow once, here: deliver what is due at ``now`` (default: the current
    time), or release ``release`` whenever it is scheduled. Returns the FlowRun (id, UI address,
    whether it failed and why); ``listener(release, step, detail)`` sees each step."""
    from ppipe.challenge.durations import parse_time
    from ppipe.orchestration.runs import run_here

    if isinstance(now, str):
        try:
            now = parse_time(now)
        except ValueError as exc:
            raise SpecError("--now", str(exc)) from None
    if release is not None and release < 0:
        raise SpecError("--release", "must be a release index (0 or more)")
    from ppipe.delivery.challenges import check_release_index

    ensure_registered(name)  # an unknown name or a bad file: one line, before any server starts
    check_release_index(name, release)
    return run_here(name, now=now, release=release, listener=listener, quiet=quiet, on_start=on_start)


def verify(name: str, *, ledger: Ledger | None = None):
    """Check every delivered release (exists, size, sha256), that releases add up to the source,
    and that no release is due but undelivered. Never makes a ledger."""
    from ppipe.delivery.challenges import existing_ledger
    from ppipe.delivery.verify import verify as check

    return check(name, ledger or existing_ledger(name))


def demo(out: Path = Path("out"), *, timeout: float = 240, announce=lambda line: None,
         progress=lambda delivered, failed: None):
    """The example challenge, six releases 20s apart, two simulated participants, delivered by a Prefect worker to ``out``."""
    from ppipe.orchestration.demo import run_demo

    return run_demo(out, timeout=timeout, announce=announce, progress=progress)


def prefect_ui() -> str:
    """The address of the Prefect UI in use (PREFECT_API_URL's, else the standing local server's)."""
    from ppipe.orchestration import server

    return server.ui_url(server.ensure_api())


def server_start(port: int | None = None):
    """Start the local Prefect server in the background (or reuse the one that answers)."""
    from ppipe.orchestration import server

    return server.start(port)


def cluster_start(database_url: str, redis_url: str, *, processes: int = 2, port: int | None = None):
    """Prefect on PostgreSQL + Redis in the background: migrations once, ``processes`` API
    processes (ports ``port``, ``port + 1``, ...) and one background-services process."""
    from ppipe.orchestration import cluster, server

    return cluster.start_standing(database_url, redis_url, processes=processes, port=port or server.port())


def server_stop(port: int | None = None) -> bool:
    """Stop the Prefect server (or cluster) ppipe started; False if ppipe started none."""
    from ppipe.orchestration import cluster, server

    stopped_cluster = cluster.stop_standing()
    return server.stop(port) or stopped_cluster


def server_status(port: int | None = None):
    """Whether the local Prefect server answers, and whether ppipe started it."""
    from ppipe.orchestration import server

    return server.status(port)


def worker(pool: str | None = None) -> None:
    """Serve the deployments in the foreground: a Prefect process worker on the work pool (replaces this process)."""
    from ppipe.orchestration import server

    server.exec_worker(pool)


# --- access: who has it, and revoking however it was granted --------------------------------


def revoke_identity(name: str, service: str, identity: str, via: str | None = None, *, ledger: Ledger | None = None):
    """Revoke the grant of ``service`` to ``identity`` however it was made (``via`` narrows it down)."""
    from ppipe.delivery.access import change_grant, find_grant

    ledger = open_ledger(ledger)
    return change_grant(ledger, name, find_grant(ledger, name, service, identity, via), revoke=True)


@dataclass(frozen=True)
class GrantStatus:
    """One grant and where it stands at each destination of its service, for ``ppipe show``."""

    record: object  # ppipe.ledger.GrantRecord
    applications: list  # ppipe.ledger.GrantApplication, one per destination it reached

    def to_json(self) -> dict:
        record = self.record
        return {
            "service": record.service, "via": record.via, "identity": record.identity, "role": record.role,
            "state": record.state,
            "destinations": [
                {"destination": a.destination, "state": a.state if a.version == record.version else "pending",
                 "error": a.error, "access": a.access, "at": a.applied_at.isoformat()}
                for a in self.applications
            ],
        }


def grant_status(name: str, *, ledger: Ledger | None = None) -> list[GrantStatus]:
    """Every grant of ``name`` (active or revoked) and where it stands. Never makes a ledger."""
    with reading(name, ledger=ledger) as reader:
        applications = reader.applications(name)
        return [GrantStatus(row, applications.get(row.id, [])) for row in reader.grants(name, state=None)]


# --- participants (ppipe.participants) -------------------------------------------------------


def participant_add(challenge: str, name: str, *, email: str | None = None, s3: str | None = None,
                    gcs: str | None = None, drive: str | None = None, ledger: Ledger | None = None):
    """Register a participant, grant their identities read access; the token is in the result, once."""
    from ppipe.participants import service

    return service.add(challenge, name, email=email, s3=s3, gcs=gcs, drive=drive, ledger=ledger)


def participant_list(challenge: str, *, ledger: Ledger | None = None):
    from ppipe.participants import service

    return service.list_participants(challenge, ledger=ledger)


def participant_revoke(challenge: str, name: str, *, ledger: Ledger | None = None) -> list[str]:
    from ppipe.participants import service

    return service.revoke(challenge, name, ledger=ledger)


def participant_rotate(challenge: str, name: str, *, ledger: Ledger | None = None) -> str:
    from ppipe.participants import service

    return service.rotate(challenge, name, ledger=ledger)


def judge(name: str, *, now: datetime | None = None, ledger: Ledger | None = None):
    """Open due requests, mark misses, score predictions whose labels are out (a judging round)."""
    from ppipe.endpoints import side
    from ppipe.participants import service

    ledger = open_ledger(ledger)
    result = service.judge(name, now=now, ledger=ledger)
    side.score_due(ledger, name)  # live endpoints' answers to rounds whose labels are out
    return result


def leaderboard(name: str, *, ledger: Ledger | None = None):
    from ppipe.endpoints.http import install
    from ppipe.participants import service

    install()  # uptime, latency and endpoint score columns
    return service.leaderboard(name, ledger=ledger)


def endpoint_register(challenge: str, participant: str, url: str, protocol: str = "ppipe", *,
                      ledger: Ledger | None = None):
    """Register a participant's model service and probe it at once; the signing secret is in the result, once."""
    from ppipe.endpoints import side

    return side.register(open_ledger(ledger), challenge, participant, url, protocol)


def endpoint_check(challenge: str, url: str, protocol: str = "ppipe", *, ledger: Ledger | None = None) -> None:
    """RefusedURL (one line) unless the challenge takes endpoints and would call ``url``."""
    from ppipe.endpoints import engine, side

    engine.validate(url, protocol, side.endpoint_spec(open_ledger(ledger).challenge(challenge)))


def endpoints_report(name: str, *, check: bool = False, ledger: Ledger | None = None) -> list[dict]:
    """Each participant's endpoint with its figures and latest call (``check``: a health check first)."""
    from ppipe.endpoints import report, side

    ledger = open_ledger(ledger)
    if check:
        side.health_if_due(ledger, name, force=True)
    return report.rows(ledger, name)


KEEP_ALIVE = 75  # seconds


def serve_api(host: str = "127.0.0.1", port: int = 8765, *, workers: int = 1, access_log: bool = False) -> None:
    """Serve the participants' HTTP API (uvicorn) until stopped, live-endpoint routes included."""
    import uvicorn

    from ppipe.endpoints.http import create_app

    create_app().state.ledger.engine.dispose()  # fail here, in one line, if the ledger cannot be opened
    # Participants poll: keep their connections open longer than uvicorn's 5 s default.
    uvicorn.run("ppipe.endpoints.http:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=access_log, timeout_keep_alive=KEEP_ALIVE)
