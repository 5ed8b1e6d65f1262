"""Judging rules (property tests with hypothesis) and prediction metrics against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, root_mean_squared_error

from ppipe.participants.judging import check_predictions, Invalid, judge_validation, score

RTOL = ATOL = 1e-6
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def releases(draw):
    """A frame as a release delivers it: row ids plus float, int, string, bool columns with nulls and NaN."""
    n = draw(st.integers(1, 40))
    ids = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    return pl.DataFrame({
        "row_id": pl.Series(ids, dtype=pl.Int64),
        "x": pl.Series(draw(st.lists(st.one_of(finite, st.none(), st.just(math.nan)), min_size=n, max_size=n)),
                       dtype=pl.Float64),
        "k": pl.Series(draw(st.lists(st.one_of(st.integers(-2**40, 2**40), st.none()), min_size=n, max_size=n)),
                       dtype=pl.Int64),
        "s": pl.Series(draw(st.lists(st.one_of(st.text(max_size=8), st.none()), min_size=n, max_size=n)),
                       dtype=pl.String),
        "b": pl.Series(draw(st.lists(st.one_of(st.booleans(), st.none()), min_size=n, max_size=n)), dtype=pl.Boolean),
    })


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(releases(), st.randoms(use_true_random=False))
def test_a_perfect_answer_is_correct_in_any_order_and_format(expected, rnd):
    answer = expected.sample(fraction=1.0, shuffle=True, seed=rnd.randrange(2**32))
    assert judge_validation(expected, answer).status == "correct"
    as_text = answer.with_columns(pl.all().cast(pl.String))  # what a CSV answer looks like
    verdict = judge_validation(expected, as_text)
    assert verdict.status == "correct", verdict.mismatches


@settings(max_examples=150, deadline=None)
@given(releases(), st.data())
def test_noise_within_tolerance_is_correct_and_beyond_it_partial(expected, data):
    tolerance = ATOL + RTOL * expected["x"].abs()
    fraction = data.draw(st.floats(-0.9, 0.9))
    within = expected.with_columns(pl.col("x") + tolerance * fraction)
    assert judge_validation(expected, within).status == "correct"
    target = data.draw(st.integers(0, expected.height - 1))
    value = expected["x"][target]
    if value is None or math.isnan(value):
        return
    beyond = expected.with_columns(
        pl.when(pl.int_range(pl.len()) == target).then(pl.col("x") + 3 * tolerance).otherwise(pl.col("x")).alias("x"))
    verdict = judge_validation(expected, beyond)
    assert verdict.status == ("incorrect" if expected.height == 1 else "partial")
    assert verdict.matched == expected.height - 1 and verdict.mismatches[0]["column"] == "x"


def test_nan_equals_nan_null_equals_null_but_not_each_other():
    expected = pl.DataFrame({"row_id": [1, 2, 3, 4], "x": [math.nan, None, math.nan, None]})
    assert judge_validation(expected, expected).status == "correct"
    swapped = pl.DataFrame({"row_id": [1, 2, 3, 4], "x": [None, math.nan, math.nan, None]})
    verdict = judge_validation(expected, swapped)
    assert (verdict.status, verdict.matched) == ("partial", 2)
    assert {m["row_id"] for m in verdict.mismatches} == {1, 2}
    assert verdict.mismatches[1]["got"] == "NaN"  # strict JSON carries no NaN


def test_integers_and_strings_are_exact_and_unparsable_text_is_wrong():
    expected = pl.DataFrame({"row_id": [1, 2, 3], "k": [10, 20, None], "s": ["a", "b", None]})
    answer = pl.DataFrame({"row_id": ["1", "2", "3"], "k": ["10", "20.5", "oops"], "s": ["a", "B", None]})
    verdict = judge_validation(expected, answer)
    assert verdict.matched == 1
    assert {(m["row_id"], m["column"]) for m in verdict.mismatches} == {(2, "k"), (2, "s"), (3, "k")}


def test_row_ids_decide_invalid_missing_and_extra():
    expected = pl.DataFrame({"row_id": [1, 2, 3], "x": [1.0, 2.0, 3.0]})
    known = pl.Series([1, 2, 3, 4, 5])
    assert judge_validation(expected, pl.DataFrame({"x": [1.0]})).reason == "the answer has no row_id column"
    dup = pl.DataFrame({"row_id": [1, 1, 2, 3], "x": [1.0, 1.0, 2.0, 3.0]})
    assert judge_validation(expected, dup).reason == "row_id 1 appears more than once"
    unknown = pl.DataFrame({"row_id": [1, 2, 3, 99], "x": [1.0, 2.0, 3.0, 0.0]})
    assert judge_validation(expected, unknown, known_ids=known).reason == "row_id 99 is not a row that was delivered"
    extra = pl.DataFrame({"row_id": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, 4.0]})
    verdict = judge_validation(expected, extra, known_ids=known)
    assert (verdict.status, verdict.matched, verdict.extra) == ("partial", 3, 1)
    missing = pl.DataFrame({"row_id": [1], "x": [1.0]})
    verdict = judge_validation(expected, missing)
    assert (verdict.status, verdict.missing, verdict.missing_row_ids) == ("partial", 2, [2, 3])
    nothing_right = pl.DataFrame({"row_id": [1, 2, 3], "x": [0.0, 0.0, 0.0]})
    assert judge_validation(expected, nothing_right).status == "incorrect"
    assert judge_validation(expected, pl.DataFrame({"row_id": ["x"]})).reason == "row 0: row_id 'x' is not an integer"


def test_a_missing_column_makes_every_row_wrong_and_extra_columns_are_ignored():
    expected = pl.DataFrame({"row_id": [1, 2], "x": [1.0, 2.0], "y": ["a", "b"]})
    verdict = judge_validation(expected, pl.DataFrame({"row_id": [1, 2], "x": [1.0, 2.0], "mine": [0, 0]}))
    assert verdict.status == "incorrect" and verdict.mismatches[0]["problem"] == "column missing"
    assert judge_validation(expected, expected.with_columns(pl.lit(1).alias("mine"))).ignored_columns == ["mine"]


def test_at_most_twenty_mismatches_are_shown():
    expected = pl.DataFrame({"row_id": range(100), "x": [float(i) for i in range(100)]})
    verdict = judge_validation(expected, expected.with_columns(pl.col("x") + 1))
    assert verdict.status == "incorrect" and len(verdict.mismatches) == 20


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["cat", "dog", "owl", "emu"]), min_size=1, max_size=80), st.data())
def test_classification_metrics_match_scikit_learn(truth, data):
    guess = data.draw(st.lists(st.sampled_from(["cat", "dog", "owl", "yak"]), min_size=len(truth), max_size=len(truth)))
    t, g = pl.Series(truth), pl.Series(guess)
    assert score("accuracy", t, g) == pytest.approx(accuracy_score(truth, guess))
    assert score("macro_f1", t, g) == pytest.approx(f1_score(truth, guess, average="macro", zero_division=0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=80))
def test_regression_metrics_match_scikit_learn(pairs):
    truth, guess = (np.array(column) for column in zip(*pairs))
    assert score("rmse", pl.Series(truth), pl.Series(guess)) == pytest.approx(
        root_mean_squared_error(truth, guess), rel=1e-9, abs=1e-6)
    assert score("mae", pl.Series(truth), pl.Series(guess)) == pytest.approx(
        mean_absolute_error(truth, guess), rel=1e-9, abs=1e-6)


def test_integer_labels_accept_predictions_sent_as_text_or_floats():
    truth = pl.Series([0, 1, 1, 0])
    assert score("accuracy", truth, pl.Series(["0", "1", "0", "0"])) == 0.75
    assert score("accuracy", truth, pl.Series([0.0, 1.0, 1.5, None])) == 0.5


def test_predictions_are_checked_when_they_arrive():
    requested = pl.Series([1, 2, 3])
    good = check_predictions(pl.DataFrame({"row_id": [3, 1], "prediction": ["a", "b"]}), requested, numeric=False)
    assert good.columns == ["row_id", "prediction"] and good.height == 2
    with pytest.raises(Invalid, match="row_id 7 is not in this request"):
        check_predictions(pl.DataFrame({"row_id": [7], "prediction": [1]}), requested, numeric=False)
    with pytest.raises(Invalid, match="no prediction column"):
        check_predictions(pl.DataFrame({"row_id": [1]}), requested, numeric=False)
    with pytest.raises(Invalid, match=r"row_id 2: no prediction \(rmse and mae need every row\)"):
        check_predictions(pl.DataFrame({"row_id": [1, 3], "prediction": [1.0, 2.0]}), requested, numeric=True)
    with pytest.raises(Invalid, match="is not a finite number"):
        check_predictions(pl.DataFrame({"row_id": [1, 2, 3], "prediction": ["1", "x", "2"]}), requested, numeric=True)
