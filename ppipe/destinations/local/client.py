"""Local (or shared, mounted) folders: releases at ``<path>/<folder or challenge>/<name>``.

Uses fsspec's local filesystem for listing and removal; the upload is a copy to a hidden
temporary name in the same folder, fsync, then an atomic rename, so a reader never sees a
partial file. Local folders have no per-identity access control: grants are refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec

from ppipe import durable
from ppipe.destinations.base import Destination, GrantResult, ObjectInfo
from ppipe.destinations.local import errors
from ppipe.durable import file_sha256
from ppipe.errors import DestinationError


COPY_THREADS = 4  # copies overlap their waits on the disk; more gains nothing on 2 cores


class LocalFolder(Destination):
    """One challenge's folder on a local or mounted filesystem."""

    kind = "local"

    def __init__(self, spec, challenge: str):
        super().__init__(spec, challenge)
        self.folder = Path(spec.location(challenge))
        self.fs = fsspec.filesystem("file")

    def path_of(self, name: str) -> Path:
        """The local path of release ``name``."""
        return self.folder / name

    provider_errors = (OSError,)

    def _translate(self, what: str, exc: OSError) -> tuple[str, bool]:
        return errors.translate(exc, what)

    def check(self) -> None:
        """Refuse, before anything is written, a folder that cannot be made or written: a path
        through an existing file, a read-only or virtual filesystem (/proc). Only a probe
        folder is made (and removed) in the nearest existing ancestor."""
        existing = self.folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise DestinationError(self.uri, f"{existing} is a file, not a folder: choose another path")
        try:
            probe = Path(tempfile.mkdtemp(prefix=".ppipe-probe-", dir=existing))
            try:
                (probe / "w").write_bytes(b"")
            finally:
                shutil.rmtree(probe, ignore_errors=True)
        except OSError as exc:
            raise DestinationError(self.uri, f"{existing} cannot be written: {exc.strerror or type(exc).__name__}") from None

    def prepare(self) -> None:
        """Create the challenge folder (and its parents) if missing; remove killed uploads' temporaries."""
        with self._errors("create the challenge folder"):
            self.folder.mkdir(parents=True, exist_ok=True)
            durable.remove_stale(self.folder, ".*.part")

    def upload(self, local_file: Path, name: str) -> str:
        """Copy ``local_file`` into place atomically; return ``uri_of(name)``."""
        with self._errors(f"store {name}"):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as out, open(local_file, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o644)  # mkstemp makes 0600; releases are meant to be shared
                os.replace(tmp, self.path_of(name))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            durable.fsync_dir(self.folder)
        return self.uri_of(name)

    def upload_many(self, files: list[tuple[Path, str]]) -> None:
        """Copy each file into place (sub-folders made as needed), each under a temporary name
        renamed when whole; copied in the kernel (copy_file_range) like ``cp``, a few at a time."""
        token = uuid.uuid4().hex
        with self._errors("store files"):
            for parent in sorted({self.path_of(name).parent for _, name in files}):
                parent.mkdir(parents=True, exist_ok=True)
            with ThreadPoolExecutor(COPY_THREADS) as pool:
                for _ in pool.map(lambda item: self._copy(item[0], self.path_of(item[1]), token), files):
                    pass

    @staticmethod
    def _copy(source: Path, target: Path, token: str) -> None:
        tmp = target.with_name(f".{target.name}.{token}.part")
        try:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def stat(self, name: str) -> ObjectInfo | None:
        """Size and sha256 of the file as stored (read back), or None if absent."""
        path = self.path_of(name)
        with self._errors(f"read {name}"):
            if not self.fs.isfile(str(path)):
                return None
            size, digest = file_sha256(path)
        return ObjectInfo(size, digest)

    def read(self, name: str) -> bytes:
        """The stored bytes of release ``name`` (for verification; FileNotFoundError if absent)."""
        return self.path_of(name).read_bytes()

    def delete(self, name: str) -> None:
        """Remove the file if present. Idempotent."""
        with self._errors(f"delete {name}"):
            self.path_of(name).unlink(missing_ok=True)

    def grant(self, identity: str, role: str = "reader", *, via: str | None = None, notify: bool = False) -> GrantResult:
        """Always raises DestinationError: there is no per-identity access on a local folder."""
        raise DestinationError(self.uri, "local folders have no access control; share the folder")

    def revoke(self, identity: str, *, via: str | None = None) -> None:
        """Always raises DestinationError, like :meth:`grant`."""
        raise DestinationError(self.uri, "local folders have no access control; share the folder")
