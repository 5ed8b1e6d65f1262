"""Workers on several machines: each stages the source into its own PPIPE_HOME (a per-machine
cache keyed by the source's sha256), and a release cut on any machine is byte-identical to the
same release cut on another. The ledger records the source's sha256 at create: a machine whose
copy of the source differs is refused, and a copy left by a deleted challenge is never reused.

Two PPIPE_HOMEs sharing one ledger (SQLite and PostgreSQL) are the two "machines".
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from ppipe import api, delivery, settings
from ppipe.errors import SourceMismatch, is_transient
from ppipe.ledger import Ledger
from tests.support.helpers import make_challenge, write_csv

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
OUTPUTS = [
    {"format": "csv"},  # the byte-range fast path
    {"format": "parquet", "shuffle": True, "seed": 11},
    {"format": "ndjson", "shuffle": True, "seed": 3, "row_id": True},
]


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def machines(tmp_path, monkeypatch, ledger_url):
    """``on(name)``: switch to that machine (its own PPIPE_HOME) and get its view of the shared ledger."""
    opened = []

    def on(name: str) -> Ledger:
        monkeypatch.setenv("PPIPE_HOME", str(tmp_path / name))
        opened.append(Ledger(ledger_url))
        return opened[-1]

    yield on
    for ledger in opened:
        ledger.engine.dispose()


def create(tmp_path, ledger, rows: int = 300, **overrides):
    write_csv(tmp_path / "data.csv", rows)
    (tmp_path / "out").mkdir(exist_ok=True)
    challenge = make_challenge(tmp_path, **overrides)
    api.create(challenge, ledger=ledger)
    return challenge


def delivered_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "out" / "demo").glob("release_*"))


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o["format"])
def test_a_release_cut_on_two_machines_is_byte_identical(tmp_path, machines, output):
    ledger = machines("organiser")
    challenge = create(tmp_path, ledger, output=output)
    digest = ledger.get("demo").source_sha256
    assert digest == sha((tmp_path / "data.csv").read_bytes())  # recorded at create
    delivery.dispatch(machines("machine-a"), "demo", now=at(0))
    ledger_b = machines("machine-b")
    delivery.dispatch(ledger_b, "demo", now=at(1))
    # machine b cuts release 0 again from its own staged copy: the bytes machine a delivered
    staged = delivery.stage_source(challenge, digest)
    again = delivery.save_release(challenge, staged, challenge.plan(300)[0])
    row = ledger_b.releases("demo")[0]
    assert (again.sha256, again.bytes) == (row.sha256, row.bytes)
    assert again.path.read_bytes() == (tmp_path / "out" / "demo" / again.name).read_bytes()
    for machine in ("organiser", "machine-a", "machine-b"):  # each machine's cache, keyed by the digest
        assert (tmp_path / machine / "staged" / "demo" / digest[:16] / "staged.json").is_file()
    assert [r.status for r in ledger_b.releases("demo")] == ["delivered", "delivered", "planned"]


def test_another_version_of_the_source_on_a_machine_is_refused_and_nothing_is_delivered(tmp_path, machines):
    ledger = machines("organiser")
    source = write_csv(tmp_path / "throttled" / "data.csv", 300)  # a word of a transient error in its path
    create(tmp_path, ledger, source=str(source))
    recorded = ledger.get("demo").source_sha256
    delivery.dispatch(machines("machine-a"), "demo", now=at(0))
    other = source  # machine b's copy: another version
    other.write_text(other.read_text().replace(",a\n", ",A\n"))
    found = sha(other.read_bytes())
    ledger_b = machines("machine-b")
    report = delivery.dispatch(ledger_b, "demo", now=at(1))
    line = (f"source {other}: is not the version challenge demo was created from (sha256 {found[:16]} here, "
            f"{recorded[:16]} recorded at create): nothing is cut from it; give this machine the same file")
    assert [(o.release, o.status, o.error) for o in report.outcomes] == [("release_1", "failed", line)]
    assert [(r.status, r.error) for r in ledger_b.releases("demo")] == [
        ("delivered", None), ("failed", line), ("planned", None)]
    assert delivered_files(tmp_path) == ["release_0.csv"]  # nothing from machine b
    assert not (tmp_path / "machine-b" / "staged" / "demo").exists()  # nothing cut, nothing kept
    assert not is_transient(SourceMismatch("demo", str(other), found, recorded))  # never retried


def create_again(tmp_path, ledger, **overrides):
    """The organiser deletes the challenge and creates one of the same name."""
    api.delete("demo", ledger=ledger)
    return create(tmp_path, ledger, **overrides)


@pytest.mark.parametrize("same_source", [False, True], ids=["other-source", "same-source-other-seed"])
def test_a_staged_copy_left_by_a_deleted_challenge_is_not_reused(tmp_path, machines, same_source):
    output = {"format": "parquet", "shuffle": True, "seed": 1}
    ledger = machines("organiser")
    create(tmp_path, ledger, output=output)
    delivery.dispatch(machines("machine-b"), "demo", now=at(0))  # machine b stages the first one
    old = ledger.get("demo").source_sha256
    rows = 300 if same_source else 200
    output = {**output, "seed": 2} if same_source else output
    challenge = create_again(tmp_path, machines("organiser"), rows=rows, output=output)
    new = ledger.get("demo").source_sha256
    assert (new == old) is same_source
    report = delivery.dispatch(machines("machine-b"), "demo", now=at(0))
    assert [o.status for o in report.outcomes] == ["delivered"]
    staged = tmp_path / "machine-b" / "staged" / "demo"
    assert [p.name for p in staged.iterdir()] == [new[:16]]  # the stale copy is gone
    machines("organiser")  # the organiser's own cut of release 0 is what machine b delivered
    expected = delivery.save_release(challenge, delivery.stage_source(challenge, new), challenge.plan(rows)[0])
    assert (tmp_path / "out" / "demo" / "release_0.parquet").read_bytes() == expected.path.read_bytes()


def test_a_challenge_of_an_older_ledger_is_staged_as_before(tmp_path, ppipe_home, monkeypatch):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    write_csv(tmp_path / "data.csv", 300)
    challenge = make_challenge(tmp_path)
    old = Ledger(url)
    old.add_challenge(challenge, 300)  # as an older ppipe recorded it: no digest
    old.engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("ALTER TABLE challenges DROP COLUMN source_sha256")
    ledger = Ledger(url)  # brought up to date
    assert ledger.get("demo").source_sha256 is None
    report = delivery.dispatch(ledger, "demo", now=at(0))
    assert [o.status for o in report.outcomes] == ["delivered"]
    assert (settings.staging_dir("demo") / "staged.json").is_file()  # PPIPE_HOME/staged/demo/ as before
    ledger.engine.dispose()
