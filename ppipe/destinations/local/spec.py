"""The local destination as declared: a local or shared folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ppipe import naming
from ppipe.destinations.spec import DestinationSpec
from ppipe.validation import absolute_path


class LocalDestination(DestinationSpec):
    """A local or shared folder; releases go to ``<path>/<folder>/``. No per-identity access."""

    kind: Literal["local"] = "local"
    path: Path = Field(description="The folder (relative paths are relative to the challenge file).")
    folder: str | None = Field(default=None, description="Sub-folder for this challenge; defaults to its name.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path, info: ValidationInfo) -> Path:
        return absolute_path(path, info)

    @field_validator("folder")
    @classmethod
    def _folder(cls, folder: str | None) -> str | None:
        return None if folder is None else naming.check_folder_name(folder)

    def location(self, challenge: str) -> str:
        return str(self.path / (self.folder or challenge))
