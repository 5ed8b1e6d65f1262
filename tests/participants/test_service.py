"""The participant side's Python API on the ledger (SQLite and PostgreSQL): requests, attempts, deadlines,
misses, void, feed order, idempotent rounds, tokens kept only as hashes."""

from __future__ import annotations

import threading
from datetime import timedelta

import polars as pl
import pytest
from sqlmodel import select

from ppipe.errors import ConflictError, NotFoundError, SpecError
from ppipe.participants import service
from ppipe.participants.records import FeedEvent, ParticipantRecord, RequestRecord
from tests.participants.conftest import deliver, make_challenge


def requests_of(who, ledger, kind=None, status="all"):
    return [r for r in service.list_requests(who, status=status, ledger=ledger) if kind in (None, r["kind"])]


def release_rows(ledger, challenge, index, row_ids):
    from ppipe.participants.delivered import read_release

    return read_release(challenge, index).filter(pl.col("row_id").is_in(row_ids))


@pytest.fixture
def game(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger)
    people = {name: service.add(challenge.name, name, ledger=ledger) for name in ("alice", "bob")}
    deliver(ledger, challenge.name)
    who = {name: service.authenticate(added.token, ledger=ledger) for name, added in people.items()}
    return challenge, ledger, who, people


def test_each_participant_gets_an_own_sample_of_what_was_delivered(game):
    challenge, ledger, who, _ = game
    alice = requests_of(who["alice"], ledger, "validation")
    bob = requests_of(who["bob"], ledger, "validation")
    assert len(alice) == len(bob) == 1 and alice[0]["row_ids"] != bob[0]["row_ids"]
    delivered = set(release_rows(ledger, challenge, 0, list(range(300)))["row_id"].to_list())
    assert set(alice[0]["row_ids"]) <= delivered and len(alice[0]["row_ids"]) == 8
    # after release 1, samples come from both releases
    deliver(ledger, challenge.name, release=1)
    later = requests_of(who["alice"], ledger, "validation")
    assert len(later) == 2
    pooled = {r for request in later for r in request["row_ids"]}
    both = set(release_rows(ledger, challenge, 1, list(range(300)))["row_id"].to_list()) | delivered
    assert pooled <= both


def test_a_round_twice_opens_nothing_twice(game):
    challenge, ledger, who, _ = game
    before = requests_of(who["alice"], ledger)
    assert service.judge(challenge.name, ledger=ledger).line().startswith(f"{challenge.name}: 0 request(s) opened")
    assert requests_of(who["alice"], ledger) == before


def test_attempts_then_409_and_the_latest_answer_counts(game):
    challenge, ledger, who, _ = game
    request = requests_of(who["alice"], ledger, "validation")[0]
    rows = release_rows(ledger, challenge, 0, request["row_ids"])
    assert service.answer(who["alice"], request["id"], rows, ledger=ledger)["status"] == "correct"
    assert service.answer(who["alice"], request["id"], rows.head(1), ledger=ledger)["status"] == "partial"
    assert service.answer(who["alice"], request["id"], rows.head(0), ledger=ledger)["status"] == "incorrect"
    with pytest.raises(ConflictError, match="no attempts left"):
        service.answer(who["alice"], request["id"], rows, ledger=ledger)
    assert service.get_request(who["alice"], request["id"], ledger=ledger)["status"] == "incorrect"


def test_two_racing_answers_cannot_both_take_the_last_attempt(game):
    challenge, ledger, who, _ = game
    request = requests_of(who["alice"], ledger, "validation")[0]
    rows = release_rows(ledger, challenge, 0, request["row_ids"])
    outcomes = []

    def answer():
        try:
            outcomes.append(service.answer(who["alice"], request["id"], rows, ledger=ledger)["status"])
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=answer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["correct"] * 3


def test_late_answers_are_recorded_never_scored_and_misses_are_marked(game):
    challenge, ledger, who, _ = game
    alice = requests_of(who["alice"], ledger, "validation")[0]
    late = service.answer(who["alice"], alice["id"], [{"row_id": 1}], ledger=ledger,
                          now=pl.Series([alice["deadline"]]).str.to_datetime()[0] + timedelta(seconds=1))
    assert late["status"] == "late"
    with pytest.raises(ConflictError, match="closed"):
        service.answer(who["alice"], alice["id"], [{"row_id": 1}], ledger=ledger)
    after_deadline = pl.Series([alice["deadline"]]).str.to_datetime()[0] + timedelta(minutes=1)
    result = service.judge(challenge.name, ledger=ledger, now=after_deadline)
    assert result.missed >= 1
    bob = requests_of(who["bob"], ledger, "validation")[0]
    assert bob["status"] == "missed" and bob["closed"] and bob["attempts_left"] == 0
    assert requests_of(who["alice"], ledger, "validation")[0]["status"] == "late"
    row = {r["participant"]: r for r in service.leaderboard(challenge.name, ledger=ledger).rows}
    assert row["alice"]["on_time_rate"] == 0.0 and row["bob"]["validation_correct_rate"] == 0.0


