"""The ledger: a thin SQLModel record of challenges, their releases and grants.

SQLite in ``PPIPE_HOME`` by default, PostgreSQL when ``PPIPE_DATABASE_URL`` says so.
One release row per (challenge, release index, destination): that is the unit delivered
exactly once. A row is *claimed* by a conditional UPDATE before any work starts, so two
runs never work on the same row; a claim carries a lease, and an expired lease (a dead
run) may be taken over.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, event, exists, func, or_, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine, delete, select

from ppipe import settings
from ppipe.settings import claim_lease
from ppipe.errors import ConflictError, NotFoundError, PpipeError, first_line
from ppipe.challenge.spec import Challenge, Grant
from ppipe.challenge.specfile import parse_challenge

CHALLENGE_STATES = ("active", "paused", "finished", "cancelled")
RELEASE_STATES = ("planned", "running", "delivered", "failed")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores timezone-aware datetimes only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


# --- tables --------------------------------------------------------------------------------


class ChallengeRecord(SQLModel, table=True):
    __tablename__ = "challenges"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    spec: dict = Field(sa_column=Column(JSON, nullable=False))
    n_rows: int
    #: The source's sha256 at create: every machine stages exactly these bytes (None: an older ledger).
    source_sha256: str | None = Field(default=None, max_length=64)
    state: str = Field(default="active", max_length=16)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)

    def challenge(self) -> Challenge:
        return parse_challenge(self.spec, file=f"ledger:{self.name}")


class ReleaseRecord(SQLModel, table=True):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("challenge_id", "index", "destination", name="uq_release_destination"),
        Index("ix_releases_due", "challenge_id", "status", "scheduled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    index: int
    name: str = Field(max_length=255)
    destination: str = Field(max_length=1024)
    start: int
    stop: int
    rows: int
    scheduled_at: datetime = _when()
    status: str = Field(default="planned", max_length=16)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=128)
    claim_expires_at: datetime | None = _when(default=None)
    started_at: datetime | None = _when(default=None)
    delivered_at: datetime | None = _when(default=None)
    updated_at: datetime = _when(default_factory=utcnow)
    error: str | None = None
    sha256: str | None = Field(default=None, max_length=64)
    bytes: int | None = None
    row_count: int | None = None
    uri: str | None = Field(default=None, max_length=2048)
    flow_run_id: str | None = Field(default=None, max_length=64)
    task_run_id: str | None = Field(default=None, max_length=64)


class GrantRecord(SQLModel, table=True):
    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("challenge_id", "key", name="uq_grant"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE")
    key: str = Field(max_length=600)
    service: str = Field(max_length=8)
    identity: str = Field(max_length=512)
    role: str = Field(max_length=64)
    via: str | None = Field(default=None, max_length=32)
    notify: bool = False
    state: str = Field(default="active", max_length=16)  # active | revoked
    #: Bumped by every grant/revoke: an application records the version it applied, and is
    #: recorded only while that is still the current one (a racing revoke is never lost).
    version: int = 1
    created_at: datetime = _when(default_factory=utcnow)
    revoked_at: datetime | None = _when(default=None)

    def grant(self) -> Grant:
        return Grant(service=self.service, identity=self.identity, role=self.role, via=self.via, notify=self.notify)


class GrantApplication(SQLModel, table=True):
    """That a grant (or its revocation) has been applied at one destination, and when."""

    __tablename__ = "grant_applications"
    __table_args__ = (UniqueConstraint("grant_id", "destination", name="uq_grant_destination"),)

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grants.id", ondelete="CASCADE")
    destination: str = Field(max_length=1024)
    #: what was applied: active | revoked, or failed (refused for good, see ``error``), or
    #: applying (started, not finished: the destination may hold it, so a revoke goes there)
    state: str = Field(max_length=16)
    version: int = 0  # the grant version this state belongs to
    error: str | None = None
    #: where the participant reads when not at the destination itself (an S3 access point's alias)
    access: str | None = Field(default=None, max_length=1024)
    applied_at: datetime = _when(default_factory=utcnow)


class LocationRecord(SQLModel, table=True):
    """That a place (destination + folder/prefix) belongs to one challenge: a second claim on it is refused."""

    __tablename__ = "locations"

    key: str = Field(primary_key=True, max_length=2048)
    challenge_id: uuid.UUID = Field(foreign_key="challenges.id", ondelete="CASCADE", index=True)


def location_key(destination: Any, challenge: str) -> str:
    """What makes two destinations the same place: the resolved folder for local ones (so
    ``out/x/..`` and ``out`` are one), the store's endpoint and the location for the others."""
    if getattr(destination, "kind", None) == "local":
        return "local:" + os.path.realpath(destination.location(challenge))
    endpoint = getattr(destination, "endpoint_url", None)
    store = f"{endpoint.rstrip('/')}|" if endpoint else ""
    return store + destination.location(challenge)


