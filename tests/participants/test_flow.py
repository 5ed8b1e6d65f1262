"""The participant side in the dispatch flow (Prefect's test harness): `open requests release_k` after
delivery, a judging task, the `ppipe-NAME-leaderboard` table artifact; predictions scored in a later run."""

from __future__ import annotations

import json

import pytest

from ppipe.ledger import Ledger
from ppipe.participants import service
from ppipe.participants.delivered import read_release
from tests.orchestration.test_flow import artifacts, dispatch, task_run_names
from tests.participants.conftest import make_challenge

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_flow_opens_requests_judges_and_publishes_the_leaderboard(tmp_path):
    ledger = Ledger()
    challenge = make_challenge(tmp_path, ledger, delivery={"retries": 0, "retry_delay": "1s", "timeout": "60s"})
    alice = service.authenticate(service.add(challenge.name, "alice", ledger=ledger).token, ledger=ledger)
    service.add(challenge.name, "bob", ledger=ledger)

    first = dispatch(challenge.name)
    assert first.is_completed(), first.message
    names = task_run_names(first.state_details.flow_run_id)
    assert "open requests release_0" in names and f"judge {challenge.name}" in names
    board = artifacts(first.state_details.flow_run_id)[f"ppipe-{challenge.name}-leaderboard"]
    assert {row["participant"] for row in json.loads(board.data)} == {"alice", "bob"}
    manifest = json.loads((tmp_path / "out" / challenge.name / "manifest.json").read_text())
    assert [p["file"] for p in manifest["predictions"]] == ["predict_1.parquet"]

    prediction = next(r for r in service.list_requests(alice, ledger=ledger) if r["kind"] == "prediction")
    service.answer(alice, prediction["id"], [{"row_id": r, "prediction": "a"} for r in prediction["row_ids"]],
                   ledger=ledger)
    second = dispatch(challenge.name, release=1)
    assert second.is_completed(), second.message
    scored = service.get_request(alice, prediction["id"], ledger=ledger)
    truth = read_release(challenge, 1)
    assert scored["status"] == "scored" and scored["judgement"]["score"] == pytest.approx((truth["label"] == "a").mean())
    rows = json.loads(artifacts(second.state_details.flow_run_id)[f"ppipe-{challenge.name}-leaderboard"].data)
    assert rows[0]["participant"] == "alice" and rows[0]["mean_score"] == pytest.approx(scored["judgement"]["score"])
    # the manifest still lists the prediction batches after the run rewrote it
    manifest = json.loads((tmp_path / "out" / challenge.name / "manifest.json").read_text())
    assert [p["file"] for p in manifest["predictions"]] == ["predict_1.parquet", "predict_2.parquet"]
