"""The secret guard: a challenge file names where credentials are, never holds them.

A challenge is stored in the ledger and shown by ``ppipe show``; a storage option that
carries a secret belongs in the environment, a profile or a Prefect block.
"""

from __future__ import annotations

from typing import Any

# Storage-option keys that would carry a secret.
SECRET_OPTION_KEYS = {
    "key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "session_token", "access_key", "secret_key", "client_secret",
    "private_key", "credentials",
}


def no_secret_options(options: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``options`` unchanged; ValueError naming a secret-looking key at any depth (client_kwargs, ...)."""
    for key, value in options.items():
        if str(key).lower() == "token" and _is_token_reference(value):
            continue
        if str(key).lower() in SECRET_OPTION_KEYS:
            raise ValueError(
                f"'{path}{key}' is a secret: set it in the environment, a profile or a Prefect block, "
                "not in the challenge file"
            )
        if isinstance(value, dict):
            no_secret_options(value, f"{path}{key}.")
    return options


def _is_token_reference(value: Any) -> bool:
    """gcsfs's ``token`` may name a method ("anon", "google_default") or a key file: not secrets."""
    return isinstance(value, str) and (
        value in ("anon", "google_default", "cloud", "cache", "browser") or value.endswith(".json")
    )
