"""Google Drive: one folder per challenge under a parent folder the organiser shares, via pydrive2 (Drive v2).

The folder is found by title and parent (never guessed: two folders with the same title is
an error). Release files are found by title in that folder, so re-uploading updates the same
file. Each file carries its sha256 (and the md5 Drive reported when ppipe wrote it) as Drive
properties, so ``exists`` needs no download. Grants are permissions on the challenge folder,
which Drive passes on to the files in it.

Authentication is a service-account key file named by configuration; only its path is ever
stored or shown. Every pydrive2 call is wrapped so that a provider failure becomes one
:class:`DestinationError` line.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import threading
from pathlib import Path

from pydrive2.auth import GoogleAuth
from pydrive2.drive import GoogleDrive
from pydrive2.files import ApiRequestError, GoogleDriveFile

from ppipe import naming, settings
from ppipe.destinations.base import Destination, GrantResult, ObjectInfo
from ppipe.destinations.drive import errors
from ppipe.errors import ConfigError, DestinationError, GrantRefused

FOLDER_MIME = "application/vnd.google-apps.folder"
SCOPE = "https://www.googleapis.com/auth/drive"
SHA256_PROPERTY = "ppipe_sha256"
MD5_PROPERTY = "ppipe_md5"
DOWNLOAD_CHUNK = 8 * 1024 * 1024
HTTP_TIMEOUT = 120  # seconds per socket operation: a stalled connection fails instead of hanging
#: ppipe role -> (Drive v2 role, additionalRoles): v2 has no "commenter" role of its own.
#: Grants are read-only: reading and commenting, never writing.
DRIVE_ROLES = {"reader": ("reader", []), "commenter": ("reader", ["commenter"])}


class _DropSignedJwts(logging.Filter):
    """oauth2client.crypt logs every signed JWT assertion it makes (``logger.debug(str(segments))``)
    at DEBUG; an assertion can be traded for access tokens for an hour, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_JWT_LOGGER = logging.getLogger("oauth2client.crypt")  # it logs nothing else
if not any(isinstance(f, _DropSignedJwts) for f in _JWT_LOGGER.filters):
    _JWT_LOGGER.addFilter(_DropSignedJwts())


def key_file_path(spec) -> str:
    """Path of the service-account key file: ``spec.service_account_file``, else the environment.

    Raises ConfigError listing every place looked at when none is set, or naming the place
    whose path is not a file.
    """
    places = [("service_account_file of the drive destination", spec.service_account_file)]
    places += [("PPIPE_DRIVE_SERVICE_ACCOUNT_FILE", settings.drive_key_file()),
               ("GOOGLE_APPLICATION_CREDENTIALS", os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))]
    for where, value in places:
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ConfigError(f"{where}: {path} is not a file (a Google service-account key file is expected)")
            return str(path)
    looked = ", ".join(where for where, _ in places)
    raise ConfigError(f"no Google Drive service-account key file: set one of {looked}")


def quote(value: str) -> str:
    """``value`` as a Drive query string literal (backslashes and single quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_member(identity: str) -> tuple[str, str]:
    """(Drive permission type, e-mail) of ``alice@x.org``, ``user:alice@x.org`` or ``group:team@x.org``."""
    kind, sep, address = identity.strip().partition(":")
    if not sep:
        kind, address = "user", identity.strip()
    if kind not in ("user", "group"):
        raise ValueError(f"{identity!r}: use an e-mail address, user:<e-mail> or group:<e-mail>")
    return kind, naming.check_email(address)


def _role_name(permission: dict) -> str:
    """The ppipe role a Drive v2 permission amounts to (``commenter`` is reader + additional role)."""
    if permission.get("role") == "reader" and "commenter" in (permission.get("additionalRoles") or []):
        return "commenter"
    return str(permission.get("role"))


def _hashes(path: Path) -> tuple[int, str, str]:
    """(size, sha256 hex, md5 hex) of a local file, read once."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            sha.update(block)
            md5.update(block)
            size += len(block)
    return size, sha.hexdigest(), md5.hexdigest()


