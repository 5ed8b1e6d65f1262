"""How S3 failures read, and which are worth retrying: the one table for the S3 destination.

``translate`` turns whatever boto3/s3fs/aiohttp raised into (one line without secrets,
transient?). Transient: throttling, 5xx, timeouts, refused connections. Terminal: refused
credentials, a missing bucket, access denied, any other 4xx: another attempt would meet them
again, so the line says what to fix.
"""

from __future__ import annotations

from typing import Callable

#: Codes that mean the keys themselves were refused.
CREDENTIAL_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "UnrecognizedClientException", "AuthFailure",
}
#: Codes another attempt may not meet.
TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted",
    "500", "502", "503", "504",
}
DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}
CONNECTION_ERRORS = {"ClientConnectorError", "ServerTimeoutError", "ConnectTimeoutError", "EndpointConnectionError",
                     "ConnectionRefusedError", "TimeoutError", "FSTimeoutError", "ReadTimeoutError"}


def client_error(exc: BaseException):
    """The botocore ClientError behind ``exc`` (s3fs wraps them in OSError), or None."""
    from botocore.exceptions import ClientError

    seen = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def code_of(exc) -> str:
    """The S3 error code of a ClientError (its HTTP status when it has none)."""
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def status_of(exc) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def translate(exc: BaseException, what: str, *, bucket: str, endpoint: str, source: str,
              redact: Callable[[str], str]) -> tuple[str, bool]:
    """(one line saying why ``what`` failed and what to do, whether a retry may help)."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError

    found = client_error(exc)
    if found is not None:
        code = code_of(found)
        if code in CREDENTIAL_CODES:
            return f"cannot {what}: credentials refused ({code}; from {source}): fix the AWS keys or profile", False
        if code == "NoSuchBucket":
            return f"cannot {what}: bucket {bucket} does not exist", False
        if code in DENIED_CODES:
            return f"cannot {what}: access denied ({code}): give these credentials access to {bucket}", False
        message = str(found.response.get("Error", {}).get("Message") or "")
        detail = redact(message.splitlines()[0][:200]) if message else ""
        transient = code in TRANSIENT_CODES or status_of(found) >= 500
        return f"cannot {what}: {code}{': ' + detail if detail else ''}", transient
    if is_connection_error(exc):
        return f"cannot {what}: cannot reach {endpoint} ({type(exc).__name__})", True
    if isinstance(exc, NoCredentialsError):
        return f"cannot {what}: no credentials: set AWS keys, a profile or a credentials block", False
    if isinstance(exc, BotoCoreError):
        return f"cannot {what}: {type(exc).__name__}", True
    text = redact(str(exc).splitlines()[0][:200]) if str(exc) else ""
    return f"cannot {what}: {type(exc).__name__}{': ' + text if text else ''}", True


def is_connection_error(exc: BaseException) -> bool:
    """True for the connection failures boto3/s3fs/aiohttp raise (refused, DNS, timeout)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    seen = exc
    while seen is not None:
        if type(seen).__name__ in CONNECTION_ERRORS or isinstance(seen, (ConnectionError, BotoConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
