"""Generic name checks shared by the challenge model and the destination kinds' specs.

A name the user wrote that a provider would refuse is an error, never silently renamed.
Provider-specific rules (bucket names, Drive ids, participant identities) live with their
kind in ``ppipe/destinations/<kind>/spec.py``.
"""

from __future__ import annotations

import ipaddress
import re
import string

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_MAX_NAME = 200
_FOLDER = re.compile(r"^[^/\\\x00-\x1f]{1,200}$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.'()-]+$")
#: Characters S3 and IAM read as wildcards or policy variables in a resource ARN.
_WILDCARDS = set("*?$")


def check_prefix(prefix: str) -> str:
    """An object-key prefix: parts of safe characters separated by '/', no '.' or '..' parts."""
    parts = prefix.strip("/").split("/") if prefix.strip("/") else []
    if _WILDCARDS & set(prefix):
        raise ValueError(f"{prefix!r} is not a valid prefix: wildcard characters (* ? $) would widen the grants on it")
    for part in parts:
        if part in (".", "..") or not _PREFIX_PART.match(part):
            raise ValueError(f"{prefix!r} is not a valid prefix: use letters, digits and !_.'()- separated by '/'")
    return "/".join(parts)


def prefixes_overlap(first: str, second: str) -> bool:
    """True when one prefix is the other, lies under it, or is empty (the whole bucket)."""
    if not first or not second or first == second:
        return True
    return second.startswith(first + "/") or first.startswith(second + "/")


def check_folder_name(name: str) -> str:
    if len(name) > _MAX_NAME:
        raise ValueError(f"{name[:40]!r}... is not a valid folder name: at most {_MAX_NAME} characters, it has {len(name)}")
    if name in (".", "..") or not _FOLDER.match(name):
        raise ValueError(f"{name!r} is not a valid folder name: no '/', '\\', control characters, '.' or '..'")
    return name


def check_email(value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not a valid e-mail address")
    return value


def check_name_template(template: str) -> str:
    """A release file-name template: must contain {index}; only {index} and {challenge}."""
    only = f"{template!r}: only {{index}} and {{challenge}} may be used"
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
        for field in fields:
            if field not in ("index", "challenge"):
                raise ValueError(f"not {{{field}}}")
        sample = template.format(index=0, challenge="c")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"{only} ({exc})") from None
    if "index" not in fields:
        raise ValueError(f"{template!r} must contain {{index}} so that each release has its own name")
    check_folder_name(sample)
    if sample.startswith("."):
        raise ValueError(f"{template!r} must not make hidden files")
    # The longest name it can make: a 50-character challenge name, the 100000th release.
    longest = template.format(index=99_999, challenge="c" * 50)
    if len(longest) > _MAX_NAME:
        raise ValueError(
            f"{template!r} makes names of up to {len(longest)} characters (50-character challenge name): "
            f"at most {_MAX_NAME}"
        )
    return template


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
