"""Workers on several machines: each stages the source into its own PPIPE_HOME (a per-machine
cache), and a release cut on any machine is byte-identical to the same release cut on another."""

from __future__ import annotations

import pytest

from ppipe import delivery
from tests.support.helpers import make_challenge, write_csv

OUTPUTS = [
    {"format": "csv"},  # the byte-range fast path
    {"format": "parquet", "shuffle": True, "seed": 11},
    {"format": "ndjson", "shuffle": True, "seed": 3, "row_id": True},
]


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o["format"])
def test_a_release_cut_on_two_machines_is_byte_identical(tmp_path, monkeypatch, output):
    write_csv(tmp_path / "data.csv", 500)
    challenge = make_challenge(tmp_path, output=output)
    cuts = []
    for machine in ("machine-a", "machine-b"):
        home = tmp_path / machine
        monkeypatch.setenv("PPIPE_HOME", str(home))
        staged = delivery.stage_source(challenge)
        assert (home / "staged" / challenge.name).is_dir()  # this machine's own staged copy
        release = challenge.plan(500)[1]
        cuts.append(delivery.save_release(challenge, staged, release))
    first, second = cuts
    assert first.path != second.path and first.path.read_bytes() == second.path.read_bytes()
    assert (first.sha256, first.bytes, first.rows) == (second.sha256, second.bytes, second.rows)
