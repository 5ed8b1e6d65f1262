"""Errors a user can act on.

Every error ppipe raises on purpose derives from :class:`PpipeError`. Its message is one
line that names the thing at fault (a field, a file, a source, a destination) and the rule
it broke; the CLI prints it and exits with code 2, without a traceback.
"""

from __future__ import annotations


#: What a failure worth retrying says: the store or the network did not answer in time.
TRANSIENT_MARKERS = ("cannot reach", "cannot connect", "timed out", "does not answer", "slowdown",
                     "service unavailable", "internal error", "throttl")


class PpipeError(Exception):
    """A user-facing error: one line, CLI exit code 2."""

    exit_code = 2

    @property
    def transient(self) -> bool:
        """Whether trying again may help: only when the network or a store did not answer. A changed
        or missing source, a missing bucket, refused credentials or bad input fail the same way again."""
        text = str(self).lower()
        return any(marker in text for marker in TRANSIENT_MARKERS)


def worth_retrying(exc: BaseException | None) -> bool:
    """Whether a failed step should be retried: ppipe's own errors only when transient, anything
    else (an unforeseen library error) yes."""
    if isinstance(exc, PpipeError):
        return exc.transient
    return exc is None or isinstance(exc, Exception)


class SpecError(PpipeError):
    """A challenge definition breaks a rule: ``<file>: <field>: <rule>``."""

    def __init__(self, field: str, rule: str, file: str | None = None):
        self.field, self.rule, self.file = field, rule, file
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{field}: {rule}" if field else f"{where}{rule}")


class SourceError(PpipeError):
    """The source dataset cannot be read, is malformed, or changed after staging."""

    def __init__(self, source: str, problem: str):
        self.source, self.problem = source, problem
        super().__init__(f"source {source}: {problem}")


class DestinationError(PpipeError):
    """A destination refused an operation, or its configuration is wrong."""

    def __init__(self, destination: str, cause: str):
        self.destination, self.cause = destination, cause
        super().__init__(f"destination {destination}: {cause}")


class GrantRefused(DestinationError):
    """A grant that cannot succeed as asked (bad principal or role, a user ppipe did not make,
    another account, a policy over the provider's size limit): terminal, never retried."""


class ConfigError(PpipeError):
    """A setting is missing or invalid; the message lists every place that was looked at."""


class NotFoundError(PpipeError):
    """No challenge (or release) of that name in the ledger."""


class ConflictError(PpipeError):
    """The ledger already holds something of that name, or a state change is not allowed."""
