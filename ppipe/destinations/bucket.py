"""What the S3 and GCS destinations share: a bucket and a prefix per challenge.

The spec side (:class:`BucketDestination`: bucket derived when omitted, prefix checked) and
the adapter side (:class:`BucketPrefix`, through fsspec). Adapter subclasses provide the
filesystem (``fs``) and ``_translate``, their error table's verdict on a provider error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ppipe import naming, urls
from ppipe.destinations.base import Destination, ObjectInfo
from ppipe.durable import sha256_of
from ppipe.destinations.spec import DestinationSpec


def derive_bucket(challenge: str) -> str:
    """A bucket name valid on both S3 and GCS, derived from a challenge slug (valid by construction:
    ``ppipe-`` then lowercase letters, digits and single hyphens, at most 63 characters)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"ppipe-{challenge}".lower()).strip("-")[:63].rstrip("-")


class BucketDestination(DestinationSpec):
    """What S3 and GCS destinations share: a bucket (derived if omitted) and a prefix per challenge."""

    scheme: ClassVar[str]
    bucket: str | None = Field(default=None, description="Bucket name; derived from the challenge name when omitted.")
    endpoint_url: str | None = Field(default=None, description="For compatible stores, emulators and test servers.")
    prefix: str | None = Field(default=None, description="Key prefix for this challenge; defaults to its name.")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, bucket: str | None) -> str | None:
        return None if bucket is None else cls.check_bucket(bucket)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        return None if prefix is None else naming.check_prefix(prefix)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, url: str | None) -> str | None:
        return None if url is None else urls.check_endpoint_url(url)

    @classmethod
    def check_bucket(cls, name: str) -> str:
        """``name`` if the provider accepts it as a bucket name; ValueError saying why otherwise."""
        raise NotImplementedError

    def bucket_for(self, challenge: str) -> str:
        return self.bucket or derive_bucket(challenge)

    def prefix_for(self, challenge: str) -> str:
        return self.prefix if self.prefix is not None else challenge

    def location(self, challenge: str) -> str:
        return f"{self.scheme}://{self.bucket_for(challenge)}/{self.prefix_for(challenge)}".rstrip("/")

#: Requests in flight while uploading many files: as ``aws s3 cp`` (10) and a little more; far
#: more only queues on the server and the client's event loop.
PUT_CONCURRENCY = 16
#: Read back in large blocks: one ranged GET per 8 MiB rather than one per chunk hashed.
READ_BLOCK = 8 * 2**20


class BucketPrefix(Destination):
    """One challenge's objects under ``<bucket>/<prefix>/`` of an object store."""

    fs: Any  # an fsspec filesystem over the store, set up by the subclass

    def __init__(self, spec, challenge: str):
        super().__init__(spec, challenge)
        self.bucket = spec.bucket_for(challenge)
        self.prefix = spec.prefix_for(challenge)

    @property
    def access_scope(self) -> str:
        """The bucket: its policy is shared by every challenge (prefix) in it."""
        return f"{self.spec.scheme}://{self.bucket}"

    def key_of(self, name: str) -> str:
        """The object key of release ``name`` in the bucket."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def _path(self, name: str) -> str:
        return f"{self.bucket}/{self.key_of(name)}"

    def upload_many(self, files: list[tuple[Path, str]]) -> None:
        """Put the files, :data:`PUT_CONCURRENCY` requests at a time (fsspec runs them side by side)."""
        if files:
            with self._errors(f"upload {len(files)} files"):
                self.fs.put([str(path) for path, _ in files], [self._path(name) for _, name in files],
                            batch_size=PUT_CONCURRENCY)

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
