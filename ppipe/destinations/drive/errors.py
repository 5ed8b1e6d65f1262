"""How Google Drive failures read, and which are worth retrying: the one table for Drive.

``translate`` turns what pydrive2, googleapiclient, oauth2client or httplib2 raised into (one
line, transient?). Transient: 429, 5xx, Drive's rate-limit 403s, unreachable hosts. Terminal:
refused service-account credentials, any other 4xx (a missing or unshared folder, a bad id).
"""

from __future__ import annotations

import httplib2
from googleapiclient.errors import HttpError
from oauth2client.client import AccessTokenRefreshError
from pydrive2.auth import AuthError
from pydrive2.files import ApiRequestError

#: Drive's 403 reasons that mean "slow down", not "forbidden".
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "sharingRateLimitExceeded", "backendError"}
#: What :func:`translate` understands; anything else passes through the choke point untouched.
PROVIDER_ERRORS = (ApiRequestError, HttpError, AccessTokenRefreshError, AuthError, httplib2.HttpLib2Error, OSError)


def clip(text: object, limit: int = 200) -> str:
    """One line of at most ``limit`` characters (provider messages can be long or multi-line)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def api_code(exc: Exception) -> int | None:
    """The HTTP status of a pydrive2 ApiRequestError or googleapiclient HttpError, else None."""
    if isinstance(exc, ApiRequestError):
        return exc.error.get("code")
    if isinstance(exc, HttpError):
        return exc.resp.status
    return None


def _reasons(exc: Exception) -> set[str]:
    if isinstance(exc, ApiRequestError):
        return {e.get("reason") for e in exc.error.get("errors", []) if isinstance(e, dict)}
    if isinstance(exc, HttpError):
        return {d.get("reason") for d in (exc.error_details or []) if isinstance(d, dict)}
    return set()


def _api_cause(exc: Exception) -> str:
    """``Drive answered <code>: <message>`` from an ApiRequestError or HttpError."""
    if isinstance(exc, ApiRequestError):
        return f"Drive answered {exc.error.get('code', '?')}: {clip(exc.error.get('message', exc))}"
    return f"Drive answered {exc.resp.status}: {clip(exc._get_reason())}"


def translate(exc: Exception, action: str) -> tuple[str, bool]:
    """(one line saying why ``action`` failed, whether a retry may help) for a PROVIDER_ERRORS error."""
    if isinstance(exc, (ApiRequestError, HttpError)):
        code = api_code(exc) or 0
        transient = code in (408, 429) or code >= 500 or (code == 403 and bool(_reasons(exc) & RATE_LIMIT_REASONS))
        return f"{action}: {_api_cause(exc)}", transient
    if isinstance(exc, (AccessTokenRefreshError, AuthError)):
        # The message is Google's OAuth error (e.g. "invalid_grant: Invalid JWT Signature.").
        return f"{action}: Google refused the service-account credentials ({clip(exc)}): fix the key file", False
    return f"{action}: cannot reach Google Drive ({type(exc).__name__}: {clip(exc)})", True
