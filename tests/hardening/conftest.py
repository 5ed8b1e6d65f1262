"""Fixtures for the grant-hardening tests: moto with IAM enforced, and S3 challenges on it.

moto's auth switch is process-global, so the enforced server runs in a process of its own
(the shared in-process ``s3_server`` stays auth-free for the other tests).
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Callable

import boto3
import pytest

from tests.support.servers import moto_process, post, use_aws_key

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account: the organiser's


def client(service: str, endpoint: str, key: str = "setup", secret: str = "setup", account: str | None = None):
    made = boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret)
    if account:  # moto: act in another account (to own a foreign bucket)
        made.meta.events.register(
            "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return made


@pytest.fixture(scope="session")
def iam_server():
    """A moto server of its own with cross-account access allowed (an attacker's open bucket works)."""
    with moto_process() as endpoint:
        yield endpoint


@pytest.fixture
def organiser(iam_server, monkeypatch):
    """Fresh moto state, an admin IAM user whose key is in the environment, then auth on.

    ``organiser(service)`` makes an admin client; ``organiser.setup(fn)`` runs ``fn`` with
    auth off (to create users or foreign buckets the way someone else would).
    """
    post(f"{iam_server}/moto-api/reset")
    post(f"{iam_server}/moto-api/reset-auth", b"1000000")
    iam = client("iam", iam_server)
    iam.create_user(UserName="organiser")
    iam.put_user_policy(UserName="organiser", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    iam.create_user(UserName="root-ish-admin")  # an existing user without keys, not ppipe's
    key = iam.create_access_key(UserName="organiser")["AccessKey"]
    post(f"{iam_server}/moto-api/reset-auth", b"0")
    use_aws_key(monkeypatch, key)

    def admin(service: str):
        return client(service, iam_server, key["AccessKeyId"], key["SecretAccessKey"])

    admin.endpoint = iam_server
    return admin


def fresh_bucket() -> str:
    return f"ppipe-hg-{uuid.uuid4().hex[:10]}"


def s3_spec(endpoint: str, bucket: str, **fields) -> dict:
    return {"kind": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": REGION, **fields}


def bucket_policy(s3, bucket: str) -> dict:
    from botocore.exceptions import ClientError

    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError:
        return {"Statement": []}


def principals(policy: dict) -> set[str]:
    """Every AWS principal named in Allow statements of a bucket policy."""
    found: set[str] = set()
    for statement in policy.get("Statement", []):
        named = (statement.get("Principal") or {}).get("AWS", [])
        found.update([named] if isinstance(named, str) else named)
    return found


def all_at_once(action: Callable[[int], object], count: int) -> list[BaseException]:
    """Run ``action(0)`` ... ``action(count - 1)`` in threads released together; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait(30)
            action(i)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors
