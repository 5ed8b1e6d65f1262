"""The staged copy's file format does not show in the releases: a copy staged as Arrow IPC (now)
and one staged as Parquet (before, and with a scenario or files) give byte-identical releases,
so machines holding either cut the same bytes."""

from __future__ import annotations

import pytest

from ppipe.data import staging
from tests.data.test_fast_path import deliver
from tests.support.data_helpers import make_challenge, write_nasty_csv
from tests.support.helpers import write_csv


@pytest.mark.parametrize("fmt", ["csv", "parquet", "ndjson", "json"])
@pytest.mark.parametrize("shuffle, row_id", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("nasty", [False, True])
def test_an_ipc_copy_and_a_parquet_copy_cut_the_same_bytes(tmp_path, monkeypatch, fmt, shuffle, row_id, nasty):
    source = write_nasty_csv(tmp_path / "d.csv") if nasty else write_csv(tmp_path / "d.csv", 150_000)
    challenge = make_challenge(str(source), releases=3, output={"format": fmt, "shuffle": shuffle, "seed": 4,
                                                                 "row_id": row_id})
    staged, saved = deliver(challenge.model_copy(update={"name": "ipc"}))
    with monkeypatch.context() as patch:  # as a challenge with a scenario or files stages it
        patch.setattr(staging, "DATA_IPC", staging.DATA)
        old, before = deliver(challenge.model_copy(update={"name": "parquet"}))
    assert (staged.path.name, old.path.name) == ("data.arrow", "data.parquet") or staged.kind == "offsets"
    assert [f.path.read_bytes() for f in saved] == [f.path.read_bytes() for f in before]
