"""The read-only view (ppipe.ledger_view) that ``list`` and ``show`` read through gives what the
ORM gives, on SQLite and PostgreSQL, and never makes or changes a ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ppipe import api
from ppipe.challenge.spec import Grant
from ppipe.errors import NotFoundError
from ppipe.ledger_view import LedgerView
from tests.support.helpers import make_challenge

T = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
ALICE = Grant(service="s3", identity="arn:aws:iam::123456789012:user/alice")


@pytest.fixture
def busy_ledger(ledger, tmp_path):
    """A ledger with a bit of everything: delivered, failed, running and planned rows, grants
    active and revoked, applied, refused and pending."""
    challenge = make_challenge(
        tmp_path, destinations=[{"kind": "local", "path": str(tmp_path / "a")}, {"kind": "s3", "bucket": "bkt"}],
        grants=[{"service": "s3", "identity": "123456789012"}])
    ledger.add_challenge(challenge, 300, source_sha256="cd" * 32)
    first, second, third = ledger.due("demo", T + timedelta(days=1))[:3]
    ledger.claim(first.id, "run-a")
    ledger.mark_delivered(first.id, "run-a", sha256="ab" * 32, bytes=10, row_count=90, uri="file:///x/release_0.csv")
    ledger.claim(second.id, "run-a")
    ledger.mark_failed(second.id, "run-a", "destination s3://bkt/demo: connection refused")
    ledger.claim(third.id, "run-b")
    s3 = challenge.destination_labels()[1]
    [standing] = ledger.unapplied_grants("demo", s3, "s3")
    ledger.record_grant_applied(standing.id, s3, "active", standing.version, access="alias-1")
    ledger.add_grant("demo", ALICE)
    [alice] = [g for g in ledger.grants("demo") if g.identity == ALICE.identity]
    ledger.record_grant_applied(alice.id, s3, "failed", alice.version, error="AccessDenied")
    ledger.revoke_grant("demo", Grant(service="s3", identity="123456789012"))
    return ledger


def test_the_view_reads_what_the_orm_reads(busy_ledger):
    with LedgerView() as view:  # PPIPE_DATABASE_URL: the busy ledger's backend
        assert [vars(row) for row in view.releases("demo")] == [row.model_dump() for row in busy_ledger.releases("demo")]
        for mine, theirs in zip(view.list_challenges(), busy_ledger.list_challenges(), strict=True):
            assert {name: getattr(theirs, name) for name in vars(mine)} == vars(mine)
    shown, shown_orm = api.show("demo"), api.show("demo", ledger=busy_ledger)
    assert [r.to_json() for r in shown[1]] == [r.to_json() for r in shown_orm[1]]
    assert {"delivered", "failed", "running", "planned"} <= {d.status for r in shown[1] for d in r.deliveries}
    grants = [g.to_json() for g in api.grant_status("demo")]
    assert grants == [g.to_json() for g in api.grant_status("demo", ledger=busy_ledger)]
    assert {(g["state"], d["state"], d["error"], d["access"]) for g in grants for d in g["destinations"]} == {
        ("revoked", "pending", None, "alias-1"), ("active", "failed", "AccessDenied", None)}
    assert api.summary("demo") == api.summary("demo", ledger=busy_ledger)


def test_looking_without_a_ledger_makes_none(ppipe_home):
    assert api.list_challenges() == []
    with pytest.raises(NotFoundError, match="no challenge named 'demo'"):
        api.show("demo")
    assert not (ppipe_home / "ledger.db").exists()
