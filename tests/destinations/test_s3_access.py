"""S3 grants, credentials and provider errors against moto with IAM authentication on.

moto's auth switch (``/moto-api/reset-auth``) and its backends are process-global, so these
tests run their own moto server in a subprocess: the shared ``s3_server`` stays auth-free.
"""

from __future__ import annotations

import json
import logging
import stat
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import DestinationError
from ppipe.challenge.spec import S3Destination
from tests.support.servers import free_port, moto_process, post, use_aws_key

REGION = "eu-west-1"
FAKE_SECRET = "ppipe-FAKE-secret-do-not-print-7f3a9c"


@pytest.fixture(scope="module")
def auth_server():
    """A moto server of our own (subprocess), cross-account bucket access refused like AWS does."""
    with moto_process(MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS="false") as endpoint:
        yield endpoint


def _client(service: str, endpoint: str, key: str, secret: str, account: str | None = None):
    client = boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=key, aws_secret_access_key=secret)
    if account:  # moto: act in another account (used to own a foreign bucket)
        client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


@pytest.fixture
def organiser(auth_server, monkeypatch):
    """Fresh moto state; an admin IAM user whose key is in the environment; then auth turned on.

    Returns a function making boto3 clients with the admin key.
    """
    post(f"{auth_server}/moto-api/reset")
    post(f"{auth_server}/moto-api/reset-auth", b"1000000")  # off while we set up
    iam = _client("iam", auth_server, "setup", "setup")
    iam.create_user(UserName="organiser")
    iam.put_user_policy(UserName="organiser", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="organiser")["AccessKey"]
    iam.create_user(UserName="dave")  # a participant with a key and no grant
    dave = iam.create_access_key(UserName="dave")["AccessKey"]
    foreign = f"ppipe-foreign-{uuid.uuid4().hex[:8]}"
    _client("s3", auth_server, "setup", "setup", account="111111111111").create_bucket(
        Bucket=foreign, CreateBucketConfiguration={"LocationConstraint": REGION})
    post(f"{auth_server}/moto-api/reset-auth", b"0")  # from now on moto checks identities and policies
    use_aws_key(monkeypatch, key)

    def client(service: str):
        return _client(service, auth_server, key["AccessKeyId"], key["SecretAccessKey"])

    client.dave = (dave["AccessKeyId"], dave["SecretAccessKey"])
    client.foreign_bucket = foreign
    return client


def _destination(endpoint: str, bucket: str, challenge: str) -> S3Bucket:
    return S3Bucket(S3Destination(bucket=bucket, endpoint_url=endpoint, region=REGION), challenge)


def _denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"]


def test_iam_user_grant_gives_read_of_its_prefix_only(auth_server, organiser, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    bucket = f"ppipe-auth-{uuid.uuid4().hex[:8]}"
    alpha, beta = _destination(auth_server, bucket, "alpha"), _destination(auth_server, bucket, "beta")
    release = tmp_path / "release_0.csv"
    release.write_bytes(b"id\n1\n2\n")
    for destination in (alpha, beta):
        destination.prepare()
        destination.upload(release, "release_0.csv")

    result = alpha.grant("carol", via="iam-user-policy")
    path = result.credentials_file
    assert path == alpha.credentials_file("carol") and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    secret = saved["aws_secret_access_key"]
    assert secret not in result.description and secret not in repr(result) and saved["aws_access_key_id"] not in result.description

    carol = _client("s3", auth_server, saved["aws_access_key_id"], secret)
    assert carol.get_object(Bucket=bucket, Key="alpha/release_0.csv")["Body"].read() == release.read_bytes()
    listed = carol.list_objects_v2(Bucket=bucket, Prefix="alpha/")
    assert [o["Key"] for o in listed["Contents"]] == ["alpha/release_0.csv"]
    assert _denied(carol.put_object, Bucket=bucket, Key="alpha/mine.csv", Body=b"x") == "AccessDenied"
    assert _denied(carol.get_object, Bucket=bucket, Key="beta/release_0.csv") == "AccessDenied"
    # moto does not evaluate the s3:prefix condition, so check that the policy carries it.
    stored = organiser("iam").get_user_policy(UserName="carol", PolicyName=alpha.inline_policy_name)["PolicyDocument"]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert {"StringLike": {"s3:prefix": ["alpha/*"]}} in [s.get("Condition") for s in stored["Statement"]]

    dave = _client("s3", auth_server, *organiser.dave)
    assert _denied(dave.get_object, Bucket=bucket, Key="alpha/release_0.csv") == "AccessDenied"

    again = alpha.grant("carol", via="iam-user-policy")  # no second key, same file, unchanged
    assert again.credentials_file == path and json.loads(path.read_text()) == saved
    assert len(organiser("iam").list_access_keys(UserName="carol")["AccessKeyMetadata"]) == 1

    organiser("iam").put_user_policy(UserName="carol", PolicyName="unrelated", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}))
    alpha.revoke("carol", via="iam-user-policy")
    alpha.revoke("carol", via="iam-user-policy")
    # carol had no other ppipe access: the key ppipe made for her is gone with the policy
    assert _denied(carol.get_object, Bucket=bucket, Key="alpha/release_0.csv") in ("AccessDenied", "InvalidAccessKeyId")
    assert organiser("iam").list_user_policies(UserName="carol")["PolicyNames"] == ["unrelated"]
    assert secret not in caplog.text


def test_wrong_credentials_are_one_clear_line_without_secrets(auth_server, organiser, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPPIPEFAKEKEY0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    destination = _destination(auth_server, f"ppipe-auth-{uuid.uuid4().hex[:8]}", "alpha")
    with pytest.raises(DestinationError) as info:
        destination.prepare()
    message = str(info.value)
    assert message.startswith(f"destination {destination.uri}: ") and "credentials refused" in message
    assert "\n" not in message
    assert FAKE_SECRET not in message and "AKIAPPIPEFAKEKEY0001" not in message
    assert FAKE_SECRET not in repr(destination.access) and FAKE_SECRET not in caplog.text


def test_bucket_of_another_account_is_refused(auth_server, organiser):
    destination = _destination(auth_server, organiser.foreign_bucket, "alpha")
    with pytest.raises(DestinationError, match="belongs to another account"):
        destination.prepare()


def test_unreachable_endpoint_fails_fast(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PPIPE_CONNECT_TIMEOUT", "1")
    destination = _destination(f"http://127.0.0.1:{free_port()}", "ppipe-nowhere", "alpha")
    started = time.monotonic()
    with pytest.raises(DestinationError, match="cannot reach http://127.0.0.1"):
        destination.prepare()
    assert time.monotonic() - started < 10
