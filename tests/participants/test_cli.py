"""`ppipe participant add|list|revoke|rotate` and `ppipe judge`; the spec's requests: and leaderboard: keys."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from ppipe.cli import app
from ppipe.errors import SpecError
from ppipe.participants import service
from ppipe.challenge.specfile import parse_challenge
from tests.support.helpers import challenge_data
from tests.participants.conftest import deliver, make_challenge
from tests.cli.test_cli import assert_user_error, ppipe


def test_add_list_rotate_revoke(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger)
    added = ppipe("participant", "add", challenge.name, "alice", "--email", "alice@example.com", "--json")
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    assert document["participant"] == "alice" and service.authenticate(document["token"], ledger=ledger)
    plain = ppipe("participant", "add", challenge.name, "bob")
    assert plain.exit_code == 0 and "shown once" in plain.stdout
    listed = json.loads(ppipe("participant", "list", challenge.name, "--json").stdout)
    assert [(p["participant"], p["state"], p["email"]) for p in listed] == [
        ("alice", "active", "alice@example.com"), ("bob", "active", None)]
    assert document["token"] not in ppipe("participant", "list", challenge.name).stdout

    rotated = json.loads(ppipe("participant", "rotate", challenge.name, "alice", "--json").stdout)["token"]
    assert service.authenticate(document["token"], ledger=ledger) is None
    assert service.authenticate(rotated, ledger=ledger).participant == "alice"
    assert ppipe("participant", "revoke", challenge.name, "alice").exit_code == 0
    assert service.authenticate(rotated, ledger=ledger) is None
    assert_user_error(ppipe("participant", "rotate", challenge.name, "alice"), "revoked")


def test_bad_input_is_one_line_and_exit_2(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger)
    assert_user_error(ppipe("participant", "add", "nope", "alice"), "no challenge named 'nope'")
    assert_user_error(ppipe("participant", "add", challenge.name, "Alice!"), "NAME")
    assert_user_error(ppipe("participant", "add", challenge.name, "alice", "--s3", "arn:aws:iam::1:user/x"), "--s3")
    assert_user_error(ppipe("participant", "add", challenge.name, "alice", "--gcs", "user:someone@example.com"),
                      "--gcs", "no gcs destination")
    assert_user_error(ppipe("participant", "revoke", challenge.name, "ghost"), "no participant named 'ghost'")
    assert service.list_participants(challenge.name, ledger=ledger) == []  # nothing half-written


def test_judge_prints_the_round_and_a_leaderboard_within_80_columns(tmp_path, ledger):
    challenge = make_challenge(tmp_path, ledger)
    service.add(challenge.name, "alice", ledger=ledger)
    deliver(ledger, challenge.name)
    result = ppipe("judge", challenge.name)
    assert result.exit_code == 0, result.output
    assert f"{challenge.name}: 0 request(s) opened" in result.stdout and "alice" in result.stdout
    narrow = CliRunner().invoke(app, ["judge", challenge.name], env={"COLUMNS": "80"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    document = json.loads(ppipe("judge", challenge.name, "--json").stdout)
    assert document["leaderboard"]["rows"][0]["participant"] == "alice"


def test_spec_keys_validate_and_round_trip(tmp_path):
    data = challenge_data(tmp_path, output={"row_id": True},
                          requests={"validation": {"rows": 20, "deadline": "1h", "attempts": 3,
                                                   "tolerance": {"rtol": 1e-6, "atol": 1e-6}},
                                    "prediction": {"label": "label", "metric": "macro_f1"}},
                          leaderboard={"public": False})
    challenge = parse_challenge(data)
    assert challenge.requests.validation.deadline.total_seconds() == 3600
    assert parse_challenge(json.loads(json.dumps(challenge.to_spec()))).requests == challenge.requests
    assert challenge.to_spec()["requests"]["validation"]["deadline"] == "1h"


@pytest.mark.parametrize("change, message", [
    ({"output": {"row_id": False}}, "output.row_id: requests.validation needs row ids"),
    ({"requests": {"validation": {"rows": 0}}}, "requests.validation.rows"),
    ({"requests": {"validation": {"deadline": "-1h"}}}, "requests.validation.deadline"),
    ({"requests": {"prediction": {"label": "label", "metric": "auc"}}}, "requests.prediction.metric"),
    ({"requests": {"prediction": {"metric": "rmse"}}}, "requests.prediction.label: is required"),
    ({"requests": {"validation": {"tolerance": {"rtol": -1}}}}, "requests.validation.tolerance.rtol"),
    ({"requests": {"validaton": {}}}, "requests.validaton: unknown field"),
    ({"leaderboard": {"public": "maybe"}}, "leaderboard.public"),
])
def test_spec_errors_name_the_field(tmp_path, change, message):
    data = challenge_data(tmp_path, output={"row_id": True}, requests={"validation": {}})
    data.update(change)
    with pytest.raises(SpecError) as caught:
        parse_challenge(yaml.safe_load(yaml.safe_dump(data)))
    assert message in str(caught.value)


def test_create_refuses_a_prediction_label_the_source_lacks(tmp_path, ledger):
    with pytest.raises(SpecError, match="requests.prediction.label: the source has no column 'target'"):
        make_challenge(tmp_path, ledger, requests={"prediction": {"label": "target"}})
    assert ledger.list_challenges() == []
