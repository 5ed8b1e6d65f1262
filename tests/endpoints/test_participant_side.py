"""Live endpoints on the participant side: PUT /v1/endpoint on a real `ppipe api`, rounds scored when the
labels arrive, leaderboard columns in the API and the page, the CLI, the spec key."""

from __future__ import annotations

import json

import httpx
import pytest

from ppipe.endpoints import side, store
from ppipe.participants import service
from tests.cli.test_cli import assert_user_error, ppipe
from tests.participants.conftest import REQUESTS, api, api_server, client, deliver, make_challenge  # noqa: F401

LOOPBACK_ENDPOINT = {"timeout": "1s", "rows": 20, "allow_http": True, "allow_private": True}
WITH_ENDPOINT = {**REQUESTS, "endpoint": LOOPBACK_ENDPOINT}


def test_put_endpoint_probes_at_once_and_refuses_unsafe_urls(api, services, tmp_path):  # noqa: F811
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger, requests=WITH_ENDPOINT)
    deliver(ledger, challenge.name)
    token = service.add(challenge.name, "ada", ledger=ledger).token
    with client(base, token) as http:
        answer = http.put("/v1/endpoint", json={"url": services["correct"] + "/predict"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["secret"].startswith("ppwh_") and body["probe"]["outcome"] == "ok"
        assert body["probe"]["rows_sent"] == body["probe"]["rows_answered"] == 20
        seen = httpx.get(services["correct"] + "/last").json()
        assert "label" not in seen["columns"] and "row_id" in seen["columns"]
        for url, rule in [("file:///etc/passwd", "scheme 'file'"), ("http://u:p@example.com/", "user name"),
                          ("http://169.254.169.254/latest/", "cloud metadata")]:
            refused = http.put("/v1/endpoint", json={"url": url})
            assert refused.status_code == 422 and rule in refused.json()["detail"], refused.text
        v2 = http.put("/v1/endpoint", json={"url": services["v2"] + "/v2/models/m", "protocol": "v2"})
        assert v2.status_code == 200 and v2.json()["probe"]["outcome"] == "ok"
        assert v2.json()["secret"] != body["secret"]  # a new secret each registration
        shown = http.get("/v1/endpoint").json()
        assert shown["protocol"] == "v2" and "secret" not in shown
    assert httpx.put(base + "/v1/endpoint", json={"url": services["correct"]}).status_code == 401


def test_a_challenge_without_requests_endpoint_takes_none(api, services, tmp_path):  # noqa: F811
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger)
    token = service.add(challenge.name, "bo", ledger=ledger).token
    with client(base, token) as http:
        answer = http.put("/v1/endpoint", json={"url": services["correct"] + "/predict"})
    assert answer.status_code == 409 and "requests.endpoint" in answer.json()["detail"]


def test_rounds_are_scored_when_the_labels_arrive_and_shown_on_the_leaderboard(api, services, tmp_path):  # noqa: F811
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger, requests=WITH_ENDPOINT)
    deliver(ledger, challenge.name)  # release 0, and predict_1 beside it
    tokens = {}
    for name, service_name in (("good", "correct"), ("hung", "slow"), ("odd", "wrong_schema")):
        tokens[name] = service.add(challenge.name, name, ledger=ledger).token
        side.register(ledger, challenge.name, name, services[service_name] + "/predict")
    lines = side.prediction_round(ledger, challenge.name, 1)
    assert sorted(lines) == [f"predict_1 -> good: ok", "predict_1 -> hung: timeout", "predict_1 -> odd: bad_body"]
    assert side.score_due(ledger, challenge.name) == {}  # release 1 (the labels) not delivered yet
    deliver(ledger, challenge.name, release=1)
    scores = side.score_due(ledger, challenge.name)["predict_1"]
    assert 0 <= scores["good"] <= 1 and scores["hung"] is None and scores["odd"] is None
    assert side.score_due(ledger, challenge.name) == {}  # scored once
    with client(base, tokens["good"]) as http:
        board = http.get("/v1/leaderboard").json()
    keys = [c["key"] for c in board["columns"]]
    assert {"uptime", "p50_ms", "p95_ms", "endpoint_score"} <= set(keys)
    rows = {row["participant"]: row for row in board["rows"]}
    assert rows["good"]["uptime"] == 1.0 and rows["hung"]["uptime"] == 0.0
    assert rows["good"]["endpoint_score"] == pytest.approx(scores["good"]) and rows["hung"]["endpoint_score"] == 0.0
    assert rows["good"]["p50_ms"] is not None and rows["hung"]["p50_ms"] is None
    page = httpx.get(base + "/leaderboard", params={"challenge": challenge.name}).text
    assert "endpoint score" in page and "p95 ms" in page


def test_cli_add_with_an_endpoint_and_the_endpoints_report(ledger, services, tmp_path):
    challenge = make_challenge(tmp_path, ledger, requests=WITH_ENDPOINT)
    deliver(ledger, challenge.name)
    added = ppipe("participant", "add", challenge.name, "cy", "--endpoint", services["correct"] + "/predict", "--json")
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    assert document["endpoint"]["probe"]["outcome"] == "ok" and document["endpoint"]["secret"].startswith("ppwh_")
    refused = ppipe("participant", "add", challenge.name, "dee", "--endpoint", "file:///etc/passwd")
    assert_user_error(refused, "url: scheme 'file' is not allowed")
    assert [p.name for p in service.list_participants(challenge.name, ledger=ledger)] == ["cy"]  # nothing written
    report = ppipe("endpoints", challenge.name, "--check", "--json")
    assert report.exit_code == 0, report.output
    [row] = json.loads(report.stdout)
    assert row["participant"] == "cy" and row["uptime"] == 100.0 and row["last_outcome"] == "ok"
    table = ppipe("endpoints", challenge.name)
    assert table.exit_code == 0 and "cy" in table.stdout and document["endpoint"]["secret"] not in table.stdout
    assert len(store.calls(ledger, challenge.name)) == 2  # the probe at registration and the health check


@pytest.mark.parametrize("endpoint, rule", [
    ({"timeout": "2m"}, "at most 60s"),
    ({"health_every": "1s"}, "at least 10s"),
    ({"rows": 0}, "greater than or equal to 1"),
    ({"allow_ftp": True}, "allow_ftp"),
])
def test_the_spec_key_is_validated(tmp_path, ledger, endpoint, rule):
    from ppipe.errors import SpecError

    with pytest.raises(SpecError, match=rule):
        make_challenge(tmp_path, ledger, requests={**REQUESTS, "endpoint": endpoint})


def test_an_endpoint_needs_prediction_requests(tmp_path, ledger):
    from ppipe.errors import SpecError

    with pytest.raises(SpecError, match="needs requests.prediction"):
        make_challenge(tmp_path, ledger, requests={"endpoint": {}})