class AccessLock(SQLModel, table=True):
    """Who is changing the access document of one place (a bucket policy, a folder) right now.

    Bucket policies and IAM policies are read-modify-write documents with no conditional write
    on S3: every ppipe process changes one only while it holds this lease, so no update is lost.
    """

    __tablename__ = "access_locks"

    scope: str = Field(primary_key=True, max_length=1024)
    owner: str = Field(max_length=128)
    expires_at: datetime = _when()


# --- engine --------------------------------------------------------------------------------


#: Modules that add their own tables to the ledger (SQLModel ``table=True`` classes on the
#: same metadata), e.g. ``"ppipe.participants.records"``. They are imported before the tables
#: are created, so a ledger opened from anywhere has every table. Add yours here.
TABLE_MODULES: list[str] = ["ppipe.endpoints.records", "ppipe.participants.records"]


def _import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """An engine on the ledger, its tables made if missing. With ``create=False`` (commands that
    only read) a SQLite ledger that does not exist yet is a NotFoundError, and nothing is created."""
    url = settings.psycopg_url(url or settings.database_url())
    _import_table_modules()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _prepare_sqlite_file(engine, create)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        SQLModel.metadata.create_all(engine)
        _add_missing_columns(engine)
    except Exception as exc:  # unreachable server, bad credentials, unwritable file
        raise PpipeError(f"ledger {engine.url.render_as_string(hide_password=True)}: cannot open: {first_line(exc)}") from None
    if url.startswith("sqlite") and engine.url.database:
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal/-shm the database file's mode
            settings.make_private(Path(engine.url.database + suffix))
    return engine


