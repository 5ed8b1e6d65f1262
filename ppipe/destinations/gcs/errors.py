"""How GCS failures read, and which are worth retrying: the one table for the GCS destination.

``translate`` turns what google-cloud-storage, google-auth or gcsfs raised into (one line,
transient?). Transient: 429, 5xx, timeouts, refused connections, an exhausted client retry.
Terminal: refused credentials, access denied, a missing bucket, any other 4xx.
"""

from __future__ import annotations

CONNECTION_ERRORS = {"ConnectionError", "ClientConnectorError", "ConnectTimeout", "ServerTimeoutError", "FSTimeoutError"}


def translate(exc: BaseException, what: str, *, bucket: str, endpoint: str, source: str) -> tuple[str, bool]:
    """(one line saying why ``what`` failed and what to do, whether a retry may help)."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, auth.TransportError) or isinstance(exc, api.RetryError) or is_connection_error(exc):
        return f"cannot {what}: cannot reach {endpoint} ({type(exc).__name__})", True
    if isinstance(exc, auth.GoogleAuthError):
        return f"cannot {what}: credentials refused ({type(exc).__name__}; from {source}): fix the service-account key", False
    if isinstance(exc, api.Unauthorized):
        return f"cannot {what}: credentials refused (401; from {source}): fix the service-account key", False
    if isinstance(exc, api.Forbidden):
        return f"cannot {what}: access denied (403): {first_line(exc.message)}", False
    if isinstance(exc, api.GoogleAPICallError):
        return f"cannot {what}: {exc.code}: {first_line(exc.message)}", _transient_status(exc.code)
    if isinstance(exc, FileNotFoundError):  # gcsfs: 404 on a write, i.e. no such bucket
        return f"cannot {what}: bucket {bucket} does not exist", False
    code = getattr(exc, "code", None)  # gcsfs HttpError
    if code in (401, 403):
        return f"cannot {what}: {'credentials refused' if code == 401 else 'access denied'} ({code})", False
    return f"cannot {what}: {type(exc).__name__}: {first_line(str(exc))}", not isinstance(code, int) or _transient_status(code)


def _transient_status(code: object) -> bool:
    return isinstance(code, int) and (code == 429 or code == 408 or code >= 500)


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""


def is_connection_error(exc: BaseException) -> bool:
    """True for connection failures (refused, DNS, timeout) from requests, aiohttp or the OS."""
    seen = exc
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError)) or type(seen).__name__ in CONNECTION_ERRORS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
