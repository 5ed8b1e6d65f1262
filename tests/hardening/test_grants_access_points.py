"""Point 5: bucket-policy grants scale past S3's 20 KB bucket-policy limit through S3 Access Points.

Against the moto server, which stores access points and their policies (it does not evaluate
them): the documents ppipe writes are checked as stored. The bucket policy holds principals
while it has room, then delegates the challenge's reads to access points of the organiser's
account (``s3:DataAccessPointAccount``), each listing its principals in a policy of its own.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

from ppipe import api
from ppipe.challenge.spec import Grant
from ppipe.challenge.specfile import parse_challenge
from ppipe.delivery import access
from ppipe.destinations.s3.access_points import listed_principals, policy_bytes
from ppipe.destinations.s3.client import S3Bucket
from ppipe.ledger import Ledger
from tests.hardening.conftest import ACCOUNT, REGION, all_at_once, bucket_policy, fresh_bucket, s3_spec
from tests.support.helpers import write_csv

S3_POLICY_LIMIT = 20 * 1024


def account(i: int) -> str:
    return f"{310000000000 + i}"


def root(i: int) -> str:
    return f"arn:aws:iam::{account(i)}:root"


@pytest.fixture
def place(s3_server, tmp_path):
    """A challenge ``alpha`` on a fresh bucket of the moto server; its destination and S3 clients."""
    bucket = fresh_bucket()
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    write_csv(tmp_path / "data.csv", 10)
    challenge = parse_challenge({
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [s3_spec(s3_server, bucket)],
    })
    api.create(challenge)
    control = boto3.client("s3control", endpoint_url=s3_server, region_name=REGION, config=Config(inject_host_prefix=False))
    control.meta.events.register("before-sign.s3-control.*", _without_account_host)
    return challenge, S3Bucket(challenge.destinations[0], "alpha"), s3, control


def _without_account_host(request, **_):
    """boto3 puts the account in front of the s3control host: 123456789012.127.0.0.1 resolves nowhere."""
    request.url = request.url.replace(f"{ACCOUNT}.", "", 1)


def stored_points(control, bucket: str) -> dict[str, dict]:
    """Every access point on ``bucket`` as moto stores it: name -> {arn, alias, policy}."""
    points = {}
    for point in control.list_access_points(AccountId=ACCOUNT, Bucket=bucket)["AccessPointList"]:
        policy = json.loads(control.get_access_point_policy(AccountId=ACCOUNT, Name=point["Name"])["Policy"])
        points[point["Name"]] = {"arn": point["AccessPointArn"], "alias": point["Alias"], "policy": policy}
    return points


def ours_in_bucket_policy(destination: S3Bucket, policy: dict) -> set[str]:
    return listed_principals(policy["Statement"], destination.statement_ids()[0])


def fill_with_someone_elses(destination: S3Bucket, s3, room: int) -> dict:
    """Give the bucket a policy of someone else's, leaving ``room`` bytes under S3's limit."""
    statement = {"Sid": "SomeoneElses", "Effect": "Allow", "Principal": {"AWS": []}, "Action": "s3:GetObject",
                 "Resource": f"arn:aws:s3:::{destination.bucket}/other/*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    i = 0
    while policy_bytes(document) < S3_POLICY_LIMIT - room:
        statement["Principal"]["AWS"].append(f"arn:aws:iam::{400000000000 + i}:root")
        i += 1
    s3.put_bucket_policy(Bucket=destination.bucket, Policy=json.dumps(document, separators=(",", ":")))
    return statement


def delegation_room(destination: S3Bucket) -> int:
    """Bytes the delegation statements take in a policy (plus a comma)."""
    return policy_bytes({"Statement": destination.access_points.delegation()}) - policy_bytes({"Statement": []}) + 1


@pytest.mark.slow
def test_1000_participants_fill_the_bucket_policy_then_several_access_points(place):
    challenge, destination, s3, control = place
    ledger = Ledger()
    for i in range(1000):
        ledger.add_grant("alpha", Grant(service="s3", identity=account(i)))

    applied = access.apply_pending(ledger, challenge, destination)

    assert [a.action for a in applied] == ["granted"] * 1000, [a.line() for a in applied if a.failed][:3]
    policy = bucket_policy(s3, destination.bucket)
    assert policy_bytes(policy) <= S3_POLICY_LIMIT
    direct = ours_in_bucket_policy(destination, policy)
    assert 200 <= len(direct) < 300
    read, listing = (next(s for s in policy["Statement"] if s["Sid"] == sid) for sid in destination.delegation_ids())
    for statement in (read, listing):  # delegation: to the organiser's access points, reads of the prefix only
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Condition"]["StringEquals"] == {"s3:DataAccessPointAccount": ACCOUNT}
        assert statement["Condition"]["ArnLike"] == {
            "s3:DataAccessPointArn": f"arn:aws:s3:*:{ACCOUNT}:accesspoint/{destination.access_points.name_prefix}*"}
    assert (read["Action"], read["Resource"]) == ("s3:GetObject", f"arn:aws:s3:::{destination.bucket}/alpha/*")
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", f"arn:aws:s3:::{destination.bucket}")
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["alpha/*"]}

    points = stored_points(control, destination.bucket)
    assert len(points) >= 3
    assert sorted(points) == [f"{destination.access_points.name_prefix}{n}" for n in range(len(points))]
    held: dict[str, str] = {}
    for name, point in points.items():
        assert len(name) <= 50 and policy_bytes(point["policy"]) <= S3_POLICY_LIMIT
        get, lst = point["policy"]["Statement"]
        assert (get["Action"], get["Resource"]) == ("s3:GetObject", f"{point['arn']}/object/alpha/*")
        assert (lst["Action"], lst["Resource"]) == ("s3:ListBucket", point["arn"])
        assert lst["Condition"] == {"StringLike": {"s3:prefix": ["alpha/*"]}}
        assert get["Principal"] == lst["Principal"]
        for principal in get["Principal"]["AWS"]:
            assert principal not in held and principal not in direct, principal
            held[principal] = f"s3://{point['alias']}/alpha"
    assert direct | set(held) == {root(i) for i in range(1000)}

    # Where each participant reads, as the organiser sees it (ppipe show --json).
    shown = {f"arn:aws:iam::{g.record.identity}:root": g.to_json()["destinations"][0] for g in api.grant_status("alpha")}
    assert {p: d["access"] for p, d in shown.items() if d["access"]} == held
    assert all(d["state"] == "active" for d in shown.values())

    # A revoke removes the principal from its access point only.
    middle = sorted(n for n in points)[1]
    gone = points[middle]["policy"]["Statement"][0]["Principal"]["AWS"][7]
    api.revoke("alpha", Grant(service="s3", identity=gone.split(":")[4]))
    after = stored_points(control, destination.bucket)
    assert set(after) == set(points)
    for name, point in after.items():
        expected = set(points[name]["policy"]["Statement"][0]["Principal"]["AWS"]) - {gone}
        assert set(point["policy"]["Statement"][0]["Principal"]["AWS"]) == expected
        assert set(point["policy"]["Statement"][1]["Principal"]["AWS"]) == expected
    assert bucket_policy(s3, destination.bucket) == policy


def test_a_full_bucket_policy_sends_grants_to_an_access_point_and_revokes_clean_up(place):
    challenge, destination, s3, control = place
    theirs = fill_with_someone_elses(destination, s3, room=delegation_room(destination) + 100)

    lines = [a.line() for i in range(3) for a in api.grant("alpha", Grant(service="s3", identity=account(i)))]

    [name] = stored_points(control, destination.bucket)
    point = stored_points(control, destination.bucket)[name]
    assert set(point["policy"]["Statement"][0]["Principal"]["AWS"]) == {root(0), root(1), root(2)}
    assert all(f"read at s3://{point['alias']}/alpha" in line for line in lines), lines
    policy = bucket_policy(s3, destination.bucket)
    assert theirs in policy["Statement"] and ours_in_bucket_policy(destination, policy) == set()
    assert {s["Sid"] for s in policy["Statement"]} == {"SomeoneElses", *destination.delegation_ids()}

    api.revoke("alpha", Grant(service="s3", identity=account(1)))
    point = stored_points(control, destination.bucket)[name]
    assert set(point["policy"]["Statement"][0]["Principal"]["AWS"]) == {root(0), root(2)}

    for i in (0, 2):  # the last one out: the access point and the delegation go, others' statement stays
        api.revoke("alpha", Grant(service="s3", identity=account(i)))
    assert stored_points(control, destination.bucket) == {}
    assert bucket_policy(s3, destination.bucket)["Statement"] == [theirs]
    assert all(g.to_json()["destinations"][0]["state"] == "revoked" for g in api.grant_status("alpha"))


def test_a_participant_learns_the_access_point_to_read_through(place):
    from ppipe.participants import service

    challenge, destination, s3, control = place
    fill_with_someone_elses(destination, s3, room=delegation_room(destination) + 100)
    zoe = service.add("alpha", "zoe", s3=account(9))

    [point] = stored_points(control, destination.bucket).values()
    assert service.me(service.authenticate(zoe.token))["storage"] == [
        {"service": "s3", "destination": destination.uri, "read_at": f"s3://{point['alias']}/alpha"}]
    service.revoke("alpha", "zoe")
    assert stored_points(control, destination.bucket) == {}


def test_concurrent_grants_into_access_points_are_all_kept(place):
    challenge, destination, s3, control = place
    fill_with_someone_elses(destination, s3, room=delegation_room(destination) + 100)
    errors = all_at_once(lambda i: api.grant("alpha", Grant(service="s3", identity=account(i))), 12)
    assert errors == []
    named = {p for point in stored_points(control, destination.bucket).values()
             for p in point["policy"]["Statement"][0]["Principal"]["AWS"]}
    assert named == {root(i) for i in range(12)}


def test_access_point_names_are_valid_for_any_challenge(s3_server):
    from ppipe.destinations.s3.spec import S3Destination

    long = S3Bucket(S3Destination(bucket="ppipe-x", endpoint_url=s3_server, region=REGION), "a" * 60 + "_b")
    name = f"{long.access_points.name_prefix}9999"
    assert len(name) <= 50 and name == name.lower() and all(c.isalnum() or c == "-" for c in name)
    other = S3Bucket(S3Destination(bucket="ppipe-y", endpoint_url=s3_server, region=REGION), "a" * 60 + "_b")
    assert other.access_points.name_prefix != long.access_points.name_prefix  # names are account-wide
