"""Nothing leaks: with any token (or none), no label of an unreleased release and no other participant's
request or data is reachable over the API or in the delivered files; another's request is 404, never 403."""

from __future__ import annotations

import secrets

import httpx
import pytest

from ppipe.participants import service
from tests.participants.conftest import client, deliver, make_challenge


def labelled_source(path, n_rows: int):
    """A CSV whose labels are unique, unguessable strings, so any leak of one is visible in any text."""
    salt = secrets.token_hex(6)
    labels = [f"LBL{salt}{i:05d}" for i in range(n_rows)]
    path.write_text("id,value,label\n" + "".join(f"{i},{i * 0.25},{labels[i]}\n" for i in range(n_rows)))
    return path, labels


def crawl(base: str, token: str | None, request_ids: list[str]) -> list[httpx.Response]:
    """Every route a participant can call, for every request id given (theirs and others')."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        responses = [http.get(path) for path in ("/v1/me", "/v1/requests?status=all", "/v1/leaderboard",
                                                   "/leaderboard", "/openapi.json")]
        after = 0
        while True:
            page = http.get("/v1/feed", params={"after": after, "limit": 500})
            responses.append(page)
            if page.status_code != 200 or not page.json()["has_more"]:
                break
            after = page.json()["next_after"]
        for request_id in request_ids:
            responses.append(http.get(f"/v1/requests/{request_id}"))
            responses.append(http.put(f"/v1/requests/{request_id}/answer", json={"rows": [{"row_id": 0}]}))
    return responses


def test_no_label_of_an_unreleased_release_and_nothing_of_anyone_else(api, tmp_path):
    base, ledger = api
    source, labels = labelled_source(tmp_path / "secret.csv", 300)
    challenge = make_challenge(tmp_path, ledger, source=source,
                               requests={"validation": {"rows": 50, "deadline": "1h", "attempts": 100},
                                         "prediction": {"label": "label", "metric": "accuracy"}})
    alice = service.add(challenge.name, "alice", ledger=ledger)
    bob = service.add(challenge.name, "bob", ledger=ledger)
    deliver(ledger, challenge.name)  # release_0 (rows 0..89 of the shuffled order) only
    from ppipe.participants.delivered import read_release

    released = set(read_release(challenge, 0)["label"].to_list())
    unreleased = set(labels) - released
    assert len(unreleased) == 210

    with client(base, alice.token) as a, client(base, bob.token) as b:
        alices = [r["id"] for r in a.get("/v1/requests?status=all").json()]
        bobs = [r["id"] for r in b.get("/v1/requests?status=all").json()]
        # answers that try to pry: unreleased row ids in a validation answer, labels guessed in predictions
        validation = next(r for r in a.get("/v1/requests").json() if r["kind"] == "validation")
        probe = a.put(f"/v1/requests/{validation['id']}/answer", json={"rows": [{"row_id": i} for i in range(300)]})
        assert probe.status_code == 200 and probe.json()["status"] == "invalid"
        prediction = next(r for r in a.get("/v1/requests").json() if r["kind"] == "prediction")
        guess = [{"row_id": r, "prediction": "x"} for r in prediction["row_ids"]]
        assert a.put(f"/v1/requests/{prediction['id']}/answer", json={"predictions": guess}).json()["status"] == "pending"
        assert a.get(f"/v1/requests/{prediction['id']}").json()["judgement"].get("score") is None

    texts = []
    for token in (alice.token, bob.token, None, "ppipe_" + secrets.token_urlsafe(32)):
        for response in crawl(base, token, alices + bobs + ["req_" + secrets.token_urlsafe(12)]):
            assert response.status_code != 500 and response.status_code != 403, response.text
            texts.append(response.text)
    # another participant's request looks exactly like one that does not exist
    with client(base, alice.token) as a:
        for request_id in bobs:
            response = a.get(f"/v1/requests/{request_id}")
            assert response.status_code == 404 and response.json() == {"detail": f"no request {request_id!r}"}
        feed = a.get("/v1/feed", params={"limit": 500}).json()["events"]
        assert all(e.get("id") not in bobs and e.get("request") not in bobs for e in feed)
    # and the files participants received carry no label of a release still to come
    for path in (tmp_path / "out" / challenge.name).iterdir():
        texts.append(path.read_bytes().decode("latin-1"))
    everything = "\n".join(texts)
    leaked = [label for label in unreleased if label in everything]
    assert not leaked, f"{len(leaked)} unreleased labels reachable, e.g. {leaked[:3]}"
    assert any(label in everything for label in released)  # the scan does see labels where they may be


def test_requests_of_a_revoked_participant_are_unreachable(api, tmp_path):
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger)
    carol = service.add(challenge.name, "carol", ledger=ledger)
    deliver(ledger, challenge.name)
    with client(base, carol.token) as c:
        ids = [r["id"] for r in c.get("/v1/requests").json()]
        service.revoke(challenge.name, "carol", ledger=ledger)
        assert ids and all(c.get(f"/v1/requests/{i}").status_code == 401 for i in ids)


@pytest.mark.parametrize("header", ["Bearer  x", "Bearer " + "x" * 5000, "Bearer ppipe_" + "\u00e9" * 40])
def test_hostile_authorization_headers_are_401(api, header):
    base, _ = api
    response = httpx.get(f"{base}/v1/me", headers={"Authorization": header.encode("utf-8")})
    assert response.status_code == 401
