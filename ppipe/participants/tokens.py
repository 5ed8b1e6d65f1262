"""API tokens: 256 random bits, shown once, kept only as a sha256 hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "ppipe_"
#: Bytes of randomness in a token (256 bits).
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh token; the prefix makes leaked tokens easy to spot by secret scanners."""
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the ledger keeps: the token's sha256 (hex). Tokens are random, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    """Constant-time check of ``token`` against a stored hash."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def looks_like_token(token: str) -> bool:
    """Cheap shape check before touching the ledger (length bounds a hostile header)."""
    return token.startswith(PREFIX) and 20 <= len(token) <= 128
