"""The HTTP API through a real uvicorn server, with participants as real httpx clients reading their
releases from the local folder they were delivered to; SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from ppipe.participants import service
from tests.participants.conftest import client, deliver, make_challenge


def local_release(tmp_path, challenge, name: str) -> pl.DataFrame:
    return pl.read_parquet(tmp_path / "out" / challenge.name / name)


@pytest.fixture
def started(api, tmp_path):
    """A challenge with release 0 delivered, two participants with their clients."""
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger)
    alice = service.add(challenge.name, "alice", ledger=ledger)
    bob = service.add(challenge.name, "bob", ledger=ledger)
    deliver(ledger, challenge.name)
    with client(base, alice.token) as a, client(base, bob.token) as b:
        yield challenge, ledger, a, b


def test_me_and_feed(started):
    challenge, _, alice, _ = started
    assert alice.get("/v1/me").json() == {"participant": "alice", "challenge": challenge.name, "storage": []}
    page = alice.get("/v1/feed").json()
    kinds = [e["kind"] for e in page["events"]]
    assert kinds[0] == "release" and kinds.count("request") == 2 and page["has_more"] is False
    release = page["events"][0]
    assert release["name"] == "release_0" and release["rows"] == 90 and len(release["sha256"]) == 64
    assert release["predict"]["file"] == "predict_1.parquet"
    seqs = [e["seq"] for e in page["events"]]
    assert seqs == sorted(set(seqs))
    # cursor pagination: one event at a time gives the same events, then nothing
    after, seen = 0, []
    while True:
        step = alice.get("/v1/feed", params={"after": after, "limit": 1}).json()
        seen += [e["seq"] for e in step["events"]]
        after = step["next_after"]
        if not step["has_more"]:
            break
    assert seen == seqs
    assert alice.get("/v1/feed", params={"after": after}).json() == {"events": [], "next_after": after,
                                                                     "has_more": False}


def test_validation_answer_as_json_csv_and_parquet(started, tmp_path):
    challenge, _, alice, _ = started
    request = next(r for r in alice.get("/v1/requests").json() if r["kind"] == "validation")
    assert request["attempts_left"] == 3 and request["status"] == "pending" and len(request["row_ids"]) == 8
    rows = local_release(tmp_path, challenge, "release_0.parquet").filter(pl.col("row_id").is_in(request["row_ids"]))
    url = f"/v1/requests/{request['id']}/answer"

    wrong = rows.with_columns(pl.when(pl.col("row_id") == request["row_ids"][0]).then(pl.col("value") + 1)
                              .otherwise(pl.col("value")).alias("value"))
    judged = alice.put(url, json={"rows": wrong.to_dicts()}).json()
    assert (judged["status"], judged["matched"], judged["expected"]) == ("partial", 7, 8)
    assert judged["mismatches"] == [{"row_id": request["row_ids"][0], "column": "value",
                                     "expected": rows.filter(pl.col("row_id") == request["row_ids"][0])["value"][0],
                                     "got": wrong.filter(pl.col("row_id") == request["row_ids"][0])["value"][0]}]

    judged = alice.put(url, content=rows.write_csv(), headers={"Content-Type": "text/csv"}).json()
    assert judged["status"] == "correct" and judged["attempts_left"] == 1

    buffer = io.BytesIO()
    rows.head(4).write_parquet(buffer)
    judged = alice.put(url, content=buffer.getvalue(), headers={"Content-Type": "application/vnd.apache.parquet"})
    assert judged.json()["status"] == "partial" and judged.json()["missing"] == 4

    out = alice.put(url, json={"rows": rows.to_dicts()})
    assert out.status_code == 409 and "no attempts left" in out.json()["detail"]
    shown = alice.get(f"/v1/requests/{request['id']}").json()
    assert shown["status"] == "partial" and shown["attempts_left"] == 0 and shown["judgement"]["missing"] == 4


def test_prediction_is_pending_then_scored_when_labels_arrive(started, tmp_path):
    challenge, ledger, alice, bob = started
    request = next(r for r in alice.get("/v1/requests").json() if r["kind"] == "prediction")
    assert request["release"] == "release_1" and request["features"]
    features = local_release(tmp_path, challenge, "predict_1.parquet")
    assert "label" not in features.columns and sorted(features["row_id"].to_list()) == request["row_ids"]
    predictions = [{"row_id": r, "prediction": "a"} for r in request["row_ids"]]
    answered = alice.put(f"/v1/requests/{request['id']}/answer", json={"predictions": predictions}).json()
    assert answered["status"] == "pending"

    deliver(ledger, challenge.name, release=1)
    truth = local_release(tmp_path, challenge, "release_1.parquet")
    expected = (truth["label"] == "a").mean()
    scored = alice.get(f"/v1/requests/{request['id']}").json()
    assert scored["status"] == "scored" and scored["judgement"]["score"] == pytest.approx(expected)
    bobs = next(r for r in bob.get("/v1/requests", params={"status": "all"}).json()
                if r["kind"] == "prediction" and r["release"] == "release_1")
    assert bobs["status"] == "missed"
    board = alice.get("/v1/leaderboard").json()
    assert [row["participant"] for row in board["rows"]] == ["alice", "bob"]
    assert board["rows"][0]["mean_score"] == pytest.approx(expected)
    assert {c["key"] for c in board["columns"]} >= {"validation_correct_rate", "on_time_rate", "latest_score",
                                                   "mean_score"}


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Bearer nope"}, 401),
                                             ({"Authorization": "Basic YTpi"}, 401)])
def test_bad_tokens_are_401(api, headers, status):
    base, _ = api
    import httpx

    for path in ("/v1/me", "/v1/feed", "/v1/requests", "/v1/leaderboard"):
        response = httpx.get(base + path, headers=headers)
        assert response.status_code == status and response.headers["www-authenticate"] == "Bearer"


def test_revoked_and_rotated_tokens_stop_at_once(started, api):
    challenge, ledger, alice, _ = started
    base, _ = api
    carol = service.add(challenge.name, "carol", ledger=ledger)
    with client(base, carol.token) as c:
        assert c.get("/v1/me").status_code == 200
        new = service.rotate(challenge.name, "carol", ledger=ledger)
        assert c.get("/v1/me").status_code == 401
    with client(base, new) as c:
        assert c.get("/v1/me").status_code == 200
        service.revoke(challenge.name, "carol", ledger=ledger)
        assert c.get("/v1/me").status_code == 401


def test_errors_are_one_line_with_the_right_status(started, api):
    challenge, _, alice, bob = started
    mine = next(r for r in alice.get("/v1/requests").json() if r["kind"] == "validation")
    url = f"/v1/requests/{mine['id']}/answer"
    assert bob.get(f"/v1/requests/{mine['id']}").status_code == 404
    assert bob.put(url, json={"rows": []}).status_code == 404
    assert alice.get("/v1/requests/req_doesnotexist").status_code == 404
    assert alice.put(url, content=b"x", headers={"Content-Type": "application/xml"}).status_code == 415
    assert alice.put(url, content=b"{", headers={"Content-Type": "application/json"}).status_code == 422
    response = alice.put(url, json={"rows": [{"row_id": 1, "value": [1, 2]}]})
    assert response.status_code == 422 and response.json()["detail"] == \
        "body.rows.0.value: must be a string, number, boolean or null"
    assert alice.put(url, json={"predictions": []}).status_code == 422
    assert alice.put(url, content=b"PAR1garbage", headers={"Content-Type": "application/x-parquet"}).status_code == 422
    assert alice.put(url, content=b"\xff\xfe\x00,\n\x00", headers={"Content-Type": "text/csv"}).status_code in (200, 422)
    big = b"{" + b" " * (16 << 20) + b"}"
    assert alice.put(url, content=big, headers={"Content-Type": "application/json"}).status_code == 413
    assert alice.get("/v1/feed", params={"limit": 501}).status_code == 422
    assert alice.get("/v1/feed", params={"limit": 0}).json()["detail"].startswith("query.limit")
    assert alice.get("/v1/requests", params={"status": "closed"}).status_code == 422
    # invalid (duplicate row id) is a judgement, not an HTTP error: it uses an attempt
    judged = alice.put(url, json={"rows": [{"row_id": 1}, {"row_id": 1}]}).json()
    assert judged["status"] == "invalid" and "more than once" in judged["reason"]


def test_leaderboard_page_is_plain_html_and_sorts_without_javascript(started, api):
    challenge, *_ = started
    base, _ = api
    import httpx

    page = httpx.get(f"{base}/leaderboard", params={"challenge": challenge.name})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "<table" in page.text and "alice" in page.text
    by_name = httpx.get(f"{base}/leaderboard", params={"challenge": challenge.name, "sort": "participant",
                                                          "order": "desc"}).text
    assert by_name.index("bob") < by_name.index("alice")
    assert httpx.get(f"{base}/leaderboard", params={"challenge": "nope"}).status_code == 404


def test_openapi_lists_the_contract(api):
    base, _ = api
    import httpx

    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert {"/v1/me", "/v1/feed", "/v1/requests", "/v1/requests/{request_id}", "/v1/requests/{request_id}/answer",
            "/v1/leaderboard", "/leaderboard"} <= set(paths)
    assert json.dumps(paths["/v1/requests/{request_id}/answer"]).count("text/csv") >= 1
