"""Live endpoints in the dispatch flow (Prefect's test harness): a round per prediction batch, scored in the
run that delivers its labels; misbehaving endpoints never stop the release; the artifact has the columns."""

from __future__ import annotations

import json

import pytest

from ppipe.endpoints import side, store
from ppipe.ledger import Ledger
from ppipe.participants import service
from tests.endpoints.test_participant_side import WITH_ENDPOINT
from tests.orchestration.test_flow import artifacts, dispatch, task_run_names
from tests.participants.conftest import make_challenge

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_flow_sends_rounds_scores_them_and_publishes_the_columns(tmp_path, services):
    ledger = Ledger()
    challenge = make_challenge(tmp_path, ledger, requests=WITH_ENDPOINT,
                               delivery={"retries": 0, "retry_delay": "1s", "timeout": "60s"})
    for name, service_name in (("good", "correct"), ("hung", "slow"), ("huge", "huge"), ("away", "redirect")):
        service.add(challenge.name, name, ledger=ledger)
        side.register(ledger, challenge.name, name, services[service_name] + "/predict")

    first = dispatch(challenge.name)
    assert first.is_completed(), first.message  # the hanging, huge and redirecting endpoints stop nothing
    names = task_run_names(first.state_details.flow_run_id)
    assert "endpoint round predict_1" in names and f"endpoints {challenge.name}" in names
    rounds = {who: call.outcome for who, call in store.round_calls(ledger, challenge.name, "predict_1")}
    assert rounds == {"good": "ok", "hung": "timeout", "huge": "too_large", "away": "redirect"}

    second = dispatch(challenge.name, release=1)
    assert second.is_completed(), second.message
    scored = {who: call.score for who, call in store.round_calls(ledger, challenge.name, "predict_1")}
    assert scored["good"] is not None and 0 <= scored["good"] <= 1
    rows = json.loads(artifacts(second.state_details.flow_run_id)[f"ppipe-{challenge.name}-leaderboard"].data)
    by_name = {row["participant"]: row for row in rows}
    assert by_name["good"]["endpoint_score"] == pytest.approx(scored["good"])
    assert by_name["hung"]["endpoint_score"] == 0.0 and by_name["hung"]["uptime"] == 0.0
    assert by_name["good"]["uptime"] == 1.0
