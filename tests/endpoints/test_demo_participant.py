"""The demo's hosted participant: its own prediction service (a real uvicorn server on loopback) speaking
the ppipe protocol, registered with PUT /v1/endpoint through a real participants' API, then health-checked."""

from __future__ import annotations

import httpx

from ppipe.endpoints import side
from ppipe.endpoints.http import install
from ppipe.ledger import Ledger
from ppipe.participants import service
from ppipe.participants.http.serve import serving
from ppipe.participants.model_service import hosting, predictions
from ppipe.participants.simulated import SimulatedParticipant
from tests.endpoints.test_participant_side import WITH_ENDPOINT
from tests.participants.conftest import deliver, make_challenge


def test_the_model_predicts_anomalies_from_vibration():
    rows = [{"row_id": 1, "vibration": 0.9, "temp": 20.0}, {"row_id": 2, "vibration": 0.1, "temp": 21.0},
            {"row_id": 3, "vibration": None, "temp": 22.0}]
    assert predictions(rows) == [{"row_id": 1, "prediction": 1}, {"row_id": 2, "prediction": 0},
                                 {"row_id": 3, "prediction": 0}]
    assert predictions([{"row_id": "a", "x": 3}]) == [{"row_id": "a", "prediction": 0}]  # no vibration: no anomaly
    assert predictions([]) == []


def test_the_service_answers_the_ppipe_protocol_and_refuses_the_rest():
    with hosting() as url, httpx.Client(timeout=10) as http:
        answer = http.post(url, json={"rows": [{"row_id": 7, "vibration": 0.8}]})
        assert answer.status_code == 200 and answer.json() == {"predictions": [{"row_id": 7, "prediction": 1}]}
        assert http.post(url, json={"no": "rows"}).status_code == 400
        assert http.get(url).status_code == 404
    try:  # stopped with the block
        httpx.post(url, json={"rows": []}, timeout=2)
        raise AssertionError("the service still answers")
    except httpx.ConnectError:
        pass


def test_the_hosted_participant_registers_its_service_and_is_health_checked(tmp_path):
    ledger = Ledger()
    challenge = make_challenge(tmp_path, ledger, requests=WITH_ENDPOINT)
    deliver(ledger, challenge.name)
    token = service.add(challenge.name, "hosted", ledger=ledger).token
    install()  # PUT /v1/endpoint on the participants' API, as the demo does
    with hosting() as url, serving(ledger) as base, httpx.Client(base_url=base, timeout=30) as http:
        hosted = SimulatedParticipant("hosted", token, tmp_path / "out" / challenge.name, "careful", endpoint=url)
        hosted.step(http)
        probe = hosted.registered["probe"]
        assert probe["outcome"] == "ok" and probe["rows_sent"] == probe["rows_answered"] == 20
        assert hosted.registered["secret"].startswith("ppwh_")
        hosted.step(http)  # registered once
        [(who, checked)] = side.health_if_due(ledger, challenge.name, force=True)
        assert (who, checked.outcome) == ("hosted", "ok")
        row = next(r for r in http.get("/v1/leaderboard", headers={"Authorization": f"Bearer {token}"}).json()["rows"])
    assert row["participant"] == "hosted" and row["uptime"] == 1.0 and row["p50_ms"] is not None
