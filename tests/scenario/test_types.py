"""Type changes parse text batch by batch: a batch where every value parses as it is skips the
strip, one with a padded value strips; the numbers are the same either way."""

from __future__ import annotations

import polars as pl
import pytest

from ppipe.scenario.perturb import cast

CLEAN = ["1", "-2", "", None, "30"]
PADDED = [" 1", "-2 ", "", None, "\t30"]


@pytest.mark.parametrize("type_name, expected", [
    ("int", [1, -2, None, None, 30]),
    ("float", [1.0, -2.0, None, None, 30.0]),
])
def test_text_is_parsed_with_or_without_surrounding_spaces(type_name, expected):
    for values in (CLEAN, PADDED):
        frame = pl.DataFrame({"t": values})
        assert frame.select(cast(pl.col("t"), pl.String, type_name)).to_series().to_list() == expected


@pytest.mark.parametrize("type_name, expected", [
    ("int", [1, -2, None, None, 30]),
    ("float", [1.0, -2.0, None, None, 30.0]),
])
def test_clean_and_padded_batches_of_one_stream_give_the_same_numbers(type_name, expected):
    pieces = pl.concat([pl.DataFrame({"t": CLEAN}), pl.DataFrame({"t": PADDED})] * 3, rechunk=False)
    streamed = pieces.lazy().select(cast(pl.col("t"), pl.String, type_name)).collect(engine="streaming")
    assert streamed.to_series().to_list() == expected * 6
