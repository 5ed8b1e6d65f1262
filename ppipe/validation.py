"""What every declared spec shares (the challenge model and each destination kind's spec).

A strict, immutable pydantic base and paths resolved against the challenge file's folder
(pass ``base_dir`` in the validation context). Pure: no I/O beyond resolving a path.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Model(BaseModel):
    """Strict base: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)  # the input may be a URL with a credential


def base_dir(info: ValidationInfo) -> Path:
    """The folder relative paths are resolved against: the challenge file's, else the current one."""
    return Path((info.context or {}).get("base_dir") or Path.cwd())


def absolute_path(path: Path, info: ValidationInfo) -> Path:
    """``path`` made absolute against the challenge file's folder; a symlink loop is an error."""
    try:
        path = path.expanduser()
    except RuntimeError:  # '~someone' with no such user
        raise ValueError(f"{str(path)!r}: no such user {str(path).split('/', 1)[0][1:]!r} to expand '~' for") from None
    try:
        return path if path.is_absolute() else (base_dir(info) / path).resolve()
    except RuntimeError:  # Python 3.11 raises RuntimeError on a symlink loop
        raise ValueError(f"{str(path)!r} cannot be read: it is a loop of symbolic links") from None
    except OSError as exc:
        raise ValueError(f"{str(path)!r} cannot be read: {exc.strerror or exc}") from None
