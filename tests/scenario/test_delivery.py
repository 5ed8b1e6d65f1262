"""A challenge with a scenario, created and delivered for real (SQLite ledger, local folder):
late labels, the participants' manifest, the organiser's record, ``ppipe verify``."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone

import polars as pl
import pytest
from typer.testing import CliRunner

from ppipe import api
from ppipe.cli import app
from ppipe.delivery import dispatch
from ppipe.ledger import Ledger
from ppipe.scenario import labels as labels_
from ppipe.scenario.describe import report
from ppipe.delivery.verify import verify
from tests.scenario.support import SENSORS, challenge

LATER = datetime(2030, 1, 1, tzinfo=timezone.utc)
ISSUE_EVENTS = [  # the issue's example, with a type change this dataset allows
    {"at": "release_3", "drift": {"columns": ["temperature"], "shift": 2.5, "scale": 1.1}},
    {"from": "release_2", "missing": {"columns": ["humidity", "pressure"], "rate": 0.05}},
    {"at": "release_4", "duplicates": {"rate": 0.01}},
    {"at": "release_5", "schema": {"rename": {"vibration": "vib"}, "drop": ["pressure"], "add": {"firmware": "v2"}}},
    {"from": "release_1", "late_labels": {"label": "label", "lag": 1}},
    {"at": "release_2", "out_of_order": {"column": "timestamp", "rate": 0.1}},
    {"at": "release_6", "types": {"humidity": "string"}},
]


@pytest.fixture
def delivered(tmp_path):
    made = challenge(tmp_path, events=ISSUE_EVENTS)
    api.create(made)
    run = dispatch(Ledger(), made.name, now=LATER)
    assert run is not None and run.ok, run and run.failed
    return made, tmp_path / "out" / made.name


def test_late_labels_join_back_to_exactly_the_source_labels(delivered):
    made, out = delivered
    source = pl.read_csv(SENSORS).with_row_index("row_id").select(pl.col("row_id").cast(pl.Int64), "label")
    joined = []
    for k in range(made.release_count):
        table = pl.read_csv(out / f"release_{k}.csv")
        assert ("label" in table.columns) == (k == 0)
        later = labels_.labels_release(made, k)
        if k == 0:
            joined.append(table.select("row_id", "label"))
        elif later is not None:
            labels = pl.read_csv(out / labels_.labels_file_name(made, k))
            assert labels.columns == ["row_id", "label"]
            assert set(labels["row_id"]) == set(table["row_id"])  # exactly the rows of release k
            joined.append(labels)
        else:
            assert k == made.release_count - 1 and not (out / labels_.labels_file_name(made, k)).exists()
    everything = pl.concat(joined).sort("row_id")
    expected = source.filter(pl.col("row_id") < 8571)  # the last release's labels never ship (lag past the end)
    assert everything.equals(expected)


def test_the_manifest_lists_labels_files_and_does_not_reveal_the_scenario(delivered):
    made, out = delivered
    text = (out / "manifest.json").read_text()
    manifest = json.loads(text)
    release_2 = manifest["releases"][2]
    assert [entry["file"] for entry in release_2["labels"]] == ["labels_1.csv"]
    assert release_2["labels"][0]["release"] == "release_1"
    for word in ("scenario", "drift", "missing", "duplicates", "out_of_order", "late_labels", "seed", "shift", "rate"):
        assert word not in text, word
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".json") == ["manifest.json"]


def test_the_record_is_private_and_says_what_was_done(delivered, ppipe_home):
    made, out = delivered
    folder = ppipe_home / "scenario" / made.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    releases = report(made)["releases"]
    assert all(r["cut"] for r in releases)
    release_4 = releases[4]["record"]
    duplicated = next(e for e in release_4["events"] if e["kind"] == "duplicates")
    table = pl.read_csv(out / "release_4.csv")
    assert table.height == 1429 + duplicated["count"] == release_4["rows"]["delivered"]
    counts = table["row_id"].value_counts()
    assert sorted(counts.filter(pl.col("count") == 2)["row_id"].to_list()) == duplicated["rows"]
    missing = next(e for e in release_4["events"] if e["kind"] == "missing")
    assert sorted(table.filter(pl.col("humidity").is_null())["row_id"].unique().to_list()) == \
        sorted(set(missing["rows_per_column"]["humidity"]))


def test_the_schema_and_types_as_declared_reach_the_files(delivered):
    _, out = delivered
    assert pl.read_csv(out / "release_5.csv").columns == \
        ["timestamp", "sensor_id", "temperature", "humidity", "vib", "firmware", "row_id"]
    drifted, clean = pl.read_csv(out / "release_3.csv"), pl.read_csv(SENSORS).slice(4286, 1428)
    assert drifted["temperature"].mean() == pytest.approx(clean["temperature"].mean() + 2.5, abs=1e-9)


def test_verify_checks_the_labels_files(delivered):
    made, out = delivered
    report_ = verify(made.name)
    assert report_.ok and report_.checked == 7 + 5  # tables + labels_1..labels_5
    path = out / "labels_3.csv"
    path.write_bytes(path.read_bytes().replace(b",0\n", b",1\n", 1))
    problems = verify(made.name).problems
    assert problems and all("labels_3.csv" in p for p in problems)


def test_cli_scenario_and_plan(delivered, tmp_path):
    made, _ = delivered
    runner = CliRunner()
    shown = runner.invoke(app, ["scenario", made.name, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["seed"] == 11 and document["releases"][3]["planned"][0].startswith("#0 drift temperature")
    table = runner.invoke(app, ["scenario", made.name], env={"COLUMNS": "80"})
    assert table.exit_code == 0 and "#2 duplicates" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    missing = runner.invoke(app, ["scenario", "nope"])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1


def test_plan_lists_the_events_per_release(tmp_path):
    path = tmp_path / "scen.yaml"
    import yaml

    spec = challenge(tmp_path, events=ISSUE_EVENTS).to_spec()
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    events = [r["events"] for r in json.loads(result.stdout)["releases"]]
    assert events[0] == []
    assert events[5] == ["#1 missing humidity, pressure 0.05", "#3 schema vibration->vib, -pressure, +firmware",
                         "#4 late_labels label +1", "labels of release_4"]
    assert not (tmp_path / "out").exists()


def test_a_type_change_some_value_does_not_fit_is_refused_at_create(tmp_path, ppipe_home):
    made = challenge(tmp_path, events=[{"at": "release_6", "types": {"sensor_id": "int"}}])
    with pytest.raises(Exception) as caught:
        api.create(made)
    assert str(caught.value).startswith("scenario.events.0.types.sensor_id: 'sensor_id' is not int at source row 8571")
    assert not Ledger().exists(made.name)
    assert not (ppipe_home / "staged" / made.name).exists()


def test_the_example_without_a_scenario_keeps_the_byte_range_path(tmp_path):
    from ppipe.data.staging import byte_range_eligible

    plain = challenge(tmp_path, output={"row_id": False})
    assert byte_range_eligible(plain)
    assert not byte_range_eligible(challenge(tmp_path, events=[{"at": 0, "duplicates": {"rate": 0.1}}],
                                             output={"row_id": False}))
    assert os.environ["PPIPE_HOME"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cuts_with_its_own_background_thread():
    import signal

    from ppipe.scenario import cut as cut_

    cut_._in_background(lambda: None)()  # the parent's thread exists
    pid = os.fork()
    if pid == 0:  # the child: a background job must run, not wait forever on the parent's thread
        signal.alarm(20)
        os._exit(0 if cut_._in_background(lambda: 7)() == 7 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
