"""Issue 10, point 15: claims and their expiry use the database's clock, never the client's."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ppipe import api
from ppipe.ledger import Ledger
from ppipe.challenge.specfile import parse_challenge
from tests.hardening.core_helpers import spec


@pytest.fixture
def rows(tmp_path, ledger_url):
    api.create(parse_challenge(spec(tmp_path)))
    return Ledger(ledger_url).releases("chal-a")


def _database_now(ledger: Ledger) -> datetime:
    from sqlalchemy import text

    with ledger.engine.connect() as conn:
        if ledger.engine.dialect.name == "sqlite":
            value = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        return conn.execute(text("SELECT now()")).scalar_one().astimezone(timezone.utc)


FAKETIME = next((p for p in Path("/usr/lib").glob("*/faketime/libfaketime.so.1")), None)
CLAIM = (
    "import sys; from datetime import timedelta; from ppipe.ledger import Ledger; "
    "print(Ledger(sys.argv[1]).claim(int(sys.argv[2]), sys.argv[3], lease=timedelta(seconds=60)))"
)


def claim_with_clock(ledger_url: str, row_id: int, owner: str, offset: str) -> bool:
    """Claim in a separate process whose clock is off by ``offset`` (libfaketime, e.g. '-1d')."""
    env = {**os.environ, "LD_PRELOAD": str(FAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    out = subprocess.run([sys.executable, "-c", CLAIM, ledger_url, str(row_id), owner], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1] == "True"


# SQLite is embedded: its clock is the client's own (libfaketime fakes it too), so clock skew
# between clients is a server-database matter: these two run on PostgreSQL.
@pytest.mark.skipif(FAKETIME is None, reason="libfaketime is not installed (Debian package faketime)")
@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_claim_from_a_client_whose_clock_is_a_day_behind_expires_on_the_databases_clock(rows, ledger_url):
    ledger = Ledger(ledger_url)
    assert claim_with_clock(ledger_url, rows[0].id, "slow-clock", "-1d")
    row = next(r for r in ledger.releases("chal-a") if r.id == rows[0].id)
    database_now = _database_now(ledger)
    assert abs((row.claim_expires_at - database_now) - timedelta(seconds=60)) < timedelta(seconds=10), (
        row.claim_expires_at, database_now)
    # so another run cannot take it over at once, as it would if the lease ended a day ago
    assert not ledger.claim(rows[0].id, "other", lease=timedelta(seconds=60))


@pytest.mark.skipif(FAKETIME is None, reason="libfaketime is not installed (Debian package faketime)")
@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_client_whose_clock_is_ahead_cannot_take_over_a_live_claim(rows, ledger_url):
    ledger = Ledger(ledger_url)
    assert ledger.claim(rows[1].id, "live-run", lease=timedelta(seconds=60))
    assert not claim_with_clock(ledger_url, rows[1].id, "fast-clock", "+1h")


def test_renew_extends_on_the_databases_clock(rows, ledger_url):
    ledger = Ledger(ledger_url)
    assert ledger.claim(rows[2].id, "me", lease=timedelta(seconds=5))
    assert ledger.renew("me", lease=timedelta(seconds=600)) == 1
    row = next(r for r in ledger.releases("chal-a") if r.id == rows[2].id)
    assert row.claim_expires_at - _database_now(ledger) > timedelta(seconds=500)
