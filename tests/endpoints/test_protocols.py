"""The two protocols' encodings and the judging of answers' shape."""

from __future__ import annotations

import json
import math

import pytest

from ppipe.endpoints import protocols, stats
from ppipe.endpoints.protocols import BadBody, ProtocolError


def test_the_label_is_dropped_and_nan_travels_as_null():
    rows = protocols.features([{"x": math.nan, "row_id": 3, "label": 1, "y": "a"}], "label")
    assert rows == [{"row_id": 3, "x": None, "y": "a"}]
    assert json.loads(protocols.get("ppipe").encode(rows, "r")) == {"rows": rows}


def test_rows_need_row_ids():
    with pytest.raises(ValueError, match="row_id"):
        protocols.features([{"x": 1}], None)


def test_v2_tensors_per_column():
    rows = protocols.features([{"row_id": 0, "a": 1, "b": 0.5, "c": "x", "d": True},
                               {"row_id": 1, "a": 2, "b": None, "c": "y", "d": False}], None)
    document = json.loads(protocols.get("v2").encode(rows, "round-7"))
    assert document["id"] == "round-7"
    assert document["inputs"] == [
        {"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [0.5, None]},
        {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
        {"name": "d", "shape": [2], "datatype": "BOOL", "data": [True, False]},
    ]


@pytest.mark.parametrize("url", ["https://h/v2/models/m", "https://h/prefix/v2/models/m/versions/3"])
def test_v2_urls(url):
    v2 = protocols.get("v2")
    v2.check_url(url)
    assert v2.predict_url(url) == url + "/infer"
    assert v2.ready_url(url).endswith("/v2/health/ready") and v2.ready_url(url).startswith("https://h")


def test_a_v2_url_must_name_the_model():
    with pytest.raises(ProtocolError, match="/v2/models/<model>"):
        protocols.get("v2").check_url("https://h/predict")
    with pytest.raises(ProtocolError, match="one of ppipe, v2"):
        protocols.get("grpc")


@pytest.mark.parametrize("body, problem", [
    (b"not json", "not JSON"),
    (b"[]", '"predictions" list'),
    (b'{"predictions": [{"row_id": 1}]}', "predictions[0]"),
    (b'{"predictions": [{"row_id": 1, "prediction": {"a": 1}}]}', "plain values"),
])
def test_bad_ppipe_bodies(body, problem):
    with pytest.raises(BadBody, match=problem.replace("[", r"\[").replace("]", r"\]")):
        protocols.get("ppipe").decode(body, [1])


def test_wrong_rows_are_counted():
    body = json.dumps({"predictions": [{"row_id": 1, "prediction": 0}, {"row_id": 1, "prediction": 1},
                                       {"row_id": 9, "prediction": 1}]}).encode()
    answer = protocols.get("ppipe").decode(body, [1, 2])
    assert answer.predictions == {1: 0} and answer.problem == "1 missing, 1 unknown, 1 repeated row ids"


def test_v2_answers_by_position():
    body = json.dumps({"outputs": [{"name": "prediction", "shape": [2, 1], "data": [[1], [0]]}]}).encode()
    assert protocols.get("v2").decode(body, ["a", "b"]).predictions == {"a": 1, "b": 0}
    short = json.dumps({"outputs": [{"name": "p", "data": [1]}]}).encode()
    assert protocols.get("v2").decode(short, ["a", "b"]).problem == "1 predictions for 2 rows"


def test_percentiles_match_numpy():
    numpy = pytest.importorskip("numpy")
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (50, 95):
        assert stats.percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)), abs=1e-3)
    assert stats.percentile([], 50) is None


def test_a_failed_round_counts_as_failed_or_the_rounds_worst_score():
    rounds = {"r1": {"a": 0.9, "b": 0.6, "c": None}, "r2": {"a": 0.8, "b": None, "c": 0.7}, "r3": {"a": None}}
    assert stats.endpoint_scores(rounds, higher_is_better=True) == {"a": 0.85, "b": 0.65, "c": 0.65}
    assert stats.endpoint_scores(rounds, higher_is_better=True, failed=0.0) == {"a": 0.85, "b": 0.3, "c": 0.35}
    errors = {"r1": {"a": 1.0, "b": 3.0, "c": None}}
    assert stats.endpoint_scores(errors, higher_is_better=False) == {"a": 1.0, "b": 3.0, "c": 3.0}
