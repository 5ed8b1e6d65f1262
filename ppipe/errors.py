"""Errors a user can act on.

Every error ppipe raises on purpose derives from :class:`PpipeError`. Its message is one
line that names the thing at fault (a field, a file, a source, a destination) and the rule
it broke; the CLI prints it and exits with code 2, without a traceback.

Transient or terminal: a failure another attempt may not meet (a timeout, a 5xx, throttling,
a refused connection) is *transient* (:class:`TransientError`, or ``transient=True`` on a
DestinationError); anything else ppipe raises is *terminal*: deterministic, so retrying only
delays the message that names the fix. :func:`is_transient` is the one rule the Prefect tasks
retry by; each destination kind decides it for its provider's errors in its ``errors.py``.
"""

from __future__ import annotations


#: Words of a message that mean the store or the network did not answer: the rule for a
#: PpipeError nobody classified explicitly (an error table says transient=True/False itself).
TRANSIENT_MARKERS = ("cannot reach", "cannot connect", "timed out", "does not answer", "slowdown",
                     "service unavailable", "internal error", "throttl")


class PpipeError(Exception):
    """A user-facing error: one line, CLI exit code 2. Terminal unless :attr:`transient`."""

    exit_code = 2
    #: True/False when the raiser knows (an adapter's error table); None: judged by the message.
    explicitly_transient: bool | None = None

    @property
    def transient(self) -> bool:
        """Whether trying again may help: only when the network or a store did not answer. A changed
        or missing source, a missing bucket, refused credentials or bad input fail the same way again."""
        if self.explicitly_transient is not None:
            return self.explicitly_transient
        text = str(self).lower()
        return any(marker in text for marker in TRANSIENT_MARKERS)


class TransientError(PpipeError):
    """A failure another attempt may not meet: a timeout, a 5xx, throttling, a refused connection."""

    explicitly_transient = True


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


class SourceMismatch(SourceError):
    """This machine's copy of a source is not the one its challenge was created from (another
    version at the same path or URL): terminal, never cut from, never retried."""

    explicitly_transient = False

    def __init__(self, challenge: str, source: str, found: str, recorded: str):
        super().__init__(source, (
            f"is not the version challenge {challenge} was created from (sha256 {found[:16]} here, "
            f"{recorded[:16]} recorded at create): nothing is cut from it; give this machine the same file"))


class DestinationError(PpipeError):
    """A destination refused an operation, or its configuration is wrong (terminal), or could not
    be reached or was overloaded (``transient=True``)."""

    def __init__(self, destination: str, cause: str, *, transient: bool | None = None):
        self.destination, self.cause, self.explicitly_transient = destination, cause, transient
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (the driver's own where SQLAlchemy wraps one), else its type's name."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_transient(exc: BaseException | None) -> bool:
    """Whether retrying ``exc`` can help: ppipe's own errors say so (terminal unless transient);
    anything else (a task timeout, an error no adapter mapped) is retried."""
    if isinstance(exc, PpipeError):
        return exc.transient
    return exc is None or isinstance(exc, Exception)
