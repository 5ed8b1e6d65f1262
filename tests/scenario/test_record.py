"""The organiser's record keeps row numbers packed and gives them back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ppipe.scenario import record


@pytest.mark.parametrize("rows", [
    [], [7], [3, 3, 3], [0, 1, 2, 130, 129, 5000], [2**40, 5, 2**40 + 70_000, -3], list(range(0, 10**6, 997)),
])
def test_rows_come_back_exactly_in_their_order(rows):
    packed = record.pack(np.array(rows, dtype=np.int64))
    assert record.unpack(json.loads(json.dumps(packed))) == rows
    assert record.pack(rows) == packed  # a list packs like the array


def test_steps_take_the_narrowest_type():
    assert record.pack([10, 137, 9])["packed"] == "i1"  # steps 127 and -128
    assert record.pack([10, 138])["packed"] == "i2" and record.pack([10, -119])["packed"] == "i2"
    assert record.pack([0, 2**31])["packed"] == "i8"


def test_the_file_is_packed_and_read_back_as_lists(ppipe_home):
    rows = np.arange(100_000, 400_000, 7)
    event = {"event": 0, "kind": "missing", "columns": ["x"], "rows": rows, "count": len(rows),
             "rows_per_column": {"x": rows[::-1]}}
    whole = {"event": 1, "kind": "drift", "columns": ["x"], "rows": "all", "count": None}
    path = record.write("packed", "release_1", {"index": 1, "release": "release_1", "events": [event, whole]})
    assert path.stat().st_size < 200_000  # 42,858 numbers as JSON text would take ~300,000 bytes
    back = record.read("packed", "release_1")["events"]
    assert back[0]["rows"] == rows.tolist() and back[0]["rows_per_column"]["x"] == rows[::-1].tolist()
    assert back[1]["rows"] == "all"
    assert record.read_all("packed")[0]["events"] == back
