"""The demo's simulated participants against a real server run in this process (`http.serve.serving`):
the careful one answers exactly and predicts, the sloppy one rounds its numbers and skips requests."""

from __future__ import annotations

import httpx
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
    people = [SimulatedParticipant(name, service.add(challenge.name, name, ledger=ledger).token, folder, name)
              for name in ("careful", "sloppy")]
    deliver(ledger, challenge.name)
    with serving(ledger) as base, httpx.Client(base_url=base, timeout=30) as http:
        for person in people:
            person.step(http)
            person.step(http)  # a second poll answers nothing twice
    assert [p.answered for p in people] == [2, 1]
    careful = service.authenticate(people[0].token, ledger=ledger)
    statuses = {r["kind"]: r["status"] for r in service.list_requests(careful, ledger=ledger)}
    assert statuses == {"validation": "correct", "prediction": "pending"}
    sloppy = service.authenticate(people[1].token, ledger=ledger)
    assert [r["status"] for r in service.list_requests(sloppy, ledger=ledger) if r["kind"] == "validation"] == ["partial"]
