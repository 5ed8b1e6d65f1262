"""ppipe verify: delivered objects are there, unchanged, and add up to the source."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from ppipe.cli import app
from ppipe.destinations import open_destination
from ppipe.durable import file_sha256
from ppipe.ledger import Ledger
from ppipe.delivery.verify import verify
from tests.support.helpers import make_challenge

LATER = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def delivered(tmp_path, ledger):
    """A 300-row challenge whose three releases were delivered to a local folder (by hand here:
    the release files are written and uploaded through the real destination)."""
    (tmp_path / "out").mkdir()
    challenge = make_challenge(tmp_path)
    ledger.add_challenge(challenge, 300)
    destination = open_destination(challenge.destinations[0], challenge.name)
    destination.prepare()
    for row in ledger.due(challenge.name, LATER):
        file = tmp_path / f"{row.name}.csv"
        file.write_text("id\n" + "".join(f"{i}\n" for i in range(row.start, row.stop)))
        size, sha = file_sha256(file)
        uri = destination.upload(file, challenge.release_file_name(row.index))
        assert ledger.claim(row.id, "test")
        ledger.mark_delivered(row.id, "test", sha256=sha, bytes=size, row_count=row.rows, uri=uri)
    return challenge, destination


def test_an_intact_challenge_verifies(delivered, ledger):
    report = verify("demo", ledger)
    assert report.ok and report.checked == 3


def test_a_tampered_object_is_named(delivered, ledger):
    _, destination = delivered
    destination.path_of("release_1.csv").write_text("id\n1\n")
    report = verify("demo", ledger)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("release_1 at ")
    assert "bytes stored" in report.problems[0]


def test_same_size_different_content_is_caught(delivered, ledger):
    _, destination = delivered
    path = destination.path_of("release_2.csv")
    data = bytearray(path.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    assert any("release_2" in p and "content changed" in p for p in verify("demo", ledger).problems)


def test_a_deleted_object_is_named(delivered, ledger):
    _, destination = delivered
    destination.path_of("release_0.csv").unlink()
    problems = verify("demo", ledger).problems
    assert problems == [f"release_0 at {destination.uri}: missing ({destination.uri_of('release_0.csv')} does not exist)"]


def test_row_accounting_catches_a_wrong_count(delivered, ledger):
    row = ledger.releases("demo")[0]
    with ledger.session() as session:
        stored = session.get(type(row), row.id)
        stored.row_count = row.rows - 1
        session.add(stored)
        session.commit()
    assert any("89 rows delivered, 90 planned" in p for p in verify("demo", ledger).problems)


def test_cli_exit_codes(delivered, ledger_url):
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "demo"])
    assert ok.exit_code == 0 and "3 delivered objects verified" in ok.stdout
    _, destination = delivered
    destination.path_of("release_2.csv").unlink()
    bad = runner.invoke(app, ["verify", "demo"])
    assert bad.exit_code == 1
    assert "FAILED release_2 at" in bad.stderr and "Traceback" not in bad.output
