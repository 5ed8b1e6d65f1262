"""The ledger on SQLite and PostgreSQL: records, due selection, atomic claims, grants."""

from __future__ import annotations

import time

import threading
from datetime import datetime, timedelta, timezone

import pytest

from ppipe.errors import ConfigError, ConflictError, NotFoundError
from ppipe.ledger import Ledger
from ppipe.challenge.spec import Grant
from ppipe.settings import database_url
from tests.support.helpers import make_challenge

T = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


@pytest.fixture
def challenge(tmp_path):
    return make_challenge(
        tmp_path,
        destinations=[{"kind": "local", "path": str(tmp_path / "a")}, {"kind": "s3", "bucket": "bkt"}],
        grants=[{"service": "s3", "identity": "123456789012"}],
    )


def test_add_records_one_row_per_release_and_destination(ledger, challenge):
    record = ledger.add_challenge(challenge, 300)
    assert record.state == "active" and record.n_rows == 300
    rows = ledger.releases("demo")
    assert [(r.index, r.start, r.stop) for r in rows][::2] == [(0, 0, 90), (1, 90, 210), (2, 210, 300)]
    assert {r.destination for r in rows} == set(challenge.destination_labels())
    assert all(r.status == "planned" and r.scheduled_at.tzinfo is not None for r in rows)
    assert ledger.challenge("demo") == challenge  # the spec survives the database
    assert [g.identity for g in ledger.grants("demo")] == ["123456789012"]


def test_names_are_unique(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    with pytest.raises(ConflictError, match="already exists"):
        ledger.add_challenge(challenge, 300)


def test_due_is_scheduled_not_delivered_oldest_first(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    assert ledger.due("demo", T - timedelta(seconds=1)) == []
    due = ledger.due("demo", T + timedelta(seconds=60))
    assert [r.index for r in due] == [0, 0, 1, 1]
    first = due[0]
    assert ledger.claim(first.id, "run-a")
    assert ledger.mark_delivered(first.id, "run-a", sha256="ab" * 32, bytes=10, row_count=90, uri="file:///x")
    assert first.id not in [r.id for r in ledger.due("demo", T + timedelta(days=1))]
    assert ledger.next_due("demo", T + timedelta(seconds=60)) == T + timedelta(seconds=120)


def test_a_claim_is_taken_once(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    row = ledger.due("demo", T)[0]
    assert ledger.claim(row.id, "run-a")
    assert not ledger.claim(row.id, "run-b")
    # the loser may not record anything for it
    assert not ledger.mark_delivered(row.id, "run-b", sha256="0" * 64, bytes=1, row_count=1, uri="u")
    assert row.id not in [r.id for r in ledger.due("demo", T)]


def test_an_expired_claim_is_taken_over(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    row = ledger.due("demo", T)[0]
    assert ledger.claim(row.id, "dead-run", lease=timedelta(seconds=1))
    assert not ledger.claim(row.id, "run-b")
    time.sleep(1.2)  # leases run on the database's clock: let this one run out
    assert ledger.claim(row.id, "run-b")
    assert not ledger.mark_failed(row.id, "dead-run", "late")  # the dead run lost it
    assert ledger.mark_delivered(row.id, "run-b", sha256="1" * 64, bytes=1, row_count=90, uri="u")
    assert [r.attempts for r in ledger.releases("demo") if r.id == row.id] == [2]


def test_a_failed_release_is_due_again(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    row = ledger.due("demo", T)[0]
    ledger.claim(row.id, "run-a")
    assert ledger.mark_failed(row.id, "run-a", "destination s3://bkt/demo: connection refused")
    again = [r for r in ledger.due("demo", T) if r.id == row.id][0]
    assert again.status == "failed" and "connection refused" in again.error


def test_concurrent_claims_give_each_row_to_exactly_one_run(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    rows = ledger.due("demo", T + timedelta(days=1))
    wins: dict[str, list[int]] = {f"run-{i}": [] for i in range(4)}
    barrier = threading.Barrier(len(wins))

    def race(owner: str) -> None:
        barrier.wait()
        for row in rows:
            if ledger.claim(row.id, owner):
                wins[owner].append(row.id)

    threads = [threading.Thread(target=race, args=(owner,)) for owner in wins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = sorted(row_id for ids in wins.values() for row_id in ids)
    assert claimed == sorted(row.id for row in rows)


def test_state_changes(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    assert ledger.set_state("demo", "paused", only_from=["active"]).state == "paused"
    with pytest.raises(ConflictError, match="is paused"):
        ledger.set_state("demo", "paused", only_from=["active"])
    ledger.set_state("demo", "active")
    for row in ledger.due("demo", T + timedelta(days=1)):
        ledger.claim(row.id, "r")
        ledger.mark_delivered(row.id, "r", sha256="2" * 64, bytes=1, row_count=row.rows, uri="u")
    assert ledger.finish_if_complete("demo")
    assert ledger.get("demo").state == "finished"


def test_grants_are_recorded_and_applied_once(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    s3 = challenge.destination_labels()[1]
    pending = ledger.unapplied_grants("demo", s3, "s3")
    assert [g.identity for g in pending] == ["123456789012"]
    assert ledger.record_grant_applied(pending[0].id, s3, "active", pending[0].version)
    assert ledger.unapplied_grants("demo", s3, "s3") == []
    alice = Grant(service="s3", identity="arn:aws:iam::123456789012:user/alice")
    ledger.add_grant("demo", alice)
    assert [g.identity for g in ledger.unapplied_grants("demo", s3, "s3")] == [alice.identity]
    ledger.revoke_grant("demo", Grant(service="s3", identity="123456789012"))
    revoked = ledger.unapplied_grants("demo", s3, "s3")
    assert {(g.identity, g.state) for g in revoked} == {(alice.identity, "active"), ("123456789012", "revoked")}
    # an application of a version that is no longer current is not recorded: it must be applied again
    assert not ledger.record_grant_applied(pending[0].id, s3, "active", pending[0].version)
    assert ("123456789012", "revoked") in {(g.identity, g.state) for g in ledger.unapplied_grants("demo", s3, "s3")}
    with pytest.raises(NotFoundError):
        ledger.revoke_grant("demo", Grant(service="s3", identity="210987654321"))


def test_delete_removes_everything(ledger, challenge):
    ledger.add_challenge(challenge, 300)
    ledger.delete_challenge("demo")
    assert not ledger.exists("demo") and ledger.list_challenges() == []
    with pytest.raises(NotFoundError, match="ppipe list"):
        ledger.releases("demo")
    ledger.add_challenge(challenge, 300)  # the name is free again
    assert len(ledger.releases("demo")) == 6


def test_unknown_database_scheme_is_an_error(monkeypatch):
    monkeypatch.setenv("PPIPE_DATABASE_URL", "mongodb://localhost/x")
    with pytest.raises(ConfigError, match="PPIPE_DATABASE_URL: unknown scheme 'mongodb'"):
        database_url()
    monkeypatch.setenv("PPIPE_DATABASE_URL", "sqlite://")
    with pytest.raises(ConfigError, match="in-memory"):
        Ledger()


def test_default_ledger_is_sqlite_in_ppipe_home(ppipe_home):
    assert database_url() == f"sqlite:///{ppipe_home.resolve() / 'ledger.db'}"
    Ledger()
    assert (ppipe_home / "ledger.db").exists()


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("PPIPE_DATABASE_URL", "postgresql://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("PPIPE_DATABASE_URL", "postgres://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"
