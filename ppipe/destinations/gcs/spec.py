"""The GCS destination as declared: a Google Cloud Storage bucket (and prefix)."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from ppipe import naming
from ppipe.destinations.bucket import BucketDestination

_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_MEMBER_KINDS = ("user", "group", "serviceAccount")
_PROJECT_NUMBER = re.compile(r"^[1-9][0-9]{0,18}$")


def check_gcs_bucket(name: str) -> str:
    """Return ``name`` if GCS accepts it as a bucket name, else raise ValueError saying why."""
    rule = "GCS bucket names are 3-63 lowercase letters, digits, hyphens, underscores and dots, starting and ending with a letter or digit"
    if not _GCS_BUCKET.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if any(len(part) > 63 for part in name.split(".")) or ("." not in name and len(name) > 63):
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if name.startswith("goog") or "google" in name or naming.is_ip(name):
        raise ValueError(f"{name!r} is not a valid bucket name: GCS reserves names with 'goog'/'google' and IP addresses")
    return name


def check_member(identity: str) -> str:
    """A GCS IAM member (``user:``/``group:``/``serviceAccount:`` and an e-mail; a bare e-mail is a user)."""
    identity = identity.strip()
    kind, sep, who = identity.partition(":")
    if not sep:
        return f"user:{naming.check_email(identity)}"
    if kind not in _MEMBER_KINDS:
        raise ValueError(f"{identity!r} is not a GCS member: use user:, group: or serviceAccount: and an e-mail")
    return f"{kind}:{naming.check_email(who)}"


class GcsDestination(BucketDestination):
    """A Google Cloud Storage bucket; releases go under a prefix per challenge."""

    scheme: ClassVar[str] = "gs"
    can_grant: ClassVar[bool] = True
    roles: ClassVar[tuple[str, ...]] = ("reader", "roles/storage.objectViewer", "roles/storage.legacyObjectReader")
    kind: Literal["gcs"] = "gcs"
    project: str | None = Field(default=None, description="Project that owns a bucket ppipe creates.")
    project_number: str | None = Field(
        default=None, description="The organiser's project number: a bucket ppipe did not create must belong to it."
    )
    location_: str | None = Field(default=None, alias="location", description="Bucket location, e.g. EU.")
    credentials_block: str | None = Field(default=None, description="Name of a Prefect block holding a GCP key.")

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("project_number", mode="before")
    @classmethod
    def _project_number(cls, number: object) -> object:
        if number is None:
            return None
        text = str(number) if isinstance(number, int) and not isinstance(number, bool) else number
        if not isinstance(text, str) or not _PROJECT_NUMBER.match(text):
            raise ValueError("use the project's number (digits, shown in the console's project info), not its id")
        return text

    @classmethod
    def check_bucket(cls, name: str) -> str:
        return check_gcs_bucket(name)

    @classmethod
    def check_identity(cls, identity: str, via: str | None = None) -> str:
        return check_member(identity)
