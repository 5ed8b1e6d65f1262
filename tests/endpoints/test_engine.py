"""Registration, health checks, prediction rounds and scores, recorded in the ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ppipe.endpoints import engine, signing, store
from ppipe.challenge.endpoints import EndpointSettings
from ppipe.endpoints.guard import RefusedURL
from tests.endpoints.conftest import sample_rows
from tests.support.helpers import make_challenge

SPEC = EndpointSettings(timeout="1s", allow_http=True, allow_private=True)


@pytest.fixture
def challenge(ledger, tmp_path):
    ledger.add_challenge(make_challenge(tmp_path), 300)
    return "demo"


def accuracy(truth, predicted):
    return sum(t == p for t, p in zip(truth, predicted)) / len(truth)


def test_register_probes_at_once_and_shows_the_secret_only_then(ledger, challenge, services, trusting_context):
    done = engine.register(ledger, challenge, "ada", services["tls"] + "/predict", "ppipe", SPEC,
                           rows=sample_rows(), label="label", ssl_context=trusting_context)
    assert done.probe.outcome == "ok" and done.probe.tls_ms is not None
    assert done.secret == signing.endpoint_secret(str(done.endpoint.id), 1)
    assert done.to_json()["probe"]["outcome"] == "ok"
    [(who, call)] = store.calls(ledger, challenge)
    assert who == "ada" and call.kind == "register" and call.outcome == "ok" and call.predictions is None
    again = engine.register(ledger, challenge, "ada", services["correct"] + "/predict", "ppipe", SPEC, rows=sample_rows())
    assert again.secret != done.secret and again.endpoint.secret_version == 2  # a new secret each registration
    assert [e.url for e in store.active(ledger, challenge)] == [services["correct"] + "/predict"]
    _assert_no_secret_in_ledger(ledger, [done.secret, again.secret])


def _assert_no_secret_in_ledger(ledger, secrets):
    with ledger.engine.connect() as connection:
        for table in ("endpoints", "endpoint_calls"):
            dump = repr(connection.execute(text(f"SELECT * FROM {table}")).fetchall())
            assert all(secret not in dump for secret in secrets)


@pytest.mark.parametrize("url, protocol, rule", [
    ("file:///etc/passwd", "ppipe", "scheme 'file' is not allowed"),
    ("http://user:pw@127.0.0.1:9/predict", "ppipe", "user name or password"),
    ("http://169.254.169.254/latest/meta-data/", "ppipe", "cloud metadata"),
    ("http://127.0.0.1:9/predict", "v2", "/v2/models/<model>"),
    ("https://127.0.0.1:9/predict", "ppipe", "loopback"),
])
def test_a_refused_url_is_a_clear_error_and_nothing_is_written(ledger, challenge, url, protocol, rule):
    spec = SPEC if "loopback" not in rule else EndpointSettings()
    with pytest.raises(RefusedURL) as caught:
        engine.register(ledger, challenge, "bob", url, protocol, spec)
    assert rule in str(caught.value) and str(caught.value).startswith("url: ")
    assert store.active(ledger, challenge) == [] and store.calls(ledger, challenge) == []


def register_all(ledger, challenge, services, names):
    for name in names:
        url = services[name] + ("/v2/models/m" if name == "v2" else "/predict")
        engine.register(ledger, challenge, name, url, "v2" if name == "v2" else "ppipe", SPEC, rows=sample_rows())


def test_rounds_are_recorded_scored_and_summarised(ledger, challenge, services):
    register_all(ledger, challenge, services, ["correct", "v2", "wrong_rows", "slow", "flaky"])
    rows = sample_rows()
    truth = {row["row_id"]: row["label"] for row in rows}
    for _ in range(2):
        health = dict(engine.health_check(ledger, challenge, rows, SPEC, label="label"))
        assert health["correct"].outcome == "ok" and health["slow"].outcome == "timeout"
    answered = dict(engine.prediction_round(ledger, challenge, "predict_1", rows, SPEC, label="label"))
    assert answered["wrong_rows"].outcome == "wrong_rows" and answered["v2"].outcome == "ok"
    scores = engine.score_round(ledger, challenge, "predict_1", truth, accuracy)
    assert scores["correct"] == 1.0 and scores["v2"] == 1.0
    assert scores["wrong_rows"] is None and scores["slow"] is None  # no row it was asked about; no answer
    board = engine.board_columns(ledger, challenge)
    assert board["correct"]["uptime"] == 100.0 and board["slow"]["uptime"] == 0.0
    assert board["flaky"]["uptime"] in (33.33, 66.67)  # 3 calls after registering, alternating 200 and 500
    assert board["slow"]["p50_ms"] is None and board["correct"]["p50_ms"] <= board["correct"]["p95_ms"]
    assert board["slow"]["endpoint_score"] == 0.0  # a failed round counts as the round's worst score
    assert board["correct"]["endpoint_score"] == 1.0
    with ledger.session() as session:
        from sqlmodel import select

        from ppipe.endpoints.records import EndpointCall

        kept = session.exec(select(EndpointCall).where(EndpointCall.kind == "round")).all()
    assert {len(c.predictions or []) for c in kept} == {0, 10}


def test_removed_endpoints_are_not_called(ledger, challenge, services):
    register_all(ledger, challenge, services, ["correct"])
    store.remove(ledger, challenge, "correct")
    assert engine.health_check(ledger, challenge, sample_rows(), SPEC) == []
