"""Signing every call, so a participant's service can tell ppipe from strangers.

``X-Ppipe-Timestamp: <unix seconds>`` and
``X-Ppipe-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

Where the secret lives: nowhere. ppipe must sign with it, so a hash would not do, and the
rule is that secrets never reach the ledger. Each endpoint's secret is *derived*:
HMAC-SHA256(signing key, endpoint id + secret version). The signing key is 32 random
bytes in ``PPIPE_HOME/keys/endpoint-signing.key`` (0600 in a 0700 folder), made on first
use; the ledger holds only the endpoint id and the version. Rotating an endpoint's secret
is bumping its version; rotating every secret is replacing the key file. Whoever runs the
flow or the API needs the same key file (same PPIPE_HOME, or a copy).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from ppipe import settings

TIMESTAMP_HEADER = "X-Ppipe-Timestamp"
SIGNATURE_HEADER = "X-Ppipe-Signature"
SECRET_PREFIX = "ppwh_"
_KEY_BYTES = 32


def key_path() -> Path:
    return settings.home() / "keys" / "endpoint-signing.key"


def signing_key(path: Path | None = None) -> bytes:
    """The installation's signing key, created (0600, in a 0700 folder) on first use."""
    path = path or key_path()
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create_key(path)
    if len(key) != _KEY_BYTES:
        raise ValueError(f"{path}: expected {_KEY_BYTES} bytes, found {len(key)}")
    return key


def _create_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    try:  # O_EXCL: two processes racing to create it agree on whichever file won
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def endpoint_secret(endpoint_id: str, version: int, key: bytes | None = None) -> str:
    """The secret an endpoint verifies signatures with (shown to its participant once)."""
    material = hmac.new(key or signing_key(), f"endpoint:{endpoint_id}:{version}".encode(), hashlib.sha256)
    return SECRET_PREFIX + material.hexdigest()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: float = 300, now: float | None = None) -> bool:
    """What a participant's service does (docs/endpoints.md has it in five lines)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))