class DriveFolder(Destination):
    """A challenge's folder (title ``spec.folder_for(challenge)``) under Drive folder ``spec.parent``."""

    kind = "drive"

    def __init__(self, spec, challenge: str):
        super().__init__(spec, challenge)
        self._drive: GoogleDrive | None = None
        self._folder_id: str | None = None
        self._subfolders: dict[str, str | None] = {}  # "a/b" -> folder id under the challenge folder
        self._lock = threading.Lock()

    # -- provider access ------------------------------------------------------------------

    provider_errors = errors.PROVIDER_ERRORS

    def _translate(self, what: str, exc: Exception) -> tuple[str, bool]:
        return errors.translate(exc, what)

    def _client(self) -> GoogleDrive:
        """The pydrive2 client, authenticated with the service-account key on first use."""
        with self._lock:
            if self._drive is None:
                self._drive = GoogleDrive(self._service_auth(key_file_path(self.spec)))
            return self._drive

    def _service_auth(self, path: str) -> GoogleAuth:
        """A GoogleAuth for the key file at ``path``; DestinationError (no key material) if unusable."""
        settings = {
            "client_config_backend": "service",
            "service_config": {"client_json_file_path": path},
            "oauth_scope": [SCOPE],
            "save_credentials": False,  # tokens live in memory only
        }
        auth = GoogleAuth(settings=settings, http_timeout=HTTP_TIMEOUT)
        try:
            auth.ServiceAuth()  # reads the key and builds the service; no network yet
        except KeyError as exc:
            raise DestinationError(self.uri, f"service-account key file {path} lacks the field {exc}") from None
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
            raise DestinationError(self.uri, f"cannot read service-account key file {path}: {problem}") from None
        except Exception as exc:  # noqa: BLE001 - parsing errors may quote the key: name the type only
            problem = f"service-account key file {path} is not a valid key ({type(exc).__name__})"
            raise DestinationError(self.uri, problem) from None
        return auth

    def _list(self, query: str, action: str) -> list[GoogleDriveFile]:
        """All files matching the Drive v2 query (pydrive2 follows the pages)."""
        with self._errors(action):
            return self._client().ListFile({"q": query}).GetList()

    # -- the folder -----------------------------------------------------------------------

    def _check_parent(self) -> None:
        """DestinationError unless ``spec.parent`` is a folder the service account can see, not trashed."""
        parent_id = self.spec.parent
        parent = self._client().CreateFile({"id": parent_id})
        with self._errors(f"look up parent folder {parent_id}"):
            try:
                parent.FetchMetadata(fields="id,mimeType,labels")
            except ApiRequestError as exc:
                if errors.api_code(exc) != 404:
                    raise
                raise DestinationError(
                    self.uri, f"parent folder {parent_id} does not exist or is not shared with the service account"
                ) from None
        if parent.get("mimeType") != FOLDER_MIME:
            raise DestinationError(self.uri, f"parent {parent_id} is a file, not a folder")
        if parent.get("labels", {}).get("trashed"):
            raise DestinationError(self.uri, f"parent folder {parent_id} is in the trash")

    def _find_folder(self) -> str | None:
        """Id of the challenge folder, None if absent; DestinationError if several share its title."""
        title = self.spec.folder_for(self.challenge)
        query = (
            f"title = {quote(title)} and {quote(self.spec.parent)} in parents "
            f"and mimeType = '{FOLDER_MIME}' and trashed = false"
        )
        found = self._list(query, "find the challenge folder")
        if len(found) > 1:
            raise DestinationError(
                self.uri,
                f"{len(found)} folders titled {title!r} in parent {self.spec.parent}: remove or rename all but one",
            )
        return found[0]["id"] if found else None

    def prepare(self) -> None:
        """Check the parent folder, then find or create the challenge folder. Returns None."""
        self._check_parent()
        folder_id = self._find_folder()
        if folder_id is None:
            folder = self._client().CreateFile({
                "title": self.spec.folder_for(self.challenge),
                "parents": [{"id": self.spec.parent}],
                "mimeType": FOLDER_MIME,
            })
            with self._errors("create the challenge folder"):
                folder.Upload()
            folder_id = folder["id"]
        self._folder_id = folder_id

    def _folder(self, create: bool) -> str | None:
        """The challenge folder's id (looked up once); when absent, created if ``create`` else None."""
        if self._folder_id is None:
            self._folder_id = self._find_folder()
        if self._folder_id is None and create:
            self.prepare()
        return self._folder_id

    # -- release files --------------------------------------------------------------------

    def _files_named(self, folder_id: str, name: str) -> list[GoogleDriveFile]:
        query = (
            f"title = {quote(name)} and {quote(folder_id)} in parents "
            f"and mimeType != '{FOLDER_MIME}' and trashed = false"
        )
        return self._list(query, f"find {name}")

    def _parent_of(self, name: str, create: bool) -> tuple[str | None, str]:
        """(id of the folder holding ``name``, its title): ``a/b/c.png`` lives in sub-folder
        ``a/b`` of the challenge folder, found (or, if ``create``, made) one level at a time."""
        *folders, title = name.split("/")
        parent = self._folder(create=create)
        for depth in range(len(folders)):
            if parent is None:
                break
            path = "/".join(folders[: depth + 1])
            if self._subfolders.get(path) is None:  # absent ones are looked up again (made since?)
                self._subfolders[path] = self._child_folder(parent, folders[depth], create)
            parent = self._subfolders[path]
        return parent, title

    def _child_folder(self, parent: str, title: str, create: bool) -> str | None:
        query = f"title = {quote(title)} and {quote(parent)} in parents and mimeType = '{FOLDER_MIME}' and trashed = false"
        found = self._list(query, f"find folder {title}")
        if found or not create:
            return found[0]["id"] if found else None
        folder = self._client().CreateFile({"title": title, "parents": [{"id": parent}], "mimeType": FOLDER_MIME})
        with self._errors(f"create folder {title}"):
            folder.Upload()
        return folder["id"]

    def _file(self, name: str) -> GoogleDriveFile | None:
        """The stored file ``name`` (metadata from the listing), None if absent or no folder."""
        folder_id, title = self._parent_of(name, create=False)
        found = self._files_named(folder_id, title) if folder_id else []
        if len(found) > 1:
            raise DestinationError(
                self.uri_of(name), f"{len(found)} files with this title in the folder: remove all but one"
            )
        return found[0] if found else None

    def upload(self, local_file: Path, name: str) -> str:
        """Upload (resumable) as ``name``, updating the existing file of that title if any; returns ``uri_of(name)``.

        Drive makes a new file or revision visible only once the upload completes, so a reader
        never sees a partial file. The md5 Drive computed is checked against the local one.
        """
        parent_id, title = self._parent_of(name, create=True)
        size, sha256, md5 = _hashes(Path(local_file))
        existing = self._file(name)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if existing is not None:
            drive_file = self._client().CreateFile({"id": existing["id"]})
        else:
            drive_file = self._client().CreateFile({"title": title, "parents": [{"id": parent_id}]})
        drive_file["mimeType"] = mime
        drive_file["properties"] = [
            {"key": SHA256_PROPERTY, "value": sha256, "visibility": "PUBLIC"},
            {"key": MD5_PROPERTY, "value": md5, "visibility": "PUBLIC"},
        ]
        with open(local_file, "rb") as stream, self._errors("upload", self.uri_of(name)):
            drive_file.content = stream  # pydrive2 never closes what it is given: we do
            drive_file.Upload()
        if drive_file.get("md5Checksum") != md5 or int(drive_file.get("fileSize", -1)) != size:
            raise DestinationError(
                self.uri_of(name),
                f"Drive stored {drive_file.get('fileSize')} bytes with md5 {drive_file.get('md5Checksum')}, "
                f"ppipe sent {size} bytes with md5 {md5}",
            )
        return self.uri_of(name)

    def stat(self, name: str) -> ObjectInfo | None:
        """Size and sha256 of the bytes Drive holds under ``name``, downloaded and hashed; None if absent."""
        found = self._file(name)
        if found is None:
            return None
        digest, size = hashlib.sha256(), 0
        with self._errors("read back", self.uri_of(name)):
            for chunk in found.GetContentIOBuffer(chunksize=DOWNLOAD_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return ObjectInfo(size=size, sha256=digest.hexdigest())

    def read(self, name: str) -> bytes:
        """The stored bytes of ``name`` (as the other kinds offer, for verification); FileNotFoundError if absent."""
        found = self._file(name)
        if found is None:
            raise FileNotFoundError(self.uri_of(name))
        with self._errors("read back", self.uri_of(name)):
            return b"".join(found.GetContentIOBuffer(chunksize=DOWNLOAD_CHUNK))

    def exists(self, name: str, sha256: str) -> bool:
        """True when ``name`` holds the content with this sha256, answered from file metadata.

        The stored sha256 is trusted only while Drive's md5 still equals the one recorded at
        upload (content replaced by another client changes it); otherwise the bytes are read back.
        """
        found = self._file(name)
        if found is None:
            return False
        props = {p.get("key"): p.get("value") for p in found.get("properties") or []}
        if props.get(SHA256_PROPERTY) and props.get(MD5_PROPERTY) == found.get("md5Checksum"):
            return props[SHA256_PROPERTY] == sha256
        return super().exists(name, sha256)

    def delete(self, name: str) -> None:
        """Delete every file titled ``name`` in the folder (duplicates included). Idempotent; returns None."""
        folder_id, title = self._parent_of(name, create=False)
        for drive_file in self._files_named(folder_id, title) if folder_id else []:
            with self._errors("delete", self.uri_of(name)):
                try:
                    drive_file.Delete()
                except ApiRequestError as exc:
                    if errors.api_code(exc) != 404:  # already gone: that is what we wanted
                        raise

    # -- access ---------------------------------------------------------------------------

    def _permissions_of(self, folder: GoogleDriveFile, kind: str | None, address: str) -> list[dict]:
        """The folder's permissions for ``address`` (any type when ``kind`` is None)."""
        with self._errors("list permissions"):
            permissions = folder.GetPermissions() or []
        return [
            p for p in permissions
            if (p.get("emailAddress") or "").lower() == address.lower() and kind in (None, p.get("type"))
        ]

    def grant(
        self, identity: str, role: str = "reader", *, via: str | None = None, notify: bool = False
    ) -> GrantResult:
        """Share the challenge folder with ``identity`` (``user:``/``group:`` prefix optional) as ``role``.

        Returns what was done. Idempotent: an existing permission with the same role is left
        alone (no second notification e-mail); one with another role is changed in place.
        Drive e-mails the participant only when ``notify`` is true.
        """
        if via is not None:
            raise DestinationError(self.uri, f"via={via!r} applies to s3 grants only")
        if role not in DRIVE_ROLES:
            raise GrantRefused(self.uri, f"role {role!r}: grants are read-only: use {', '.join(DRIVE_ROLES)}")
        try:
            kind, address = parse_member(identity)
        except ValueError as exc:
            raise DestinationError(self.uri, str(exc)) from None
        drive_role, extra = DRIVE_ROLES[role]
        folder = self._client().CreateFile({"id": self._folder(create=True)})
        what = f"{role} access for {kind} {address} on {self.uri}"
        for current in self._permissions_of(folder, kind, address):
            if current.get("role") == "owner":
                return GrantResult(f"{kind} {address} owns {self.uri}: nothing to grant")
            if (current.get("role"), sorted(current.get("additionalRoles") or [])) == (drive_role, sorted(extra)):
                return GrantResult(f"{what}: already granted")
            self._patch_permission(folder, current["id"], {"role": drive_role, "additionalRoles": extra})
            return GrantResult(f"{what}: changed from {_role_name(current)}")
        body = {"type": kind, "value": address, "role": drive_role, "additionalRoles": extra}
        with self._errors(f"grant {role} to {address}"):
            folder.InsertPermission(body, param={"sendNotificationEmails": notify})
        return GrantResult(f"{what}" + ("" if notify else " (no notification e-mail)"))

    def _patch_permission(self, folder: GoogleDriveFile, permission_id: str, body: dict) -> None:
        # pydrive2 has no wrapper for permissions.patch: call the API client it built.
        auth = self._client().auth
        with self._errors("change permission"):
            auth.service.permissions().patch(
                fileId=folder["id"], permissionId=permission_id, body=body, supportsAllDrives=True
            ).execute(http=auth.Get_Http_Object())

    def revoke(self, identity: str, *, via: str | None = None) -> None:
        """Remove ``identity``'s permissions on the challenge folder (never an owner's). Idempotent; returns None."""
        try:
            kind, address = parse_member(identity)
        except ValueError as exc:
            raise DestinationError(self.uri, str(exc)) from None
        folder_id = self._folder(create=False)
        if folder_id is None:
            return
        folder = self._client().CreateFile({"id": folder_id})
        # A bare e-mail revokes whatever ppipe may have granted to that address.
        kind_filter = kind if ":" in identity else None
        for permission in self._permissions_of(folder, kind_filter, address):
            if permission.get("role") == "owner":
                continue
            with self._errors(f"revoke access of {address}"):
                try:
                    folder.DeletePermission(permission["id"])
                except ApiRequestError as exc:
                    if errors.api_code(exc) != 404:
                        raise
