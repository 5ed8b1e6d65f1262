"""AWS credentials for S3 destinations, found in the usual places; secrets never shown.

A Prefect block named in the spec (``credentials_block``), else the AWS profile named in the
spec (``profile``), else botocore's own chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws/credentials``, ``~/.aws/config``, container and instance metadata).
:class:`AwsAccess` hands each client what it needs (s3fs kwargs, a boto3 session); its
``repr`` shows no secret, and :meth:`AwsAccess.redact` scrubs the secrets from any text
before it reaches an error message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ppipe.destinations.credentials import load_block, secret_value
from ppipe.errors import DestinationError


@dataclass(frozen=True)
class AwsAccess:
    """Resolved AWS credentials: where they came from, and the keys (never shown by repr)."""

    source: str
    key: str = field(repr=False)
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    region: str | None = None

    def s3fs_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` (key, secret, token)."""
        return {"key": self.key, "secret": self.secret, "token": self.token}

    def boto3_session(self, region: str | None = None):
        """A boto3 Session holding these keys (for IAM and bucket-policy calls)."""
        import boto3

        return boto3.Session(
            aws_access_key_id=self.key, aws_secret_access_key=self.secret,
            aws_session_token=self.token, region_name=region or self.region,
        )

    def redact(self, text: str) -> str:
        """``text`` with the key id, secret and token replaced by ``***``."""
        for secret in (self.secret, self.token, self.key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _aws_places(spec) -> list[str]:
    places = []
    if spec.credentials_block:
        places.append(f"Prefect block {spec.credentials_block!r}")
    if spec.profile:
        places.append(f"profile {spec.profile!r}")
    places += [
        "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE)",
        f"shared credentials file ({os.environ.get('AWS_SHARED_CREDENTIALS_FILE', '~/.aws/credentials')})",
        f"config file ({os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')})",
        "container/instance metadata",
    ]
    return places


def aws(spec, uri: str) -> AwsAccess:
    """The AWS credentials for an S3Destination ``spec``; DestinationError(uri, ...) if none.

    The message of a failure lists every place that was looked at.
    """
    import botocore.exceptions
    import boto3

    profile = spec.profile
    if spec.credentials_block:
        block = load_block(uri, spec.credentials_block, "s3")
        key, secret = getattr(block, "aws_access_key_id", None), secret_value(getattr(block, "aws_secret_access_key", None))
        region = getattr(block, "region_name", None)
        if key and secret:
            token = secret_value(getattr(block, "aws_session_token", None))
            return AwsAccess(f"Prefect block {spec.credentials_block!r}", key, secret, token, region)
        profile = getattr(block, "profile_name", None) or profile
        if not profile:
            raise DestinationError(uri, f"Prefect block {spec.credentials_block!r} holds neither keys nor a profile name")
    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        found = session.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise DestinationError(uri, f"AWS profile {profile!r} not found; looked in: {'; '.join(_aws_places(spec)[1:])}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise DestinationError(uri, f"cannot load AWS credentials: {type(exc).__name__}") from None
    if found is None:
        raise DestinationError(uri, f"no AWS credentials found; looked in: {'; '.join(_aws_places(spec))}")
    frozen = found.get_frozen_credentials()
    where = f"profile {profile!r}" if profile else f"botocore chain ({found.method})"
    return AwsAccess(where, frozen.access_key, frozen.secret_key, frozen.token, session.region_name)
