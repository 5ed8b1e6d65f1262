"""A read-only view of the ledger for the commands that only look (``list``, ``show``).

Plain SQL over the DB-API (``sqlite3``, ``psycopg``) instead of the ORM: importing SQLAlchemy,
SQLModel and the table classes costs about half a second, several times what such a command
needs in all. The methods have the names and the row attributes of :class:`ppipe.ledger.Ledger`'s
read methods, so ``ppipe.api`` reads through either. :mod:`ppipe.ledger` owns the schema and
migrates it; this view only reads (it never makes a ledger, a table or a column), and
``tests/ledger/test_view.py`` checks it against the ORM on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

from ppipe import settings
from ppipe.errors import NotFoundError, PpipeError, first_line

#: Columns stored as naive UTC datetimes (ppipe.ledger.UTCDateTime), returned aware.
TIMES = {"created_at", "updated_at", "revoked_at", "applied_at", "scheduled_at", "claim_expires_at", "started_at",
         "delivered_at"}
#: Columns holding a challenge's uuid (SQLite keeps them as 32 hex digits).
UUIDS = {"id", "challenge_id"}


@dataclass
class ChallengeRow:
    """A challenges row: ChallengeRecord's attributes (its spec parsed only when asked)."""

    id: uuid.UUID
    name: str
    spec: dict
    n_rows: int
    state: str
    created_at: datetime
    updated_at: datetime
    source_sha256: str | None = None  # absent from ledgers made before it

    def challenge(self):
        from ppipe.challenge.specfile import parse_challenge

        return parse_challenge(self.spec, file=f"ledger:{self.name}")


class LedgerView:
    """The configured ledger (``PPIPE_DATABASE_URL``, else SQLite in ``PPIPE_HOME``), read only."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or settings.database_url()
        self._connection = _connect(self.url)
        self._marker = "?" if self.url.startswith("sqlite") else "%s"

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> LedgerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Ledger's read methods ----------------------------------------------------------

    def list_challenges(self) -> list[ChallengeRow]:
        return [_challenge(row) for row in self._select("SELECT * FROM challenges ORDER BY created_at")]

    def get(self, name: str) -> ChallengeRow:
        found = self._select("SELECT * FROM challenges WHERE name = {}", name)
        if not found:
            raise NotFoundError(f"no challenge named {name!r} in the ledger (see 'ppipe list')")
        return _challenge(found[0])

    def releases(self, name: str) -> list[SimpleNamespace]:
        record = self.get(name)
        return [SimpleNamespace(**row) for row in self._select(
            'SELECT * FROM releases WHERE challenge_id = {} ORDER BY "index", id', self._uuid(record.id))]

    def grants(self, name: str, *, state: str | None = "active") -> list[SimpleNamespace]:
        record = self.get(name)
        rows = self._select("SELECT * FROM grants WHERE challenge_id = {} ORDER BY id", self._uuid(record.id))
        return [SimpleNamespace(**row) for row in rows if not state or row["state"] == state]

    def applications(self, name: str) -> dict[int, list[SimpleNamespace]]:
        record = self.get(name)
        found: dict[int, list[SimpleNamespace]] = {}
        for row in self._select("SELECT a.* FROM grant_applications a JOIN grants g ON g.id = a.grant_id "
                                "WHERE g.challenge_id = {} ORDER BY a.destination", self._uuid(record.id)):
            found.setdefault(row["grant_id"], []).append(SimpleNamespace(**row))
        return found

    # -- plumbing ----------------------------------------------------------------------------

    def _uuid(self, value: uuid.UUID) -> Any:
        return value.hex if self.url.startswith("sqlite") else value

    def _select(self, query: str, *params: Any) -> list[dict]:
        """Rows as dicts by column name (so a column an older ledger lacks is simply absent)."""
        try:
            cursor = self._connection.execute(query.format(*[self._marker] * len(params)), params)
            names = [column[0] for column in cursor.description]
            return [{name: _value(name, value) for name, value in zip(names, row)} for row in cursor.fetchall()]
        except NotFoundError:
            raise
        except Exception as exc:  # a missing table (a ledger older than the table), a lost server
            raise PpipeError(f"ledger {_redacted(self.url)}: cannot read: {first_line(exc)}") from None


def release_count(spec: dict) -> int:
    """How many releases a stored spec makes (``releases``: a count or the proportions)."""
    releases = spec["releases"]
    return releases if isinstance(releases, int) else len(releases)


def _challenge(row: dict) -> ChallengeRow:
    known = {f.name: row.get(f.name) for f in fields(ChallengeRow)}
    if isinstance(known["spec"], str):  # SQLite keeps JSON as text
        known["spec"] = json.loads(known["spec"])
    return ChallengeRow(**known)


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in TIMES:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return moment.replace(tzinfo=timezone.utc)
    if name in UUIDS and isinstance(value, str) and len(value) == 32:
        return uuid.UUID(hex=value)
    return value


def _connect(url: str):
    """A DB-API connection that cannot write. No ledger yet: NotFoundError (nothing is made)."""
    scheme = url.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        path = Path(unquote(urlsplit(url).path[1:]))
        if not path.is_file():  # the words of ppipe.ledger's own refusal
            raise NotFoundError(f"no ledger at {path} yet: create a challenge first (ppipe create FILE)")
        import sqlite3

        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    import psycopg

    plain = "postgresql" + url[len(scheme):]  # psycopg takes no SQLAlchemy driver suffix
    try:
        return psycopg.connect(plain, autocommit=True, connect_timeout=10)
    except Exception as exc:
        raise PpipeError(f"ledger {_redacted(url)}: cannot open: {first_line(exc)}") from None


def _redacted(url: str) -> str:
    """The URL as errors may show it: never its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
