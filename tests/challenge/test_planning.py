"""Release planning: exact boundaries, cover, disjointness, order and times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe import SpecError
from ppipe.challenge.planning import assign, boundaries, round_half_away
from tests.support.helpers import make_challenge

T = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


def test_the_original_systems_example(tmp_path):
    releases = make_challenge(tmp_path).plan(300)
    assert [(r.name, r.start, r.stop, r.scheduled_at) for r in releases] == [
        ("release_0", 0, 90, T),
        ("release_1", 90, 210, T + timedelta(seconds=60)),
        ("release_2", 210, 300, T + timedelta(seconds=120)),
    ]


def test_rounding_is_half_away_from_zero():
    assert [round_half_away(Fraction(n, 2)) for n in (1, 3, 5, -1, -3)] == [1, 2, 3, -1, -2]
    # 0.5 of 5 rows = 2.5 -> 3 (banker's rounding would give 2)
    assert boundaries([Fraction(1, 2), Fraction(1, 2)], 5) == [0, 3, 5]


def test_exact_fractions_not_floats():
    # 0.1 * 10 accumulated in floats is 0.9999999999999999; exact arithmetic is not fooled
    assert boundaries([Fraction("0.1")] * 10, 10) == list(range(11))


def test_an_empty_release_is_an_error_naming_it(tmp_path):
    with pytest.raises(SpecError, match="releases: release_1 would have 0 rows"):
        make_challenge(tmp_path, releases=[0.5, 0.001, 0.499]).plan(100)
    with pytest.raises(SpecError, match="0 rows"):
        make_challenge(tmp_path, releases=5).plan(3)


proportions = st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=30).map(
    lambda weights: [Fraction(w, sum(weights)) for w in weights]
)


@settings(max_examples=300, deadline=None)
@given(proportions, st.integers(min_value=0, max_value=10**9))
def test_boundaries_cover_every_row_once_in_order(props, n_rows):
    cuts = boundaries(props, n_rows)
    assert cuts[0] == 0 and cuts[-1] == n_rows and len(cuts) == len(props) + 1
    assert all(a <= b for a, b in zip(cuts, cuts[1:]))
    # each cut is within half a row of the exact cumulative share
    cumulative = Fraction(0)
    for p, cut in zip(props, cuts[1:]):
        cumulative += p
        assert abs(cut - cumulative * n_rows) <= Fraction(1, 2)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=5000), st.integers(1, 86400))
def test_plans_partition_rows_and_space_times(n_releases, extra_rows, every):
    from tests.support.helpers import make_challenge as build
    from pathlib import Path

    challenge = build(Path("/tmp"), releases=n_releases, schedule={"start": "2026-12-01T09:00:00Z", "every": every})
    n_rows = n_releases + extra_rows
    releases = challenge.plan(n_rows)
    covered = [row for r in releases for row in range(r.start, r.stop)]
    assert covered == list(range(n_rows))  # contiguous, disjoint, complete, ordered
    assert all(r.rows > 0 for r in releases)
    assert [r.scheduled_at for r in releases] == [T + i * timedelta(seconds=every) for i in range(n_releases)]
    assert [r.index for r in releases] == list(range(n_releases))


def test_assignment_strategies():
    assert assign("all", 3, 2, None) == [(0, 1)] * 3
    assert assign("round_robin", 5, 2, None) == [(0,), (1,), (0,), (1,), (0,)]
    picks = assign("random", 50, 3, seed=7)
    assert picks == assign("random", 50, 3, seed=7)  # seeded: the same every time
    assert picks != assign("random", 50, 3, seed=8)
    assert all(1 <= len(p) <= 3 and len(set(p)) == len(p) for p in picks)
    assert {len(p) for p in picks} == {1, 2, 3}


def test_plan_names_destinations(tmp_path):
    challenge = make_challenge(
        tmp_path, assign="round_robin",
        destinations=[{"kind": "local", "path": str(tmp_path / "a")}, {"kind": "s3", "bucket": "bkt"}],
    )
    releases = challenge.plan(300)
    assert releases[0].destinations == (str(tmp_path / "a" / "demo"),)
    assert releases[1].destinations == ("s3://bkt/demo",)
