"""S3 specifics on the shared moto server (auth off): bucket policies, multipart, regions, credentials."""

from __future__ import annotations

import json
import os
import uuid

import boto3
import pytest

from ppipe.durable import file_sha256
from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError, SpecError
from ppipe.challenge.spec import S3Destination
from ppipe.challenge.specfile import parse_challenge

FOREIGN = {
    "Sid": "SomeoneElses", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/shared/*",
}


def _bucket(s3_server, challenge="alpha", **options) -> S3Bucket:
    spec = S3Destination(bucket=f"ppipe-t-{uuid.uuid4().hex[:10]}", endpoint_url=s3_server, **options)
    return S3Bucket(spec, challenge)


def _raw(s3_server):
    return boto3.client("s3", endpoint_url=s3_server, region_name="eu-west-1")


def _stored_policy(s3_server, bucket: str) -> dict:
    return json.loads(_raw(s3_server).get_bucket_policy(Bucket=bucket)["Policy"])


def test_bucket_policy_grants_merge_and_revoke_only_ppipes_statements(s3_server):
    destination = _bucket(s3_server, region="eu-west-1")
    destination.prepare()
    foreign = json.loads(json.dumps(FOREIGN).replace("{bucket}", destination.bucket))
    _raw(s3_server).put_bucket_policy(Bucket=destination.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}))
    alice, account = "arn:aws:iam::123456789012:user/alice", "210987654321"

    destination.grant(alice)
    destination.grant(account)
    destination.grant(alice)  # idempotent: no duplicate principals
    statements = _stored_policy(s3_server, destination.bucket)["Statement"]
    assert statements[0] == foreign and len(statements) == 3  # one pair for the challenge, not per participant
    by_sid = {s["Sid"]: s for s in statements}
    read, listing = (by_sid[sid] for sid in destination.statement_ids())
    both = sorted([alice, f"arn:aws:iam::{account}:root"])
    assert read == {"Sid": read["Sid"], "Effect": "Allow", "Principal": {"AWS": both}, "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{destination.bucket}/alpha/*"}
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == f"arn:aws:s3:::{destination.bucket}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["alpha/*"]}} and listing["Principal"] == {"AWS": both}

    destination.revoke(alice)
    statements = _stored_policy(s3_server, destination.bucket)["Statement"]
    assert [s["Sid"] for s in statements] == ["SomeoneElses", *destination.statement_ids()]
    assert statements[1]["Principal"] == {"AWS": [f"arn:aws:iam::{account}:root"]}
    destination.revoke(account)
    destination.revoke(account)
    assert _stored_policy(s3_server, destination.bucket)["Statement"] == [foreign]


def test_revoking_the_last_statement_removes_the_policy(s3_server):
    destination = _bucket(s3_server, region="eu-west-1")
    destination.prepare()
    destination.grant("123456789012")
    destination.revoke("123456789012")
    assert destination.bucket_policy() == {"Version": "2012-10-17", "Statement": []}
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        _raw(s3_server).get_bucket_policy(Bucket=destination.bucket)


def test_statement_ids_differ_per_challenge(s3_server):
    a, b = _bucket(s3_server, "alpha"), _bucket(s3_server, "beta")
    ids = {a.statement_ids(), b.statement_ids()}
    assert len(ids) == 2 and a.statement_ids() == a.statement_ids()
    assert all(sid.isalnum() for pair in ids for sid in pair)


def test_large_file_goes_up_in_parts_with_its_checksum(s3_server, tmp_path):
    destination = _bucket(s3_server, region="eu-west-1")
    destination.multipart_chunksize = 5 * 2**20  # the S3 minimum part size
    destination.prepare()
    big = tmp_path / "big.csv"
    big.write_bytes(os.urandom(11 * 2**20))
    destination.upload(big, "release_0.csv")
    head = _raw(s3_server).head_object(Bucket=destination.bucket, Key="alpha/release_0.csv")
    assert head["ETag"].strip('"').endswith("-3")  # 11 MiB in 5 MiB parts: three parts
    size, digest = file_sha256(big)
    assert head["Metadata"]["sha256"] == digest
    assert destination.stat("release_0.csv").sha256 == digest and destination.exists("release_0.csv", digest)


def test_stat_reads_the_bytes_not_the_metadata(s3_server, tmp_path):
    destination = _bucket(s3_server, region="eu-west-1")
    destination.prepare()
    release = tmp_path / "r.csv"
    release.write_bytes(b"a\n1\n")
    destination.upload(release, "release_0.csv")
    # Someone overwrites the object but keeps ppipe's metadata: exists trusts it, stat does not.
    _raw(s3_server).put_object(Bucket=destination.bucket, Key="alpha/release_0.csv", Body=b"tampered",
                               Metadata={"sha256": file_sha256(release)[1]})
    assert destination.stat("release_0.csv").size == len(b"tampered")
    assert destination.read("release_0.csv") == b"tampered"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_bucket_is_created_in_its_region(s3_server, region):
    destination = _bucket(s3_server, region=region)
    destination.prepare()
    destination.prepare()
    location = _raw(s3_server).get_bucket_location(Bucket=destination.bucket)["LocationConstraint"]
    assert (location or "us-east-1") == region


def test_no_credentials_lists_every_place_looked_at(s3_server, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(DestinationError) as info:
        _bucket(s3_server).prepare()
    message = str(info.value)
    assert "no AWS credentials found" in message
    for place in ("AWS_ACCESS_KEY_ID", str(tmp_path / "none"), "instance metadata"):
        assert place in message
    with pytest.raises(DestinationError, match="profile 'nobody' not found"):
        _bucket(s3_server, profile="nobody").prepare()


def test_profile_credentials_are_used(s3_server, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "credentials"
    credentials.write_text("[organiser]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    destination = _bucket(s3_server, profile="organiser", region="eu-west-1")
    destination.prepare()
    assert destination.access.key == "AKIAPROFILE" and "profile-secret" not in repr(destination.access)


def test_invalid_bucket_name_is_refused_by_the_spec_naming_the_field():
    spec = {
        "name": "c", "source": "/data/x.csv", "releases": 2,
        "schedule": {"start": "2026-01-01T00:00:00Z", "every": "1d"},
        "destinations": [{"kind": "local", "path": "/tmp"}, {"kind": "s3", "bucket": "Bad_Bucket"}],
    }
    with pytest.raises(SpecError) as info:
        parse_challenge(spec)
    assert info.value.field == "destinations.1.bucket" and "Bad_Bucket" in str(info.value)


def test_bad_grants_are_refused(s3_server):
    destination = _bucket(s3_server)
    with pytest.raises(DestinationError, match="read-only"):
        destination.grant("123456789012", role="writer")
    with pytest.raises(DestinationError, match="not an AWS principal"):
        destination.grant("alice")
    with pytest.raises(DestinationError, match="unknown via"):
        destination.grant("123456789012", via="acl")


def test_missing_bucket_is_named(s3_server, tmp_path):
    release = tmp_path / "r.csv"
    release.write_bytes(b"a\n")
    destination = _bucket(s3_server, region="eu-west-1")
    with pytest.raises(DestinationError, match=f"bucket {destination.bucket} does not exist"):
        destination.upload(release, "release_0.csv")
