"""Credentials for the storage providers, found in the usual places and converted in one place.

- S3: a Prefect block named in the spec (``credentials_block``), else the AWS profile named
  in the spec (``profile``), else botocore's own chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/credentials``, ``~/.aws/config``,
  container and instance metadata).
- GCS: a Prefect block named in the spec, else ``GOOGLE_APPLICATION_CREDENTIALS``, else
  Application Default Credentials (gcloud, metadata server). A custom ``endpoint_url``
  (an emulator) with none of the explicit ones gets anonymous access.

The results (:class:`AwsAccess`, :class:`GcsAccess`) hand each client what it needs
(s3fs kwargs, a boto3 session, a gcsfs token, google-auth credentials). Their ``repr`` shows
no secret, and :meth:`AwsAccess.redact` scrubs the secrets from any text before it reaches
an error message. Secrets never go to the ledger, to logs or to return values.

Prefect is imported only when a block is named, so ``import ppipe`` needs no Prefect server.
Blocks: ppipe's own :func:`aws_block_class` (``ppipe-aws-credentials``) and
:func:`gcp_block_class` (``ppipe-gcp-credentials``), used when the name has no ``/``;
``"<block-type-slug>/<name>"`` loads any block with the same field names (e.g. prefect-aws's
``aws-credentials/<name>``, prefect-gcp's ``gcp-credentials/<name>``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

from ppipe.errors import DestinationError

AWS_BLOCK_SLUG = "ppipe-aws-credentials"
GCP_BLOCK_SLUG = "ppipe-gcp-credentials"
GCS_SCOPES = ["https://www.googleapis.com/auth/devstorage.full_control"]


def _secret(value: Any) -> Any:
    """The plain value of a pydantic Secret*/SecretStr field (or the value itself)."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


# --- Prefect blocks (lazy) -----------------------------------------------------------------


@functools.cache
def aws_block_class():
    """ppipe's Prefect block for AWS keys (block type ``ppipe-aws-credentials``)."""
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    class PpipeAwsCredentials(Block):
        """AWS access keys for ppipe's S3 destinations."""

        _block_type_slug = AWS_BLOCK_SLUG
        aws_access_key_id: str | None = None
        aws_secret_access_key: SecretStr | None = None
        aws_session_token: SecretStr | None = None
        profile_name: str | None = None
        region_name: str | None = None

    return PpipeAwsCredentials


@functools.cache
def gcp_block_class():
    """ppipe's Prefect block for a GCP service-account key (block type ``ppipe-gcp-credentials``)."""
    from prefect.blocks.core import Block
    from prefect.types import SecretDict

    class PpipeGcpCredentials(Block):
        """A service-account key (its JSON as a dict, or a file path) for ppipe's GCS destinations."""

        _block_type_slug = GCP_BLOCK_SLUG
        service_account_info: SecretDict | None = None
        service_account_file: str | None = None
        project: str | None = None

    return PpipeGcpCredentials


def load_block(name: str, default_class) -> Any:
    """Load the Prefect block ``name`` (``slug/name`` for another block type). Raises on failure."""
    if "/" in name:
        from prefect.blocks.core import Block

        return Block.load(name)
    return default_class().load(name)


def _block(uri: str, name: str, default_class) -> Any:
    try:
        return load_block(name, default_class)
    except Exception as exc:  # Prefect raises ValueError, httpx errors, ... : one line, no secrets
        raise DestinationError(uri, f"cannot load Prefect block {name!r}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


# --- AWS -----------------------------------------------------------------------------------


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
        block = _block(uri, spec.credentials_block, aws_block_class)
        key, secret = getattr(block, "aws_access_key_id", None), _secret(getattr(block, "aws_secret_access_key", None))
        region = getattr(block, "region_name", None)
        if key and secret:
            token = _secret(getattr(block, "aws_session_token", None))
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


# --- GCS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GcsAccess:
    """Resolved GCS credentials: a google-auth Credentials object (or anonymous) and a project."""

    source: str
    credentials: Any = field(repr=False)
    project: str | None = None
    anonymous: bool = False

    def gcsfs_token(self) -> Any:
        """The ``token`` argument of ``gcsfs.GCSFileSystem``."""
        return "anon" if self.anonymous else self.credentials


def _gcs_places(spec) -> list[str]:
    places = [f"Prefect block {spec.credentials_block!r}"] if spec.credentials_block else []
    return places + [
        "GOOGLE_APPLICATION_CREDENTIALS",
        "application default credentials (gcloud auth application-default login, metadata server)",
    ]


def gcs(spec, uri: str) -> GcsAccess:
    """The GCS credentials for a GcsDestination ``spec``; DestinationError(uri, ...) if none."""
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import service_account

    if spec.credentials_block:
        block = _block(uri, spec.credentials_block, gcp_block_class)
        info = _secret(getattr(block, "service_account_info", None))
        path = getattr(block, "service_account_file", None)
        try:
            if info:
                creds = service_account.Credentials.from_service_account_info(dict(info), scopes=GCS_SCOPES)
            elif path:
                creds = service_account.Credentials.from_service_account_file(str(path), scopes=GCS_SCOPES)
            else:
                raise DestinationError(uri, f"Prefect block {spec.credentials_block!r} holds no service-account key")
        except (ValueError, OSError) as exc:
            raise DestinationError(uri, f"Prefect block {spec.credentials_block!r}: unusable service-account key ({type(exc).__name__})") from None
        return GcsAccess(f"Prefect block {spec.credentials_block!r}", creds, getattr(block, "project", None) or creds.project_id)
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        try:
            creds = service_account.Credentials.from_service_account_file(path, scopes=GCS_SCOPES)
        except (ValueError, OSError) as exc:
            raise DestinationError(uri, f"GOOGLE_APPLICATION_CREDENTIALS={path}: unusable service-account key ({type(exc).__name__})") from None
        return GcsAccess("GOOGLE_APPLICATION_CREDENTIALS", creds, creds.project_id)
    if spec.endpoint_url:
        # An emulator or a test server: no Google credentials to look for (and no metadata-server wait).
        return GcsAccess(f"anonymous ({spec.endpoint_url})", AnonymousCredentials(), None, anonymous=True)
    import google.auth
    import google.auth.exceptions

    try:
        creds, project = google.auth.default(scopes=GCS_SCOPES)
    except google.auth.exceptions.DefaultCredentialsError:
        raise DestinationError(uri, f"no Google credentials found; looked in: {'; '.join(_gcs_places(spec))}") from None
    return GcsAccess("application default credentials", creds, project)
