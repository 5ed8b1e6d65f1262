"""Each perturbation against its definition, on the example sensors (1,429 rows per release)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ppipe.scenario.labels import release_names
from ppipe.challenge.scenario import events_for
from ppipe.scenario.perturb import GAPS_BELOW, ROW, _left_out, _picked, as_float, perturb, rng_for
from tests.scenario.support import binomial_bounds, challenge, sensors

START, STOP = 4286, 5714  # release_3 of 7 over 10,000 rows


def run(frame, scenario, release, names):
    """perturb, with the lazy result computed (and its announced height checked)."""
    done = perturb(frame, scenario, release, names)
    done.frame = done.frame.collect()
    assert done.frame.height == done.height
    return done


def cut(tmp_path, events, release=3, seed=11, typed=True):
    made = challenge(tmp_path, events=events, seed=seed)
    return run(sensors(START, STOP, typed), made.scenario, release, release_names(made))


def test_missing_nulls_each_column_at_the_rate_and_nothing_else(tmp_path):
    done = cut(tmp_path, [{"at": "release_3", "missing": {"columns": ["humidity", "pressure"], "rate": 0.05}}])
    clean, frame = sensors(START, STOP), done.frame
    low, high = binomial_bounds(clean.height, 0.05)
    record = done.applied[0]
    for column in ("humidity", "pressure"):
        nulls = frame[column].is_null()
        assert low <= nulls.sum() <= high
        assert frame.filter(nulls)[ROW].to_list() == record.detail["rows_per_column"][column].tolist()
        assert frame.filter(~nulls)[column].to_list() == clean.filter(~nulls)[column].to_list()
    assert frame.drop("humidity", "pressure").equals(clean.drop("humidity", "pressure"))
    # the two columns draw independently
    assert record.detail["rows_per_column"]["humidity"].tolist() != record.detail["rows_per_column"]["pressure"].tolist()


@pytest.mark.parametrize("shift, scale", [(2.5, 1.1), (-4.0, 1.0), (0.0, 0.5)])
def test_drift_moves_the_mean_by_the_shift_and_scales_the_spread(tmp_path, shift, scale):
    done = cut(tmp_path, [{"at": 3, "drift": {"columns": ["temperature"], "shift": shift, "scale": scale}}])
    before, after = sensors(START, STOP)["temperature"], done.frame["temperature"]
    assert after.mean() == pytest.approx(before.mean() + shift, abs=1e-9)
    assert after.std() == pytest.approx(before.std() * scale, rel=1e-9)
    assert done.applied[0].rows is None  # every row


def test_drift_parses_text_columns(tmp_path):
    done = cut(tmp_path, [{"at": 3, "drift": {"columns": ["temperature"], "shift": 1.0}}], typed=False)
    before = sensors(START, STOP)["temperature"]
    assert done.frame["temperature"].dtype == pl.Float64
    assert done.frame["temperature"].mean() == pytest.approx(before.mean() + 1.0, abs=1e-9)


def test_duplicates_copy_rows_at_the_rate_each_after_its_original(tmp_path):
    done = cut(tmp_path, [{"at": "release_3", "duplicates": {"rate": 0.05}}])
    clean, frame = sensors(START, STOP), done.frame
    copies = frame.height - clean.height
    low, high = binomial_bounds(clean.height, 0.05)
    assert low <= copies <= high
    rows = frame[ROW].to_list()
    duplicated = sorted(r for r in set(rows) if rows.count(r) == 2)
    assert duplicated == done.applied[0].rows.tolist() and len(duplicated) == copies
    assert frame.unique(maintain_order=True).sort(ROW).equals(clean)  # copies are exact
    firsts = {}
    for position, row in enumerate(rows):
        firsts.setdefault(row, position)
    originals = [r for p, r in enumerate(rows) if firsts[r] == p]
    assert originals == clean[ROW].to_list()  # the originals keep their order


def test_out_of_order_moves_exactly_the_picked_rows(tmp_path):
    done = cut(tmp_path, [{"at": "release_3", "out_of_order": {"column": "timestamp", "rate": 0.1}}])
    clean, frame = sensors(START, STOP), done.frame
    moved = [int(r) for r, c in zip(frame[ROW], clean[ROW]) if r != c]
    assert sorted(moved) == done.applied[0].rows.tolist()
    low, high = binomial_bounds(clean.height, 0.1)
    assert low <= len(moved) <= high
    assert frame.sort(ROW).equals(clean)  # the same rows, only their places changed
    timestamps = frame["timestamp"].to_list()
    assert sum(a > b for a, b in zip(timestamps, timestamps[1:])) > 0  # the order by timestamp is broken


def test_schema_as_declared(tmp_path):
    done = cut(tmp_path, [{"at": 3, "schema": {"rename": {"vibration": "vib"}, "drop": ["pressure"],
                                              "add": {"firmware": "v2"}}}])
    frame, clean = done.frame, sensors(START, STOP)
    assert frame.columns == ["timestamp", "sensor_id", "temperature", "humidity", "vib", "label", "firmware", ROW]
    assert frame["firmware"].unique().to_list() == ["v2"]
    assert frame["vib"].to_list() == clean["vibration"].to_list()


def test_types_as_declared(tmp_path):
    done = cut(tmp_path, [{"at": 3, "types": {"label": "string", "humidity": "int", "temperature": "string"}}])
    schema = done.frame.schema
    assert (schema["label"], schema["temperature"]) == (pl.String, pl.String)
    assert schema["humidity"] == pl.Int64
    clean = sensors(START, STOP)
    assert done.frame["label"].cast(pl.Int64).to_list() == clean["label"].to_list()
    whole = clean["humidity"] == clean["humidity"].floor()
    assert done.frame["humidity"].is_not_null().to_list() == whole.to_list()  # 55.5 is no int: null


def test_late_labels_take_the_label_column_out(tmp_path):
    done = cut(tmp_path, [{"from": "release_1", "late_labels": {"label": "label", "lag": 2}}])
    assert "label" not in done.frame.columns
    assert (done.withheld_label, done.label_lag) == ("label", 2)


def test_events_compose_in_spec_order(tmp_path):
    rename_then_null = [{"at": 3, "schema": {"rename": {"humidity": "hum"}}},
                        {"at": 3, "missing": {"columns": ["hum"], "rate": 0.2}},
                        {"at": 3, "drift": {"columns": ["temperature"], "shift": 1.0}}]
    done = cut(tmp_path, rename_then_null)
    assert [a.kind for a in done.applied] == ["schema", "missing", "drift"]
    assert done.frame["hum"].null_count() == len(done.applied[1].rows) > 0
    # the same steps by hand, one at a time, in that order
    made = challenge(tmp_path, events=rename_then_null)
    frame = sensors(START, STOP)
    for index in range(3):
        single = made.model_copy(update={"scenario": made.scenario.model_copy(update={
            "events": [e if i == index else e.model_copy(update={"at": 0}) for i, e in enumerate(made.scenario.events)]})})
        frame = run(frame, single.scenario, 3, release_names(made)).frame
    assert frame.equals(done.frame)


def test_draws_depend_on_seed_release_and_event_only(tmp_path):
    one = [{"at": 2, "missing": {"columns": ["humidity"], "rate": 0.1}}]
    two = one + [{"at": 3, "duplicates": {"rate": 0.1}}]
    made_one, made_two = challenge(tmp_path, events=one), challenge(tmp_path, events=two)
    frame = sensors(2857, 4286)
    first = run(frame, made_one.scenario, 2, release_names(made_one))
    again = run(frame, made_two.scenario, 2, release_names(made_two))
    assert first.frame.equals(again.frame)  # an event on another release changes nothing here
    other_seed = challenge(tmp_path, events=one, seed=12)
    assert not run(frame, other_seed.scenario, 2, release_names(other_seed)).frame.equals(first.frame)


def test_rate_zero_and_one_are_exact(tmp_path):
    none = cut(tmp_path, [{"at": 3, "missing": {"columns": ["humidity"], "rate": 0}}])
    every = cut(tmp_path, [{"at": 3, "missing": {"columns": ["humidity"], "rate": 1}}])
    assert none.frame["humidity"].null_count() == 0
    assert every.frame["humidity"].null_count() == every.frame.height
    assert np.array_equal(sensors(START, STOP)["humidity"].to_numpy(), none.frame["humidity"].to_numpy())


@pytest.mark.parametrize("rate", [0.001, 0.05, GAPS_BELOW / 2, GAPS_BELOW, 0.9])
def test_picks_are_a_draw_per_row_at_the_rate_whichever_way_they_are_drawn(rate):
    n, quarter = 40_000, 10_000
    for seed in range(3):
        picked = _picked(rng_for(seed, 0, 0), n, rate)
        assert picked.dtype == np.int64 and np.all(np.diff(picked) > 0) and 0 <= picked[0] and picked[-1] < n
        low, high = binomial_bounds(n, rate)
        assert low <= len(picked) <= high
        low, high = binomial_bounds(quarter, rate)  # spread evenly: as many in each quarter
        assert all(low <= count <= high for count in np.bincount(picked // quarter, minlength=4))
    assert np.array_equal(_picked(rng_for(1, 2, 3), n, rate), _picked(rng_for(1, 2, 3), n, rate))


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_the_first_and_the_last_row_are_picked_at_the_rate_too(rate):
    draws = [_picked(rng_for(seed, 0, 0), 50, rate) for seed in range(3_000)]
    low, high = binomial_bounds(3_000, rate)
    assert low <= sum(0 in picked for picked in draws) <= high
    assert low <= sum(49 in picked for picked in draws) <= high


def test_picks_drawn_as_gaps_are_drawn_again_when_the_first_batch_falls_short():
    class OneApart:  # every gap 1: the first batch ends long before the last row
        def geometric(self, rate, size):
            return np.ones(size, dtype=np.int64)

    assert np.array_equal(_picked(OneApart(), 5_000, 0.01), np.arange(5_000))


def test_drift_after_duplicates_counts_the_copies(tmp_path):
    done = cut(tmp_path, [{"at": 3, "duplicates": {"rate": 0.3}},
                          {"at": 3, "out_of_order": {"column": "timestamp", "rate": 0.3}},
                          {"at": 3, "drift": {"columns": ["temperature"], "shift": 3.0, "scale": 2.0}}])
    plain = cut(tmp_path, [{"at": 3, "duplicates": {"rate": 0.3}},
                           {"at": 3, "out_of_order": {"column": "timestamp", "rate": 0.3}}])
    before, after = plain.frame["temperature"], done.frame["temperature"]
    assert done.frame[ROW].equals(plain.frame[ROW])
    assert after.mean() == pytest.approx(before.mean() + 3.0, abs=1e-9)
    assert after.std() == pytest.approx(before.std() * 2.0, rel=1e-9)


@pytest.mark.parametrize("reordered", [False, True])
def test_drift_is_the_same_to_the_bit_however_the_release_is_chunked(tmp_path, reordered):
    # a scan hands polars a release in pieces that vary from run to run: the mean must not depend on them
    events = [{"at": 3, "duplicates": {"rate": 0.3}}] if reordered else []
    made = challenge(tmp_path, events=events + [{"at": 3, "drift": {"columns": ["temperature"], "shift": 1.0}}])
    whole = sensors(START, STOP)
    one = run(whole, made.scenario, 3, release_names(made))
    for size in (7, 128, 1000):
        pieces = pl.concat([whole.slice(start, size) for start in range(0, whole.height, size)], rechunk=False)
        many = run(pieces, made.scenario, 3, release_names(made))
        assert many.applied[-1].detail["mean_before"] == one.applied[-1].detail["mean_before"], size
        assert many.frame.equals(one.frame)


def test_text_is_parsed_with_or_without_surrounding_spaces():
    clean = pl.Series("t", ["1.5", "-2", "", None, "1e3"])
    padded = pl.Series("t", [" 1.5", "-2 ", "", None, "1e3"])
    expected = [1.5, -2.0, None, None, 1000.0]
    assert as_float(clean).to_list() == expected and as_float(padded).to_list() == expected
    assert as_float(pl.Series("n", [1, None, 3])).to_list() == [1.0, None, 3.0]


def test_source_rows_given_by_the_cut_or_read_from_the_frame_agree(tmp_path):
    made = challenge(tmp_path, events=[{"at": 3, "missing": {"columns": ["humidity"], "rate": 0.2}}])
    read = perturb(sensors(START, STOP), made.scenario, 3, release_names(made))
    given = perturb(sensors(START, STOP), made.scenario, 3, release_names(made), np.arange(START, STOP))
    assert given.applied[0].rows.tolist() == read.applied[0].rows.tolist() != []
    assert given.frame.collect().equals(read.frame.collect())


@pytest.mark.parametrize("events, left_out", [
    ([{"from": 1, "late_labels": {"label": "label", "lag": 1}}], ["label"]),
    ([{"at": 3, "missing": {"columns": ["label"], "rate": 0.1}}, {"from": 1, "late_labels": {"label": "label", "lag": 1}}], []),
    ([{"at": 3, "schema": {"drop": ["pressure"]}}], ["pressure"]),
    ([{"at": 3, "schema": {"rename": {"pressure": "p"}}}, {"at": 3, "schema": {"drop": ["p"]}}], []),
    ([{"at": 3, "schema": {"rename": {"pressure": "p"}, "drop": ["p"]}}], []),
])
def test_a_reordered_release_reads_only_columns_it_keeps_or_names(tmp_path, events, left_out):
    made = challenge(tmp_path, events=events + [{"at": 3, "duplicates": {"rate": 0.2}}])
    applied = events_for(made.scenario, 3, release_names(made))
    assert _left_out(applied) == left_out
    done = run(sensors(START, STOP), made.scenario, 3, release_names(made))
    whole = perturb(sensors(START, STOP), made.scenario, 3, release_names(made))  # the same, lazily
    assert all(column not in done.frame.columns for column in left_out)
    assert whole.frame.collect().equals(done.frame)
