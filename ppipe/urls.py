"""URLs in a challenge are checked for credentials: a challenge is stored in the ledger, shown by
``ppipe show`` and sent as deployment metadata, so a URL must never carry a secret.

Pure: no network. Messages never quote the part of the URL that carries the secret.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

#: Query parameters that carry a credential: presigned S3 and GCS URLs, Azure SAS tokens,
#: and the usual token and key parameters.
SECRET_QUERY_KEYS = {
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    "signature", "sig", "token", "access_token", "id_token", "auth", "apikey", "api_key", "key", "password",
    "secret", "credential", "credentials", "session", "sessionid", "session_id",
}
_SECRET_HINT = "set it in the environment, a profile or a Prefect block, and give the URL without it"


def credential_in(url: str) -> str | None:
    """What in ``url`` is a credential ('user:password@', 'the X-Amz-Signature parameter'), or None."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "a user name or password (user:password@)"
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    exact = [name for name in names if name.lower() in SECRET_QUERY_KEYS]
    signed = [name for name in names if name.lower().startswith(("x-amz-", "x-goog-"))]
    found = (exact or signed or [None])[0]
    return f"the {found} query parameter (a signed or token URL)" if found else None


def check_source_url(url: str) -> str:
    """``url`` unchanged; ValueError when it carries a credential (never quoting it)."""
    found = credential_in(url)
    if found:
        raise ValueError(f"the URL carries a credential in {found}: {_SECRET_HINT}")
    return url


def check_endpoint_url(url: str) -> str:
    """An endpoint URL is ``http(s)://host[:port][/path]``: no credential, no query, no spaces."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https:// (for example http://127.0.0.1:9000)")
    if "@" in parts.netloc:
        raise ValueError(f"carries a credential in a user name or password (user:password@): {_SECRET_HINT}")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment: give scheme, host and port only")
    if not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("has no valid host name (for example http://127.0.0.1:9000)")
    try:
        parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url.rstrip("/")


def shown(url: str) -> str:
    """``url`` as messages show it: no user:password@, no query string."""
    return re.sub(r"(://)[^/@]*@", r"\1", url).split("?", 1)[0]
