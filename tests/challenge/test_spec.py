"""The challenge model: the YAML contract, Python construction, and the rules it enforces."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from ppipe import Challenge, LocalDestination, S3Destination, Schedule, SpecError
from ppipe.challenge.spec import parse_duration
from ppipe.challenge.specfile import load_challenge, parse_challenge
from tests.support.helpers import challenge_data, make_challenge

ISSUE_EXAMPLE = """\
name: sensors-week
description: Sensor readings arriving over a week
source: data/sensors.csv
releases: [0.3, 0.4, 0.3]
schedule: {start: "2026-12-01T09:00:00Z", every: 1d}
destinations:
  - {kind: local, path: ./out}
  - {kind: s3, bucket: ppipe-sensors, region: eu-west-1}
  - {kind: gcs, bucket: ppipe-sensors}
  - {kind: drive, parent: 1AbCdEfGh}
assign: all
grants:
  - {service: s3, identity: "arn:aws:iam::123456789012:user/alice"}
  - {service: drive, identity: bob@example.com, role: reader}
output: {format: parquet, shuffle: true, seed: 7, name: "release_{index}"}
"""


def test_the_documented_yaml_example_loads(tmp_path):
    path = tmp_path / "deployments" / "sensors-week.yaml"
    path.parent.mkdir()
    path.write_text(ISSUE_EXAMPLE)
    challenge = load_challenge(path)
    assert challenge.name == "sensors-week"
    assert isinstance(challenge.id, uuid.UUID) and challenge.id.version == 4
    # relative paths resolve against the file's folder, not the working directory
    assert challenge.source.url == str(tmp_path / "deployments" / "data" / "sensors.csv")
    assert challenge.source.format == "csv"
    assert challenge.destinations[0].location("sensors-week") == str(tmp_path / "deployments" / "out" / "sensors-week")
    assert [d.kind for d in challenge.destinations] == ["local", "s3", "gcs", "drive"]
    assert challenge.proportions == [Fraction(3, 10), Fraction(4, 10), Fraction(3, 10)]
    assert challenge.schedule.every == timedelta(days=1)
    assert challenge.grants[0].via == "bucket-policy"
    assert challenge.output.format == "parquet" and challenge.output.seed == 7
    assert challenge.release_file_name(2) == "release_2.parquet"


def test_python_and_yaml_forms_validate_alike(tmp_path):
    from_python = Challenge(
        name="demo",
        source=str(tmp_path / "data.csv"),
        releases=[0.3, 0.4, 0.3],
        schedule=Schedule(start=datetime(2026, 12, 1, 9, tzinfo=timezone.utc), every="60s"),
        destinations=[LocalDestination(path=tmp_path / "out")],
    )
    from_yaml = make_challenge(tmp_path, id=str(from_python.id))
    assert from_python == from_yaml


def test_spec_round_trips_through_json(tmp_path):
    challenge = make_challenge(
        tmp_path, releases=[Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)],
        destinations=[{"kind": "s3", "bucket": "my-bucket", "region": "eu-west-1"}],
        grants=[{"service": "s3", "identity": "123456789012"}],
    )
    assert parse_challenge(challenge.to_spec()) == challenge


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("PT6H", 21600), ("P1D", 86400), (45, 45), (2.5, 2.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "6 parsecs", "", True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_integer_releases_are_equal_parts(tmp_path):
    assert make_challenge(tmp_path, releases=4).proportions == [Fraction(1, 4)] * 4


def test_proportions_within_tolerance_are_accepted(tmp_path):
    challenge = make_challenge(tmp_path, releases=[0.1] * 10)
    assert challenge.release_count == 10


@pytest.mark.parametrize(
    "overrides, field, rule",
    [
        ({"schedule": {"start": "2026-12-01T09:00:00", "every": "1d"}}, "schedule.start", "timezone"),
        ({"schedule": {"start": "2026-12-01T09:00:00Z", "every": "0s"}}, "schedule.every", "greater than zero"),
        ({"schedule": {"start": "2026-12-01T09:00:00Z", "every": "-5"}}, "schedule.every", "greater than zero"),
        ({"releases": [0.5, 0.4]}, "releases", "sum to 1"),
        ({"releases": [0.5, 0.5, 0]}, "releases", "greater than 0"),
        ({"releases": 0}, "releases", "at least 1"),
        ({"name": "../etc"}, "name", "slug"),
        ({"name": "a/b"}, "name", "slug"),
        ({"destinations": [{"kind": "ftp", "path": "x"}]}, "destinations.0", "unknown destination kind"),
        ({"destinations": [{"kind": "s3", "bucket": "Bad_Bucket!"}]}, "destinations.0.bucket", "bucket name"),
        ({"destinations": []}, "destinations", "at least 1"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"source": "data.xlsx"}, "source", "format"),
        ({"source": {"url": "s3://b/k.csv", "storage_options": {"secret": "x"}}}, "source.storage_options", "secret"),
        ({"grants": [{"service": "drive", "identity": "not-an-email"}]}, "grants", "e-mail"),
        ({"grants": [{"service": "gcs", "identity": "a@b.org"}]}, "grants.0.service", "no gcs destination"),
        ({"output": {"name": "fixed"}}, "output.name", "{index}"),
    ],
)
def test_invalid_specs_name_the_field_and_the_rule(tmp_path, overrides, field, rule):
    with pytest.raises(SpecError) as caught:
        parse_challenge(challenge_data(tmp_path, **overrides), file="x.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"x.yaml: {field}"), message
    assert rule in message


def test_s3_destination_names_derive_deterministically():
    spec = S3Destination()
    assert spec.location("sensors-week") == "s3://ppipe-sensors-week/sensors-week"
    assert S3Destination(bucket="mine", prefix="a/b").location("x") == "s3://mine/a/b"


def test_a_shuffle_without_seed_draws_one_and_keeps_it(tmp_path):
    challenge = make_challenge(tmp_path, output={"shuffle": True})
    assert challenge.output.seed is not None
    assert parse_challenge(challenge.to_spec()).output.seed == challenge.output.seed


def test_yaml_syntax_and_duplicate_keys_are_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken.yaml: line \d+ column \d+: YAML syntax error"):
        load_challenge(broken)
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: a\nname: b\n")
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        load_challenge(dup)
    with pytest.raises(SpecError, match="no such file"):
        load_challenge(Path(tmp_path / "missing.yaml"))
