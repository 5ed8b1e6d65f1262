"""The Google Drive destination as declared: a folder per challenge under a parent folder."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ppipe import naming
from ppipe.destinations.spec import DestinationSpec

_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def check_drive_id(value: str) -> str:
    if not _DRIVE_ID.match(value):
        raise ValueError(f"{value!r} is not a Drive folder id: letters, digits, '-' and '_' only")
    return value


def check_member(identity: str) -> str:
    """A Drive participant: an e-mail (``user:`` optional) or ``group:<e-mail>``."""
    identity = identity.strip()
    kind, sep, who = identity.partition(":")
    if sep and kind in ("user", "group"):
        return f"{kind}:{naming.check_email(who)}" if kind == "group" else naming.check_email(who)
    return naming.check_email(identity)


class DriveDestination(DestinationSpec):
    """A Google Drive folder per challenge, under a parent folder the organiser owns."""

    can_grant: ClassVar[bool] = True
    roles: ClassVar[tuple[str, ...]] = ("reader", "commenter")
    notifies: ClassVar[bool] = True
    kind: Literal["drive"] = "drive"
    parent: str = Field(description="Id of the Drive folder under which the challenge folder is made.")
    folder: str | None = Field(default=None, description="Title of the challenge folder; defaults to challenge_<name>.")
    service_account_file: str | None = Field(
        default=None,
        description="Path of a service-account key file (or set PPIPE_DRIVE_SERVICE_ACCOUNT_FILE / "
        "GOOGLE_APPLICATION_CREDENTIALS). Only the path is stored, never the key.",
    )

    @field_validator("parent")
    @classmethod
    def _parent(cls, parent: str) -> str:
        return check_drive_id(parent)

    @field_validator("folder")
    @classmethod
    def _folder(cls, folder: str | None) -> str | None:
        return None if folder is None else naming.check_folder_name(folder)

    def folder_for(self, challenge: str) -> str:
        return self.folder or f"challenge_{challenge}"

    def location(self, challenge: str) -> str:
        return f"drive://{self.parent}/{self.folder_for(challenge)}"

    @classmethod
    def check_identity(cls, identity: str, via: str | None = None) -> str:
        return check_member(identity)
