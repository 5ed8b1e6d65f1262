"""What the S3 and GCS destinations share: a challenge's prefix in a bucket, through fsspec.

Subclasses provide the filesystem (``fs``) and ``_cause``, which turns a provider error into
the one-line reason shown in a DestinationError.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ppipe.destinations.base import Destination, ObjectInfo, sha256_of
from ppipe.errors import DestinationError

#: Read back in large blocks: one ranged GET per 8 MiB rather than one per chunk hashed.
READ_BLOCK = 8 * 2**20


class BucketPrefix(Destination):
    """One challenge's objects under ``<bucket>/<prefix>/`` of an object store."""

    fs: Any  # an fsspec filesystem over the store, set up by the subclass

    def __init__(self, spec, challenge: str):
        super().__init__(spec, challenge)
        self.bucket = spec.bucket_for(challenge)
        self.prefix = spec.prefix_for(challenge)

    def _cause(self, what: str, exc: BaseException) -> str:
        """One line saying why ``what`` failed, without secrets."""
        raise NotImplementedError

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Map provider errors raised inside to one-line DestinationErrors (no secrets)."""
        try:
            yield
        except DestinationError:
            raise
        except Exception as exc:
            raise DestinationError(self.uri, self._cause(what, exc)) from None

    def key_of(self, name: str) -> str:
        """The object key of release ``name`` in the bucket."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def _path(self, name: str) -> str:
        return f"{self.bucket}/{self.key_of(name)}"

    def stat(self, name: str) -> ObjectInfo | None:
        """Size and sha256 of the stored bytes (downloaded and hashed), or None if absent."""
        with self._errors(f"read {name}"):
            self.fs.invalidate_cache(self._path(name))
            try:
                with self.fs.open(self._path(name), "rb", block_size=READ_BLOCK) as stream:
                    size, digest = sha256_of(stream)
            except FileNotFoundError:
                return None
        return ObjectInfo(size, digest)

    def read(self, name: str) -> bytes:
        """The stored bytes of release ``name`` (for verification; FileNotFoundError if absent)."""
        return self.fs.cat_file(self._path(name))

    def delete(self, name: str) -> None:
        """Remove the object if present. Idempotent."""
        with self._errors(f"delete {name}"):
            try:
                self.fs.rm_file(self._path(name))
            except FileNotFoundError:
                pass
