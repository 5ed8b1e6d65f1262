"""The one interface every destination kind implements.

A destination is one place (folder, bucket prefix, Drive folder) where one challenge's
release files go. Adapters are thin: fsspec filesystems where they fit, the provider's own
API only where fsspec has no verb (bucket policies, IAM, Drive permissions). Provider errors
become :class:`ppipe.errors.DestinationError` in one choke point (:meth:`Destination._errors`),
transient or terminal as the kind's error table (``<kind>/errors.py``) says.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from ppipe.errors import DestinationError, PpipeError


@dataclass(frozen=True)
class ObjectInfo:
    """What is actually stored under a release name: its size and the sha256 of its bytes."""

    size: int
    sha256: str


@dataclass(frozen=True)
class GrantResult:
    """What a grant did, in words, and (iam-user-policy only) where a new access key was written;
    ``access``: where the participant reads when it is not the destination itself (an S3 access
    point's ``s3://<alias>/<prefix>``)."""

    description: str
    credentials_file: Path | None = None
    access: str | None = None


class Destination(ABC):
    """One challenge's releases at one place. Constructed from a destination spec and the challenge name."""

    kind: ClassVar[str]
    #: What the kind's error table understands; anything else passes the choke point untouched.
    provider_errors: ClassVar[tuple[type[Exception], ...]] = (Exception,)

    def __init__(self, spec, challenge: str):
        self.spec = spec
        self.challenge = challenge

    @property
    def uri(self) -> str:
        """The challenge's location, e.g. ``s3://bucket/prefix`` (same string as ``spec.location``)."""
        return self.spec.location(self.challenge)

    @property
    def access_scope(self) -> str:
        """The access document grants here change (a bucket policy, a folder's permissions):
        changed by one ppipe process at a time (see :meth:`ppipe.ledger.Ledger.access_lock`)."""
        return self.uri

    def uri_of(self, name: str) -> str:
        """The URI of the release file ``name``."""
        return f"{self.uri}/{name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri}>"

    def _translate(self, what: str, exc: Exception) -> tuple[str, bool]:
        """(one line saying why ``what`` failed, without secrets; whether a retry may help):
        the kind's error table."""
        raise NotImplementedError

    @contextmanager
    def _errors(self, what: str, where: str | None = None) -> Iterator[None]:
        """The one choke point: a provider error raised inside becomes a one-line DestinationError
        about ``where`` (default: this destination), transient or terminal."""
        try:
            yield
        except PpipeError:
            raise
        except self.provider_errors as exc:
            cause, transient = self._translate(what, exc)
            raise DestinationError(where or self.uri, cause, transient=transient) from None

    @abstractmethod
    def prepare(self) -> None:
        """Create the bucket/folder for the challenge if missing. Idempotent. Returns None.

        Raises DestinationError when the location cannot be used (refused, owned by someone
        else, parent folder missing, bad credentials).
        """

    @abstractmethod
    def upload(self, local_file: Path, name: str) -> str:
        """Store ``local_file`` as release ``name``; return the object's URI (``uri_of(name)``).

        Atomic: a reader sees either no object or the whole file under ``name``, never a
        partial one. Uploading the same name again replaces the object (no duplicate).
        """

    def upload_many(self, files: list[tuple[Path, str]]) -> None:
        """Store each ``(local_file, name)``; a name may hold ``/`` (``release_3/images/a.png``):
        the kind makes the sub-folders it needs. Each object is atomic as with :meth:`upload`.
        Kinds with a faster bulk path override this one-by-one default."""
        for local_file, name in files:
            self.upload(local_file, name)

    @abstractmethod
    def stat(self, name: str) -> ObjectInfo | None:
        """Size and sha256 of the bytes stored under ``name`` (read back), or None if absent."""

    def exists(self, name: str, sha256: str) -> bool:
        """True when ``name`` is stored with exactly the content whose sha256 is given.

        Adapters may answer from checksum metadata written at upload; the default reads back.
        """
        info = self.stat(name)
        return info is not None and info.sha256 == sha256

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove release ``name`` if present (used when a challenge is deleted). Idempotent."""

    @abstractmethod
    def grant(self, identity: str, role: str = "reader", *, via: str | None = None, notify: bool = False) -> GrantResult:
        """Give ``identity`` read access (``role``) to this challenge's location only. Idempotent."""

    @abstractmethod
    def revoke(self, identity: str, *, via: str | None = None) -> None:
        """Remove the access ppipe granted to ``identity`` here, and nothing else. Idempotent."""
