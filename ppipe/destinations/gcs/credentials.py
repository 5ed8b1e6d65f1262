"""Google credentials for GCS destinations, found in the usual places; secrets never shown.

A Prefect block named in the spec (``credentials_block``), else ``GOOGLE_APPLICATION_CREDENTIALS``,
else Application Default Credentials (gcloud, metadata server). A custom ``endpoint_url`` (an
emulator) with none of the explicit ones gets anonymous access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ppipe.destinations.credentials import load_block, secret_value
from ppipe.errors import DestinationError

GCS_SCOPES = ["https://www.googleapis.com/auth/devstorage.full_control"]


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
        block = load_block(uri, spec.credentials_block, "gcs")
        info = secret_value(getattr(block, "service_account_info", None))
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
