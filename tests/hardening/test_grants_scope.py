"""Point 10: a grant reaches one challenge's files only, and only to read them.

Wildcard characters in a prefix would widen S3 resource ARNs; a nested or empty prefix in a
bucket another challenge uses would let one challenge's grants read the other's files; GCS
and Drive grants are read-only, so write/admin roles are refused. All at ``create`` (exit 2).
"""

from __future__ import annotations

import pytest

from ppipe import api
from ppipe.destinations.gcs.client import GcsBucket
from ppipe.errors import DestinationError, PpipeError, SpecError
from ppipe.destinations.gcs.spec import GcsDestination
from ppipe.challenge.specfile import parse_challenge
from tests.support.helpers import write_csv


def _spec(tmp_path, name: str, destinations: list[dict], grants: list[dict] | None = None) -> dict:
    return {
        "name": name, "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": destinations, "grants": grants or [],
    }


@pytest.mark.parametrize("prefix", ["course*", "week?/data", "a/*/b", "${aws:username}"])
def test_wildcard_characters_in_a_prefix_are_refused(tmp_path, prefix):
    with pytest.raises(SpecError, match=r"destinations\.0.*prefix.*wildcard|destinations\.0.*prefix.*not a valid prefix"):
        parse_challenge(_spec(tmp_path, "alpha", [{"kind": "s3", "bucket": "ppipe-shared", "prefix": prefix}]))


@pytest.mark.parametrize("kind", ["s3", "gcs"])
@pytest.mark.parametrize(("first", "second"), [("course", "course/week1"), ("course/week1", "course"), ("", "beta"),
                                                ("beta", "")])
def test_nested_or_empty_prefixes_in_one_bucket_are_refused_at_create(tmp_path, kind, first, second):
    write_csv(tmp_path / "data.csv", 10)
    api.create(parse_challenge(_spec(tmp_path, "alpha", [{"kind": kind, "bucket": "ppipe-shared", "prefix": first}])))
    beta = parse_challenge(_spec(tmp_path, "beta", [{"kind": kind, "bucket": "ppipe-shared", "prefix": second}]))
    with pytest.raises(PpipeError, match=r"destinations\.0.*overlaps.*challenge alpha") as info:
        api.create(beta)
    assert info.value.exit_code == 2
    assert [record.name for record in api.list_challenges()] == ["alpha"]


def test_sibling_prefixes_in_one_bucket_are_fine(tmp_path):
    write_csv(tmp_path / "data.csv", 10)
    api.create(parse_challenge(_spec(tmp_path, "alpha", [{"kind": "s3", "bucket": "ppipe-shared", "prefix": "course/a"}])))
    api.create(parse_challenge(_spec(tmp_path, "beta", [{"kind": "s3", "bucket": "ppipe-shared", "prefix": "course/ab"}])))
    assert [record.name for record in api.list_challenges()] == ["alpha", "beta"]


@pytest.mark.parametrize(("service", "destination", "role"), [
    ("gcs", {"kind": "gcs", "bucket": "ppipe-alpha"}, "roles/storage.admin"),
    ("gcs", {"kind": "gcs", "bucket": "ppipe-alpha"}, "roles/storage.objectAdmin"),
    ("drive", {"kind": "drive", "parent": "1AbCdEf"}, "writer"),
])
def test_write_roles_are_refused_at_create(tmp_path, service, destination, role):
    identity = "user:a@example.com" if service == "gcs" else "a@example.com"
    with pytest.raises(SpecError, match=rf"grants\.0\.role.*{role}.*read"):
        parse_challenge(_spec(tmp_path, "alpha", [destination], [{"service": service, "identity": identity, "role": role}]))


def test_read_roles_are_accepted(tmp_path):
    spec = _spec(tmp_path, "alpha", [{"kind": "gcs", "bucket": "ppipe-alpha"}, {"kind": "drive", "parent": "1AbCdEf"}], [
        {"service": "gcs", "identity": "user:a@example.com", "role": "roles/storage.legacyObjectReader"},
        {"service": "gcs", "identity": "user:b@example.com", "role": "roles/storage.objectViewer"},
        {"service": "drive", "identity": "c@example.com", "role": "commenter"},
    ])
    assert [grant.role for grant in parse_challenge(spec).grants] == [
        "roles/storage.legacyObjectReader", "roles/storage.objectViewer", "commenter"]


def test_the_gcs_destination_refuses_a_write_role_too(gcs_server):
    destination = GcsBucket(GcsDestination(bucket="ppipe-g-scope", endpoint_url=gcs_server, project="test"), "alpha")
    with pytest.raises(DestinationError, match="roles/storage.admin.*read"):
        destination.grant("user:a@example.com", role="roles/storage.admin")
