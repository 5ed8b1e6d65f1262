"""Names the providers accept: checks for names a user gives, derivation for names ppipe makes.

A name the user wrote that a provider would refuse is an error, never silently renamed;
a name ppipe derives is valid by construction and shown in ``ppipe plan``.
"""

from __future__ import annotations

import ipaddress
import re
import string

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_IAM_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|user/[\w+=,.@/-]{1,512}|role/[\w+=,.@/-]{1,512}|assumed-role/[\w+=,.@/-]+)$")
_IAM_USER = re.compile(r"^[\w+=,.@-]{1,64}$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_GCS_MEMBER_KINDS = ("user", "group", "serviceAccount")
_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_NAME = 200
_FOLDER = re.compile(r"^[^/\\\x00-\x1f]{1,200}$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


def check_s3_bucket(name: str) -> str:
    """Return ``name`` if S3 accepts it as a bucket name, else raise ValueError saying why."""
    rule = "S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if not _S3_BUCKET.match(name) or ".." in name or ".-" in name or "-." in name:
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"{name!r} is not a valid bucket name: reserved prefix or suffix")
    if _is_ip(name):
        raise ValueError(f"{name!r} is not a valid bucket name: it looks like an IP address")
    return name


def check_gcs_bucket(name: str) -> str:
    """Return ``name`` if GCS accepts it as a bucket name, else raise ValueError saying why."""
    rule = "GCS bucket names are 3-63 lowercase letters, digits, hyphens, underscores and dots, starting and ending with a letter or digit"
    if not _GCS_BUCKET.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if any(len(part) > 63 for part in name.split(".")) or ("." not in name and len(name) > 63):
        raise ValueError(f"{name!r} is not a valid bucket name: {rule}")
    if name.startswith("goog") or "google" in name or _is_ip(name):
        raise ValueError(f"{name!r} is not a valid bucket name: GCS reserves names with 'goog'/'google' and IP addresses")
    return name


def derive_bucket(challenge: str) -> str:
    """A bucket name valid on both S3 and GCS, derived from a challenge slug."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"ppipe-{challenge}".lower()).strip("-")[:63].rstrip("-")
    return check_s3_bucket(name)


def check_prefix(prefix: str) -> str:
    """An object-key prefix: parts of safe characters separated by '/', no '.' or '..' parts."""
    parts = prefix.strip("/").split("/") if prefix.strip("/") else []
    for part in parts:
        if part in (".", "..") or not _PREFIX_PART.match(part):
            raise ValueError(f"{prefix!r} is not a valid prefix: use letters, digits and !_.*'()- separated by '/'")
    return "/".join(parts)


def check_folder_name(name: str) -> str:
    if len(name) > _MAX_NAME:
        raise ValueError(f"{name[:40]!r}... is not a valid folder name: at most {_MAX_NAME} characters, it has {len(name)}")
    if name in (".", "..") or not _FOLDER.match(name):
        raise ValueError(f"{name!r} is not a valid folder name: no '/', '\\', control characters, '.' or '..'")
    return name


def check_drive_id(value: str) -> str:
    if not _DRIVE_ID.match(value):
        raise ValueError(f"{value!r} is not a Drive folder id: letters, digits, '-' and '_' only")
    return value


def check_email(value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not a valid e-mail address")
    return value


def check_identity(service: str, identity: str, via: str = "bucket-policy") -> str:
    """Validate (and normalise) a participant identity for a service; ValueError if malformed."""
    identity = identity.strip()
    if service == "drive":
        kind, sep, who = identity.partition(":")
        if sep and kind in ("user", "group"):
            return f"{kind}:{check_email(who)}" if kind == "group" else check_email(who)
        return check_email(identity)
    if service == "gcs":
        kind, sep, who = identity.partition(":")
        if not sep:
            return f"user:{check_email(identity)}"
        if kind not in _GCS_MEMBER_KINDS:
            raise ValueError(f"{identity!r} is not a GCS member: use user:, group: or serviceAccount: and an e-mail")
        return f"{kind}:{check_email(who)}"
    if via == "iam-user-policy":
        if identity.startswith("arn:"):
            match = _IAM_ARN.match(identity)
            if not match or not match.group(2).startswith("user/"):
                raise ValueError(f"{identity!r} is not an IAM user ARN")
            return identity.rsplit("/", 1)[1]
        if not _IAM_USER.match(identity):
            raise ValueError(f"{identity!r} is not an IAM user name (1-64 of letters, digits and +=,.@_-)")
        return identity
    if _ACCOUNT_ID.match(identity) or _IAM_ARN.match(identity):
        return identity
    raise ValueError(f"{identity!r} is not an AWS principal: use an IAM ARN (arn:aws:iam::123456789012:user/alice) or a 12-digit account id")


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


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