def test_prediction_requests_are_void_when_the_challenge_is_cancelled(game):
    challenge, ledger, who, _ = game
    ledger.set_state(challenge.name, "cancelled")
    result = service.judge(challenge.name, ledger=ledger)
    assert result.void == 2
    prediction = requests_of(who["alice"], ledger, "prediction")[0]
    assert prediction["status"] == "void" and prediction["closed"]
    assert service.leaderboard(challenge.name, ledger=ledger).rows[0]["requests"] == 0


def test_someone_elses_request_is_not_found(game):
    _, ledger, who, _ = game
    bobs = requests_of(who["bob"], ledger)[0]
    with pytest.raises(NotFoundError):
        service.get_request(who["alice"], bobs["id"], ledger=ledger)
    with pytest.raises(NotFoundError):
        service.answer(who["alice"], bobs["id"], [{"row_id": 1}], ledger=ledger)


def test_feed_sequence_is_strictly_increasing_under_concurrent_writers(game):
    challenge, ledger, who, _ = game
    requests = [requests_of(who[name], ledger, "validation")[0] for name in ("alice", "bob")]
    errors = []

    def hammer(name, request):
        for _ in range(3):
            try:
                service.answer(who[name], request["id"], [{"row_id": request["row_ids"][0]}], ledger=ledger)
            except ConflictError:
                pass
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n, r)) for n, r in zip(("alice", "bob"), requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for name in ("alice", "bob"):
        page = service.read_feed(who[name], ledger=ledger, limit=500)
        seqs = [event["seq"] for event in page.events]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        assert sum(event["kind"] == "judgement" for event in page.events) == 3
    with ledger.session() as session:
        assert session.exec(select(FeedEvent).where(FeedEvent.kind == "judgement")).all()


def test_tokens_are_kept_only_as_hashes(game, ledger_url):
    challenge, ledger, who, people = game
    with ledger.session() as session:
        stored = session.exec(select(ParticipantRecord)).all()
    for record in stored:
        assert all(people[n].token not in str(record.model_dump()) for n in people)
        assert len(record.token_hash) == 64
    assert len(people["alice"].token) >= 43 + len("ppipe_")  # 256 random bits, url-safe base64
    assert service.authenticate(people["alice"].token[:-1] + "x", ledger=ledger) is None


def test_participant_management_errors_name_the_field(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger)
    service.add(challenge.name, "alice", ledger=ledger)
    with pytest.raises(ConflictError, match="already has a participant named 'alice'"):
        service.add(challenge.name, "alice", ledger=ledger)
    with pytest.raises(SpecError, match="NAME"):
        service.add(challenge.name, "Alice Smith", ledger=ledger)
    with pytest.raises(SpecError, match="--s3: challenge .* has no s3 destination"):
        service.add(challenge.name, "bob", s3="arn:aws:iam::123456789012:user/bob", ledger=ledger)
    with pytest.raises(SpecError, match="--email"):
        service.add(challenge.name, "carol", email="not-an-email", ledger=ledger)
    with pytest.raises(NotFoundError):
        service.rotate(challenge.name, "nobody", ledger=ledger)
    assert [p.name for p in service.list_participants(challenge.name, ledger=ledger)] == ["alice"]


def test_no_prediction_request_when_release_k_plus_1_is_already_due(tmp_path, ledger):
    """A catch-up run delivering two releases at once asks nothing whose labels are already out."""
    challenge = make_challenge(tmp_path, ledger, every="60s", ago=65, n_rows=300)
    service.add(challenge.name, "alice", ledger=ledger)
    deliver(ledger, challenge.name)
    with ledger.session() as session:
        requests = session.exec(select(RequestRecord)).all()
    assert {(r.kind, r.release_index) for r in requests} == {("validation", 1), ("prediction", 2)}
