"""The demo's simulated participants against a real server run in this process (`http.serve.serving`):
the careful one answers exactly and predicts, the sloppy one rounds its numbers and skips requests."""

from __future__ import annotations

import httpx
import polars as pl
import pytest

from ppipe.participants import service
from ppipe.participants.http.serve import serving
from ppipe.participants.simulated import SimulatedParticipant
from tests.participants.conftest import deliver, make_challenge


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_careful_beats_sloppy(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger, requests={"validation": {"rows": 10},
                                                           "prediction": {"label": "label", "metric": "accuracy"}})
    folder = tmp_path / "out" / challenge.name
    careful, sloppy = (SimulatedParticipant(name, service.add(challenge.name, name, ledger=ledger).token, folder, name)
                       for name in ("careful", "sloppy"))
    deliver(ledger, challenge.name)
    with serving(ledger) as base, httpx.Client(base_url=base, timeout=30) as http:
        for person in (careful, sloppy):
            person.step(http)
            person.step(http)  # a second poll answers nothing twice
    assert (careful.answered, sloppy.answered) == (2, 1)  # the sloppy one skips every other request
    who = service.authenticate(careful.token, ledger=ledger)
    assert {r["kind"]: r["status"] for r in service.list_requests(who, ledger=ledger)} == {
        "validation": "correct", "prediction": "pending"}
    # what the sloppy pipeline ingested is not what was delivered
    who = service.authenticate(sloppy.token, ledger=ledger)
    validation = next(r for r in service.list_requests(who, ledger=ledger) if r["kind"] == "validation")
    body = sloppy._answer(validation).decode()
    judged = service.answer(who, validation["id"], pl.read_csv(body.encode(), infer_schema=False), ledger=ledger)
    assert judged["status"] in ("partial", "incorrect") and judged["mismatches"]
    board = service.leaderboard(challenge.name, ledger=ledger)
    assert [row["participant"] for row in board.rows] == ["careful", "sloppy"]