#: Columns added since a ledger may have been made: (table, column, SQL type and default).
ADDED_COLUMNS = (
    ("grants", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("grant_applications", "version", "INTEGER NOT NULL DEFAULT 0"),  # 0: applied again once, idempotently
    ("grant_applications", "error", "TEXT"),
    ("grant_applications", "access", "VARCHAR(1024)"),
    ("challenges", "source_sha256", "VARCHAR(64)"),
)


def _add_missing_columns(engine: Engine) -> None:
    """Bring an older ledger's tables up to date (create_all makes missing tables, not columns)."""
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    missing = [(table, column, kind) for table, column, kind in ADDED_COLUMNS
               if column not in {c["name"] for c in inspector.get_columns(table)}]
    if missing:
        with engine.begin() as connection:
            for table, column, kind in missing:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
def _prepare_sqlite_file(engine: Engine, create: bool) -> None:
    """The default ledger's folder is PPIPE_HOME, made private; a missing file is only made when asked."""
    path = Path(engine.url.database or "")
    if not create and not path.exists():
        raise NotFoundError(f"no ledger at {path} yet: create a challenge first (ppipe create FILE)")
    if path.parent == settings.home_path():
        settings.home()
    if not path.exists() and path.parent.is_dir():  # made here, private from the start, before SQLite opens it
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside a writer; foreign keys make deletes cascade.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# --- the ledger ----------------------------------------------------------------------------


class Ledger:
    """Every read and write of ppipe's state goes through here."""

    def __init__(self, url: str | None = None, engine: Engine | None = None, *, create: bool = True):
        self.engine = engine or make_engine(url, create=create)
        # For reads of one or two statements polled over HTTP (the participant API): in
        # autocommit, so PostgreSQL sees the statements only, no BEGIN and ROLLBACK around
        # them (half the round trips of a checkout). The same pool; never for writes.
        self.reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- challenges -----------------------------------------------------------------------

    def add_challenge(self, challenge: Challenge, n_rows: int, source_sha256: str | None = None) -> ChallengeRecord:
        """Record a challenge (with the sha256 of the source it was staged from), its planned
        releases (one row per destination) and its grants.

        Raises SpecError (from planning) for an empty release, ConflictError for a taken name or
        a destination another challenge delivers to.
        """
        releases = challenge.plan(n_rows)
        record = ChallengeRecord(id=challenge.id, name=challenge.name, spec=challenge.to_spec(), n_rows=n_rows,
                                 source_sha256=source_sha256)
        with self.session() as session:
            if session.exec(select(ChallengeRecord.id).where(ChallengeRecord.name == challenge.name)).first():
                raise ConflictError(f"challenge {challenge.name!r} already exists: delete it first or pick another name")
            self.check_locations_free(challenge)
            session.add(record)
            session.flush()
            for destination in challenge.destinations:
                session.add(LocationRecord(key=location_key(destination, challenge.name), challenge_id=record.id))
            for release in releases:
                for destination in release.destinations:
                    session.add(
                        ReleaseRecord(
                            challenge_id=record.id, index=release.index, name=release.name,
                            destination=destination, start=release.start, stop=release.stop,
                            rows=release.rows, scheduled_at=release.scheduled_at,
                        )
                    )
            for grant in challenge.grants:
                session.add(_grant_record(record.id, grant))
            try:
                session.commit()
            except IntegrityError:  # registered by a concurrent run between the check and now
                self.check_locations_free(challenge)
                raise ConflictError(f"challenge {challenge.name!r} already exists") from None
        return record

    def check_locations_free(self, challenge: Challenge) -> None:
        """ConflictError naming the owner when another challenge delivers to one of ``challenge``'s places."""
        for destination in challenge.destinations:
            owner = self.location_owner(location_key(destination, challenge.name))
            if owner is not None and owner != challenge.name:
                raise ConflictError(
                    f"destination {destination.location(challenge.name)} belongs to challenge {owner!r}: "
                    f"give {challenge.name!r} another folder or prefix (or delete {owner!r})"
                )

    def location_owner(self, key: str) -> str | None:
        """The name of the challenge that owns the place ``key`` (see :func:`location_key`), if any."""
        with self.session() as session:
            return session.exec(
                select(ChallengeRecord.name).join(LocationRecord, LocationRecord.challenge_id == ChallengeRecord.id)
                .where(LocationRecord.key == key)
            ).first()

    def exists(self, name: str) -> bool:
        with self.session() as session:
            return session.exec(select(ChallengeRecord.id).where(ChallengeRecord.name == name)).first() is not None

    def get(self, name: str) -> ChallengeRecord:
        with self.session() as session:
            record = session.exec(select(ChallengeRecord).where(ChallengeRecord.name == name)).first()
        if record is None:
            raise NotFoundError(f"no challenge named {name!r} in the ledger (see 'ppipe list')")
        return record

    def challenge(self, name: str) -> Challenge:
        return self.get(name).challenge()

    def list_challenges(self) -> list[ChallengeRecord]:
        with self.session() as session:
            return list(session.exec(select(ChallengeRecord).order_by(ChallengeRecord.created_at)))

    def delete_challenge(self, name: str) -> None:
        record = self.get(name)
        with self.session() as session:
            grant_ids = select(GrantRecord.id).where(GrantRecord.challenge_id == record.id)
            session.exec(delete(GrantApplication).where(GrantApplication.grant_id.in_(grant_ids)))
            for table in (GrantRecord, ReleaseRecord, LocationRecord):
                session.exec(delete(table).where(table.challenge_id == record.id))
            session.exec(delete(ChallengeRecord).where(ChallengeRecord.id == record.id))
            session.commit()

    def set_state(self, name: str, state: str, *, only_from: Iterable[str] | None = None) -> ChallengeRecord:
        """Change a challenge's state; ConflictError if it is not in one of ``only_from``."""
        if state not in CHALLENGE_STATES:
            raise ValueError(f"unknown state {state!r}")
        record = self.get(name)
        allowed = tuple(only_from) if only_from is not None else CHALLENGE_STATES
        with self.session() as session:
            result = session.exec(
                update(ChallengeRecord)
                .where(ChallengeRecord.id == record.id, ChallengeRecord.state.in_(allowed))
                .values(state=state, updated_at=utcnow())
            )
            session.commit()
        if result.rowcount != 1:
            raise ConflictError(f"challenge {name!r} is {record.state}: cannot make it {state}")
        return self.get(name)

    def finish_if_complete(self, name: str) -> bool:
        """Mark an active challenge finished when every release row is delivered; True if it is finished."""
        record = self.get(name)
        with self.session() as session:
            pending = session.exec(
                select(func.count()).select_from(ReleaseRecord).where(
                    ReleaseRecord.challenge_id == record.id, ReleaseRecord.status != "delivered"
                )
            ).one()
            if pending == 0 and record.state == "active":
                session.exec(
                    update(ChallengeRecord).where(ChallengeRecord.id == record.id, ChallengeRecord.state == "active")
                    .values(state="finished", updated_at=utcnow())
                )
                session.commit()
        return pending == 0

    # -- releases -------------------------------------------------------------------------

    def releases(self, name: str) -> list[ReleaseRecord]:
        """Every release row of a challenge, by release index then destination."""
        record = self.get(name)
        with self.session() as session:
            return list(session.exec(
                select(ReleaseRecord).where(ReleaseRecord.challenge_id == record.id)
                .order_by(ReleaseRecord.index, ReleaseRecord.id)
            ))

    def due(self, name: str, now: datetime | None = None, *, index: int | None = None) -> list[ReleaseRecord]:
        """Rows scheduled at or before ``now`` that are not delivered and not held by a live claim, oldest first.

        ``now`` is the schedule's clock (a run may act as of another time); leases are the
        database's clock, as in :meth:`claim`, so a dead run's expired claim is due whatever ``now`` says.
        """
        now = now or utcnow()
        record = self.get(name)
        with self.session() as session:
            query = select(ReleaseRecord).where(
                ReleaseRecord.challenge_id == record.id,
                ReleaseRecord.scheduled_at <= now,
                _claimable(self.database_now(session)),
            )
            if index is not None:
                query = query.where(ReleaseRecord.index == index)
            return list(session.exec(query.order_by(ReleaseRecord.scheduled_at, ReleaseRecord.index, ReleaseRecord.id)))

    def held_elsewhere(self, name: str, owner: str, now: datetime | None = None, *,
                       index: int | None = None) -> list[ReleaseRecord]:
        """Rows scheduled by ``now`` that another run claims under a live lease (it may be dead:
        its lease then runs out and the rows become due again)."""
        record = self.get(name)
        query = select(ReleaseRecord).where(
            ReleaseRecord.challenge_id == record.id, ReleaseRecord.scheduled_at <= (now or utcnow()),
            ReleaseRecord.status == "running", ReleaseRecord.claimed_by != owner,
            ReleaseRecord.claim_expires_at >= utcnow(),
        )
        if index is not None:
            query = query.where(ReleaseRecord.index == index)
        with self.session() as session:
            return list(session.exec(query))
    def waiting(self, name: str, index: int) -> dict[str, str]:
        """Destinations where a release before ``index`` is not delivered yet, with the first such
        release's name: release ``index`` must wait there, so releases arrive in order."""
        record = self.get(name)
        with self.session() as session:
            rows = session.exec(
                select(ReleaseRecord.destination, func.min(ReleaseRecord.index)).where(
                    ReleaseRecord.challenge_id == record.id, ReleaseRecord.index < index,
                    ReleaseRecord.status != "delivered",
                ).group_by(ReleaseRecord.destination)
            ).all()
        return {destination: f"release_{first}" for destination, first in rows}

    def next_due(self, name: str, now: datetime | None = None) -> datetime | None:
        """When the next undelivered release is scheduled after ``now`` (None if none)."""
        now = now or utcnow()
        record = self.get(name)
        with self.session() as session:
            return session.exec(
                select(func.min(ReleaseRecord.scheduled_at)).where(
                    ReleaseRecord.challenge_id == record.id,
                    ReleaseRecord.status != "delivered",
                    ReleaseRecord.scheduled_at > now,
                )
            ).one()

    def database_now(self, session: Session | None = None) -> datetime:
        """The database's clock (UTC): leases are measured on it, so clients whose clocks
        disagree still agree on when a claim expires."""
        if session is None:
            with self.session() as own:
                return self.database_now(own)
        if self.engine.dialect.name == "sqlite":
            value = session.connection().execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        return session.connection().execute(text("SELECT clock_timestamp()")).scalar_one().astimezone(timezone.utc)

    def claim(self, release_id: int, owner: str, *, lease: timedelta | None = None) -> bool:
        """Atomically take a release row for ``owner``; False if another run holds or delivered it.

        One conditional UPDATE, so two runs racing for the same row cannot both win
        (no read-then-write window), on SQLite and PostgreSQL alike. The lease starts and
        ends on the database's clock, never this client's.
        """
        lease = claim_lease() if lease is None else lease
        with self.session() as session:
            now = self.database_now(session)
            result = session.exec(
                update(ReleaseRecord)
                .where(ReleaseRecord.id == release_id, _claimable(now))
                .values(
                    status="running", claimed_by=owner, claim_expires_at=now + lease,
                    attempts=ReleaseRecord.attempts + 1, started_at=now, updated_at=now, error=None,
                )
            )
            session.commit()
        return result.rowcount == 1

    def renew(self, owner: str, *, lease: timedelta | None = None) -> int:
        """Extend every live claim of ``owner`` by a lease from now (the database's); returns how many."""
        with self.session() as session:
            now = self.database_now(session)
            result = session.exec(
                update(ReleaseRecord)
                .where(ReleaseRecord.claimed_by == owner, ReleaseRecord.status == "running")
                .values(claim_expires_at=now + (claim_lease() if lease is None else lease))
            )
            session.commit()
        return result.rowcount

    def mark_delivered(
        self, release_id: int, owner: str, *, sha256: str, bytes: int, row_count: int, uri: str,
        flow_run_id: str | None = None, task_run_id: str | None = None,
    ) -> bool:
        """Record a delivery; only the run that holds the claim may. False if it lost the claim."""
        now = utcnow()
        return self._finish_claim(
            release_id, owner, status="delivered", delivered_at=now, sha256=sha256, bytes=bytes,
            row_count=row_count, uri=uri, flow_run_id=flow_run_id, task_run_id=task_run_id, error=None,
        )

    def mark_failed(self, release_id: int, owner: str, error: str, *, flow_run_id: str | None = None) -> bool:
        """Record a failure (the row becomes claimable again by the next run)."""
        return self._finish_claim(release_id, owner, status="failed", error=error[:2000], flow_run_id=flow_run_id)

    def release_claims(self, owner: str, reason: str) -> int:
        """Give up every claim ``owner`` still holds (an interrupted run), recording ``reason``; the rows
        are due again at once instead of after a lease. Returns how many."""
        with self.session() as session:
            result = session.exec(
                update(ReleaseRecord)
                .where(ReleaseRecord.claimed_by == owner, ReleaseRecord.status == "running")
                .values(status="failed", error=reason[:2000], claim_expires_at=None, updated_at=utcnow())
            )
            session.commit()
        return result.rowcount

    def _finish_claim(self, release_id: int, owner: str, **values: Any) -> bool:
        with self.session() as session:
            result = session.exec(
                update(ReleaseRecord)
                .where(ReleaseRecord.id == release_id, ReleaseRecord.claimed_by == owner,
                       ReleaseRecord.status == "running")
                .values(claim_expires_at=None, updated_at=utcnow(), **values)
            )
            session.commit()
        return result.rowcount == 1

    # -- grants ---------------------------------------------------------------------------

    def grants(self, name: str, *, state: str | None = "active") -> list[GrantRecord]:
        record = self.get(name)
        query = select(GrantRecord).where(GrantRecord.challenge_id == record.id)
        if state:
            query = query.where(GrantRecord.state == state)
        with self.session() as session:
            return list(session.exec(query.order_by(GrantRecord.id)))

    def add_grant(self, name: str, grant: Grant) -> GrantRecord:
        """Record a grant as active (re-activating a revoked one); its applications start over."""
        return self._set_grant(name, grant, "active")

    def revoke_grant(self, name: str, grant: Grant) -> GrantRecord:
        """Record a grant as revoked; NotFoundError if it was never granted."""
        return self._set_grant(name, grant, "revoked")

    def _set_grant(self, name: str, grant: Grant, state: str) -> GrantRecord:
        record = self.get(name)
        with self.session() as session:
            row = session.exec(
                select(GrantRecord).where(GrantRecord.challenge_id == record.id, GrantRecord.key == grant.key)
            ).first()
            if row is None and state == "revoked":
                raise NotFoundError(f"challenge {name!r} has no {grant.service} grant for {grant.identity!r}")
            if row is None:
                row = _grant_record(record.id, grant)
                row.state = state
                session.add(row)
            else:  # one UPDATE: two racing changes both bump the version
                session.exec(update(GrantRecord).where(GrantRecord.id == row.id).values(
                    state=state, role=grant.role, notify=grant.notify, version=GrantRecord.version + 1,
                    revoked_at=utcnow() if state == "revoked" else None))
            session.commit()
            session.refresh(row)
        return row

    def grant_record(self, grant_id: int) -> GrantRecord:
        with self.session() as session:
            return session.exec(select(GrantRecord).where(GrantRecord.id == grant_id)).one()

    def find_grants(self, name: str, service: str) -> list[GrantRecord]:
        """Every grant of ``service`` on a challenge, whatever its state."""
        return [row for row in self.grants(name, state=None) if row.service == service]

    def applications(self, name: str) -> dict[int, list[GrantApplication]]:
        """Each grant's applications (by grant id): where it was applied, in which state, or why not."""
        record = self.get(name)
        grant_ids = select(GrantRecord.id).where(GrantRecord.challenge_id == record.id)
        found: dict[int, list[GrantApplication]] = {}
        with self.session() as session:
            for row in session.exec(select(GrantApplication).where(GrantApplication.grant_id.in_(grant_ids))
                                    .order_by(GrantApplication.destination)):
                found.setdefault(row.grant_id, []).append(row)
        return found

    def unapplied_grants(self, name: str, destination: str, service: str) -> list[GrantRecord]:
        """Grants whose current version is not yet applied (or refused) at ``destination``: active
        ones, and revoked ones that were applied (or being applied) there."""
        record = self.get(name)
        here = (GrantApplication.grant_id == GrantRecord.id) & (GrantApplication.destination == destination)
        done = exists().where(here, GrantApplication.version == GrantRecord.version)
        touched = exists().where(here)
        with self.session() as session:
            return list(session.exec(
                select(GrantRecord).where(
                    GrantRecord.challenge_id == record.id, GrantRecord.service == service, ~done,
                    (GrantRecord.state == "active") | touched,
                ).order_by(GrantRecord.id)
            ))

    def start_grant_application(self, grant_id: int, destination: str) -> None:
        """Note that ``destination`` is about to be changed for this grant (so a later revoke goes there)."""
        with self.session() as session:
            exists_ = session.exec(select(GrantApplication.id).where(
                GrantApplication.grant_id == grant_id, GrantApplication.destination == destination)).first()
            if exists_ is None:
                session.add(GrantApplication(grant_id=grant_id, destination=destination, state="applying"))
                try:
                    session.commit()
                except IntegrityError:  # noted meanwhile by another run: the same fact
                    session.rollback()

    def record_grant_applied(self, grant_id: int, destination: str, state: str, version: int,
                             error: str | None = None, access: str | None = None) -> bool:
        """Record that ``state`` of grant version ``version`` is applied (or, ``failed``, refused) at
        ``destination`` (read at ``access`` when that is elsewhere); only while ``version`` is still
        the grant's current one. False otherwise: the grant changed meanwhile and must be applied again."""
        self.start_grant_application(grant_id, destination)
        current = select(GrantRecord.version).where(GrantRecord.id == grant_id).scalar_subquery()
        with self.session() as session:
            result = session.exec(
                update(GrantApplication)
                .where(GrantApplication.grant_id == grant_id, GrantApplication.destination == destination,
                       current == version)
                .values(state=state, version=version, error=error[:2000] if error else None, access=access,
                        applied_at=utcnow())
            )
            session.commit()
        return result.rowcount == 1

    # -- access locks ---------------------------------------------------------------------

    @contextmanager
    def access_lock(self, scope: str, *, lease: timedelta = timedelta(seconds=120),
                    wait: float = 60.0) -> Iterator[None]:
        """Hold the lease on ``scope`` (a bucket policy, a folder's permissions) while the block runs.

        ConflictError when another process holds it for longer than ``wait`` seconds; a dead
        holder's lease expires. Only one holder at a time, on SQLite and PostgreSQL alike.
        """
        owner = f"ppipe-{uuid.uuid4()}"
        deadline = time.monotonic() + wait
        while not self._take_lock(scope, owner, lease):
            if time.monotonic() > deadline:
                raise ConflictError(f"{scope}: access is being changed by another ppipe run; try again later")
            time.sleep(0.05)
        try:
            yield
        finally:
            with self.session() as session:
                session.exec(delete(AccessLock).where(AccessLock.scope == scope, AccessLock.owner == owner))
                session.commit()

    def _take_lock(self, scope: str, owner: str, lease: timedelta) -> bool:
        with self.session() as session:
            now = self.database_now(session)  # a lease, like a claim: on the database's clock
            taken = session.exec(update(AccessLock).where(AccessLock.scope == scope, AccessLock.expires_at < now)
                                 .values(owner=owner, expires_at=now + lease))
            session.commit()
            if taken.rowcount == 1:
                return True
            session.add(AccessLock(scope=scope, owner=owner, expires_at=now + lease))
            try:
                session.commit()
                return True
            except IntegrityError:  # held by someone else
                session.rollback()
                return False


def _claimable(now: datetime):
    """Rows no live run holds: planned, failed, or running with an expired lease."""
    return or_(
        ReleaseRecord.status.in_(("planned", "failed")),
        (ReleaseRecord.status == "running") & (ReleaseRecord.claim_expires_at < now),
    )


def _grant_record(challenge_id: uuid.UUID, grant: Grant) -> GrantRecord:
    return GrantRecord(
        challenge_id=challenge_id, key=grant.key, service=grant.service, identity=grant.identity,
        role=grant.role, via=grant.via, notify=grant.notify,
    )
