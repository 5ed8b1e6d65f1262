"""The S3 destination as declared: a bucket (and prefix) of S3 or an S3-compatible store."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from ppipe import naming
from ppipe.destinations.bucket import BucketDestination

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_IAM_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|user/[\w+=,.@/-]{1,512}|role/[\w+=,.@/-]{1,512}|assumed-role/[\w+=,.@/-]+)$")
_IAM_USER = re.compile(r"^[\w+=,.@-]{1,64}$")


def check_s3_bucket(name: str) -> str:
    """Return ``name`` if S3 accepts it as a bucket name, else raise ValueError saying why."""
    rule = "S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if not _S3_BUCKET.match(name) or ".." in name or ".-" in name or "-." in name:
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"{name!r} is not a valid bucket name: reserved prefix or suffix")
    if naming.is_ip(name):
        raise ValueError(f"{name!r} is not a valid bucket name: it looks like an IP address")
    return name


def check_principal(identity: str, via: str = "bucket-policy") -> str:
    """An AWS principal for ``via``: an IAM ARN or account id (bucket-policy), or an IAM user
    name or user ARN (iam-user-policy); ValueError if malformed."""
    identity = identity.strip()
    if via == "iam-user-policy":
        if identity.startswith("arn:"):
            match = _IAM_ARN.match(identity)
            if not match or not match.group(2).startswith("user/"):
                raise ValueError(f"{identity!r} is not an IAM user ARN")
            path, _, user = match.group(2)[len("user"):].rpartition("/")
            if path:  # never silently dropped: user/students/amy is not user/amy
                raise ValueError(f"{identity!r}: IAM user path {path}/ is not supported: ppipe makes users at the root path")
            if not _IAM_USER.match(user):
                raise ValueError(f"{identity!r} is not an IAM user ARN")
            return identity  # kept whole: the account is checked against the organiser's at grant time
        if not _IAM_USER.match(identity):
            raise ValueError(f"{identity!r} is not an IAM user name (1-64 of letters, digits and +=,.@_-)")
        return identity
    if _ACCOUNT_ID.match(identity) or _IAM_ARN.match(identity):
        return identity
    raise ValueError(f"{identity!r} is not an AWS principal: use an IAM ARN (arn:aws:iam::123456789012:user/alice) or a 12-digit account id")


class S3Destination(BucketDestination):
    """An S3 (or S3-compatible) bucket; releases go under a prefix per challenge."""

    scheme: ClassVar[str] = "s3"
    can_grant: ClassVar[bool] = True
    roles: ClassVar[tuple[str, ...]] = ("reader",)
    grant_forms: ClassVar[tuple[str, ...]] = ("bucket-policy", "iam-user-policy")
    kind: Literal["s3"] = "s3"
    region: str | None = Field(default=None, description="Region to create the bucket in (e.g. eu-west-1).")
    profile: str | None = Field(default=None, description="AWS profile to use (credentials stay in ~/.aws).")
    credentials_block: str | None = Field(
        default=None, description="Name of a Prefect block holding the AWS keys (see ppipe.orchestration.blocks)."
    )

    @classmethod
    def check_bucket(cls, name: str) -> str:
        return check_s3_bucket(name)

    @classmethod
    def check_identity(cls, identity: str, via: str | None = None) -> str:
        return check_principal(identity, via or cls.grant_forms[0])
