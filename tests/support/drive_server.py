"""A small Google Drive v2-compatible HTTP server, in memory, for tests.

No Drive emulator exists, so this implements the calls pydrive2 (and so ppipe) makes, with
Google's URL layout, JSON shapes and status codes:

- ``POST /token``: OAuth 2.0 JWT-bearer grant for service accounts; the JWT's RS256 signature
  is verified against the public key registered with :meth:`DriveServer.add_service_account`,
  so a key the server does not know is refused (400 ``invalid_grant``) as Google does;
- ``/drive/v2/files``: list (``q`` subset: ``title =/!=/contains``, ``'<id>' in parents``,
  ``mimeType =/!=``, ``trashed =``, ``and``/``or``/``not``/parentheses), insert (metadata),
  get (metadata, or ``alt=media`` with Range), update/patch (metadata), delete;
- ``/upload/drive/v2/files[/<id>]``: ``uploadType=media``, ``multipart`` and ``resumable``
  (the session URI is returned in ``Location``; chunks are ``PUT`` there, 308 until complete);
- ``/drive/v2/files/<id>/permissions[/<pid>]``: insert, list, get, update/patch, delete.

Every API call needs a bearer token the server issued (else 401). The server does not
enforce sharing: tests check :attr:`DriveServer.permissions` instead. State is public:
``files`` (id -> file resource), ``contents`` (id -> bytes), ``permissions`` (id -> list),
``notifications`` (e-mails the server "sent"), ``requests`` (method, path, query) log.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

FOLDER_MIME = "application/vnd.google-apps.folder"
GOOGLE_API = "https://www.googleapis.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
ROOT_ID = "root"
V2_ROLES = {"owner", "organizer", "fileOrganizer", "writer", "reader"}


class ApiError(Exception):
    """An error response in Google's JSON shape: ``{"error": {"errors": [...], "code", "message"}}``."""

    def __init__(self, code: int, reason: str, message: str, location: str | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.location = code, reason, message, location

    def body(self) -> dict:
        item = {"domain": "global", "reason": self.reason, "message": self.message}
        if self.location:
            item.update(locationType="parameter", location=self.location)
        return {"error": {"errors": [item], "code": self.code, "message": self.message}}


def not_found(file_id: str) -> ApiError:
    return ApiError(404, "notFound", f"File not found: {file_id}.", "fileId")


def invalid(message: str, location: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message, location)


# --- the query language subset -------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.)*')|(!=|=|\(|\))|([A-Za-z_][A-Za-z0-9_]*))")


def _tokens(q: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind 'str' (unescaped), 'op' or 'word'; ApiError 400 if q is malformed."""
    out, pos, q = [], 0, q.rstrip()
    while pos < len(q):
        match = _TOKEN.match(q, pos)
        if not match:
            raise invalid("Invalid query", "q")
        literal, op, word = match.groups()
        if literal is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", literal[1:-1])))
        else:
            out.append(("op", op) if op else ("word", word))
        pos = match.end()
    return out


class _Query:
    """Recursive-descent parser of Drive v2 ``q``: or-of-ands of (possibly negated) terms."""

    def __init__(self, q: str):
        self.tokens, self.pos = _tokens(q), 0

    def parse(self) -> Callable[[dict], bool]:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise invalid("Invalid query", "q")
        return predicate

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, kind: str | None = None, text: str | None = None) -> str:
        token = self._peek()
        if token is None or (kind and token[0] != kind) or (text and token[1].lower() != text):
            raise invalid("Invalid query", "q")
        self.pos += 1
        return token[1]

    def _is_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def _or(self) -> Callable[[dict], bool]:
        terms = [self._and()]
        while self._is_word("or"):
            self._take()
            terms.append(self._and())
        return lambda f: any(t(f) for t in terms)

    def _and(self) -> Callable[[dict], bool]:
        terms = [self._not()]
        while self._is_word("and"):
            self._take()
            terms.append(self._not())
        return lambda f: all(t(f) for t in terms)

    def _not(self) -> Callable[[dict], bool]:
        if self._is_word("not"):
            self._take()
            inner = self._not()
            return lambda f: not inner(f)
        if self._peek() == ("op", "("):
            self._take()
            inner = self._or()
            self._take("op", ")")
            return inner
        return self._term()

    def _term(self) -> Callable[[dict], bool]:
        token = self._peek()
        if token and token[0] == "str":  # '<id>' in parents
            parent = self._take()
            self._take("word", "in")
            self._take("word", "parents")
            return lambda f: any(p["id"] == parent for p in f.get("parents", []))
        name = self._take("word")
        if name == "trashed":
            negate = self._take("op") == "!="
            value = self._take("word").lower()
            if value not in ("true", "false"):
                raise invalid("Invalid query", "q")
            return lambda f: (f["labels"]["trashed"] == (value == "true")) != negate
        if name not in ("title", "mimeType"):
            raise invalid("Invalid query", "q")
        if self._is_word("contains"):
            self._take()
            value = self._take("str")
            return lambda f: value in f[name]
        negate = self._take("op") == "!="
        value = self._take("str")
        return lambda f: (f[name] == value) != negate


def parse_query(q: str) -> Callable[[dict], bool]:
    """A predicate over file resources for the Drive v2 query ``q``; ApiError 400 if unsupported."""
    return _Query(q).parse() if q.strip() else (lambda f: True)


# --- OAuth: service-account JWT bearer grant -----------------------------------------------


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TokenError(Exception):
    """An OAuth error response: ``{"error": ..., "error_description": ...}`` with a status."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass
class ServiceAccount:
    email: str
    key_id: str
    public_key: Any  # cryptography RSAPublicKey


def verify_assertion(assertion: str, accounts: dict[str, ServiceAccount], audiences: set[str]) -> str:
    """The service-account e-mail of a valid RS256 JWT assertion, else TokenError as Google answers."""
    try:
        head_b64, body_b64, sig_b64 = assertion.split(".")
        header = json.loads(_b64url_decode(head_b64))
        claims = json.loads(_b64url_decode(body_b64))
        signature = _b64url_decode(sig_b64)
    except (ValueError, TypeError):
        raise TokenError(400, "invalid_grant", "Invalid JWT: malformed") from None
    account = accounts.get(claims.get("iss", ""))
    if account is None:
        raise TokenError(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256" or header.get("kid", account.key_id) != account.key_id:
        raise TokenError(400, "invalid_grant", "Invalid JWT Signature.")
    try:
        account.public_key.verify(
            signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise TokenError(400, "invalid_grant", "Invalid JWT Signature.") from None
    now = time.time()
    if claims.get("aud") not in audiences:
        raise TokenError(400, "invalid_grant", "Invalid JWT: audience is not the token endpoint")
    if not (claims.get("iat", 0) - 300 <= now < claims.get("exp", 0) <= claims.get("iat", 0) + 3600):
        raise TokenError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)")
    if not claims.get("scope"):
        raise TokenError(400, "invalid_scope", "Empty or missing scope not allowed.")
    return account.email


# --- the in-memory Drive -------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def permission_id(kind: str, address: str) -> str:
    """Drive's permission ids are stable per grantee (the user's id), so we derive one."""
    return str(int(hashlib.sha256(f"{kind}:{address.lower()}".encode()).hexdigest()[:16], 16))


@dataclass
class UploadSession:
    file_id: str | None  # None: a new file (insert); else an update of that file
    metadata: dict
    mime_type: str
    size: int | None
    data: bytearray = field(default_factory=bytearray)


class DriveState:
    """Files, contents, permissions and tokens; every method expects ``lock`` held by the caller."""

    def __init__(self):
        self.lock = threading.RLock()
        self.files: dict[str, dict] = {}
        self.contents: dict[str, bytes] = {}
        self.permissions: dict[str, list[dict]] = {}
        self.notifications: list[tuple[str, str]] = []  # (file id, e-mail) Drive would have mailed
        self.requests: list[tuple[str, str, dict]] = []
        self.accounts: dict[str, ServiceAccount] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (e-mail, expiry)
        self.sessions: dict[str, UploadSession] = {}
        self.faults: list[ApiError] = []  # answered, in order, to the next API requests (not /token)
        self._counter = 0
        self.files[ROOT_ID] = self._resource(ROOT_ID, {"title": "My Drive", "mimeType": FOLDER_MIME}, [], "")

    def new_id(self) -> str:
        self._counter += 1
        return f"{self._counter:04d}{secrets.token_hex(8)}"

    def _resource(self, file_id: str, body: dict, parents: list[str], owner: str) -> dict:
        stamp = _now()
        return {
            "kind": "drive#file", "id": file_id, "title": body.get("title") or "Untitled",
            "mimeType": body.get("mimeType") or "application/octet-stream",
            "description": body.get("description", ""),
            "parents": [{"kind": "drive#parentReference", "id": p, "isRoot": p == ROOT_ID} for p in parents],
            "labels": {"starred": False, "hidden": False, "trashed": False, "restricted": False, "viewed": True},
            "properties": [self._property(p) for p in body.get("properties", [])],
            "createdDate": stamp, "modifiedDate": stamp, "version": "1",
            "owners": [{"kind": "drive#user", "emailAddress": owner}] if owner else [],
        }

    @staticmethod
    def _property(prop: dict) -> dict:
        if not isinstance(prop, dict) or "key" not in prop:
            raise invalid("Invalid property: a key is required", "properties")
        visibility = prop.get("visibility", "PRIVATE")
        value = str(prop.get("value", ""))
        return {"kind": "drive#property", "key": prop["key"], "value": value, "visibility": visibility}

    def get(self, file_id: str) -> dict:
        if file_id not in self.files:
            raise not_found(file_id)
        return self.files[file_id]

    def insert(self, body: dict, owner: str, content: bytes | None = None) -> dict:
        """Create a file (or folder); parents must exist. Returns the new resource."""
        parents = [p.get("id") for p in body.get("parents") or [{"id": ROOT_ID}]]
        for parent in parents:
            if self.get(parent)["mimeType"] != FOLDER_MIME:
                raise invalid(f"The parent {parent} is not a folder.", "parents")
        file_id = self.new_id()
        self.files[file_id] = self._resource(file_id, body, parents, owner)
        self.permissions[file_id] = [self._owner_permission(owner)] if owner else []
        if content is not None:
            self._set_content(file_id, content)
        return self.files[file_id]

    def update(self, file_id: str, body: dict, content: bytes | None = None) -> dict:
        """Apply the given metadata fields (properties merge by key and visibility); new content if given."""
        resource = self.get(file_id)
        for key in ("title", "mimeType", "description"):
            if key in body:
                resource[key] = body[key]
        if "labels" in body and "trashed" in body["labels"]:
            resource["labels"]["trashed"] = bool(body["labels"]["trashed"])
        if "parents" in body:
            parents = [p.get("id") for p in body["parents"]]
            for parent in parents:
                self.get(parent)
            resource["parents"] = [{"kind": "drive#parentReference", "id": p, "isRoot": p == ROOT_ID} for p in parents]
        for prop in body.get("properties") or []:
            prop = self._property(prop)
            resource["properties"] = [
                p for p in resource["properties"] if (p["key"], p["visibility"]) != (prop["key"], prop["visibility"])
            ] + [prop]
        if content is not None:
            self._set_content(file_id, content)
        resource["modifiedDate"] = _now()
        resource["version"] = str(int(resource["version"]) + 1)
        return resource

    def _set_content(self, file_id: str, content: bytes) -> None:
        resource = self.files[file_id]
        self.contents[file_id] = bytes(content)
        resource["fileSize"] = str(len(content))
        resource["md5Checksum"] = hashlib.md5(content).hexdigest()
        resource["downloadUrl"] = f"{GOOGLE_API}/drive/v2/files/{file_id}?alt=media&source=downloadUrl"

    def delete(self, file_id: str) -> None:
        """Delete a file; a folder takes its descendants with it, as in Drive."""
        self.get(file_id)
        children = [f["id"] for f in self.files.values() if any(p["id"] == file_id for p in f["parents"])]
        for child in children:
            self.delete(child)
        for table in (self.files, self.contents, self.permissions):
            table.pop(file_id, None)

    def _owner_permission(self, owner: str) -> dict:
        return {
            "kind": "drive#permission", "id": permission_id("user", owner), "type": "user",
            "role": "owner", "emailAddress": owner,
        }

    def insert_permission(self, file_id: str, body: dict, notify: bool) -> dict:
        """Add (or, for a grantee who has one, replace) a permission; records the e-mail if notified."""
        self.get(file_id)
        kind, role = body.get("type"), body.get("role")
        if kind not in ("user", "group", "domain", "anyone"):
            raise invalid("Invalid value for type", "permission.type")
        if role not in V2_ROLES or role == "owner":
            raise invalid(f"Invalid value for role: {role}", "permission.role")
        extra = body.get("additionalRoles") or []
        if any(r != "commenter" for r in extra):
            raise invalid("Invalid value for additionalRoles", "permission.additionalRoles")
        address = (body.get("value") or "").lower()
        if kind in ("user", "group") and "@" not in address:
            raise invalid("Permission value field is required and must be an e-mail address.", "permission.value")
        permission = {
            "kind": "drive#permission", "id": permission_id(kind, address or kind), "type": kind, "role": role,
        }
        if extra:
            permission["additionalRoles"] = list(extra)
        if kind in ("user", "group"):
            permission["emailAddress"] = address
        perms = self.permissions[file_id]
        perms[:] = [p for p in perms if p["id"] != permission["id"]] + [permission]
        if notify and kind in ("user", "group"):
            self.notifications.append((file_id, address))
        return permission

    def permission(self, file_id: str, perm_id: str) -> dict:
        for perm in self.permissions.get(self.get(file_id)["id"], []):
            if perm["id"] == perm_id:
                return perm
        raise ApiError(404, "notFound", f"Permission not found: {perm_id}.", "permissionId")

    def update_permission(self, file_id: str, perm_id: str, body: dict) -> dict:
        perm = self.permission(file_id, perm_id)
        if "role" in body:
            if body["role"] not in V2_ROLES or body["role"] == "owner" or perm["role"] == "owner":
                raise invalid(f"Invalid value for role: {body['role']}", "permission.role")
            perm["role"] = body["role"]
        if "additionalRoles" in body:
            perm.pop("additionalRoles", None)
            if body["additionalRoles"]:
                perm["additionalRoles"] = list(body["additionalRoles"])
        return perm

    def delete_permission(self, file_id: str, perm_id: str) -> None:
        perm = self.permission(file_id, perm_id)
        if perm["role"] == "owner":
            raise ApiError(403, "cannotRemoveOwner", "The owner of a file cannot be removed.")
        self.permissions[file_id].remove(perm)


# --- HTTP ----------------------------------------------------------------------------------


class Reply(Exception):
    """Raised by a route to answer: status, JSON or bytes body, extra headers."""

    def __init__(self, status: int, body: Any = None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


_ROUTES: list[tuple[str, re.Pattern, str]] = [
    (method, re.compile(pattern + r"$"), handler)
    for method, pattern, handler in [
        ("POST", r"/token", "token"),
        ("GET", r"/drive/v2/files", "files_list"),
        ("POST", r"/drive/v2/files", "files_insert"),
        ("GET", r"/drive/v2/files/(?P<file_id>[^/]+)", "files_get"),
        ("PUT|PATCH", r"/drive/v2/files/(?P<file_id>[^/]+)", "files_update"),
        ("DELETE", r"/drive/v2/files/(?P<file_id>[^/]+)", "files_delete"),
        ("POST", r"/upload/drive/v2/files", "upload_insert"),
        ("PUT", r"/upload/drive/v2/files(?:/(?P<file_id>[^/]+))?", "upload_put"),
        ("GET", r"/drive/v2/files/(?P<file_id>[^/]+)/permissions", "permissions_list"),
        ("POST", r"/drive/v2/files/(?P<file_id>[^/]+)/permissions", "permissions_insert"),
        ("GET", r"/drive/v2/files/(?P<file_id>[^/]+)/permissions/(?P<perm_id>[^/]+)", "permissions_get"),
        ("PUT|PATCH", r"/drive/v2/files/(?P<file_id>[^/]+)/permissions/(?P<perm_id>[^/]+)", "permissions_update"),
        ("DELETE", r"/drive/v2/files/(?P<file_id>[^/]+)/permissions/(?P<perm_id>[^/]+)", "permissions_delete"),
    ]
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects
    server: _HttpServer

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        api = self.server.api
        try:
            with api.state.lock:
                api.state.requests.append((self.command, parts.path, dict(self.query)))
                if api.state.faults and parts.path != "/token":
                    raise api.state.faults.pop(0)
                for methods, pattern, name in _ROUTES:
                    match = pattern.match(parts.path)
                    if match and self.command in methods.split("|"):
                        if name != "token":
                            self.caller = api.authenticate(self.headers.get("Authorization", ""))
                        getattr(api, name)(self, **{k: v for k, v in match.groupdict().items() if v})
                raise ApiError(404, "notFound", f"No such method: {self.command} {parts.path}")
        except Reply as reply:
            self._send(reply.status, reply.body, reply.headers)
        except ApiError as error:
            self._send(error.code, error.body())
        except TokenError as error:
            self._send(error.status, {"error": error.error, "error_description": error.description})

    def json_body(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise invalid("Parse Error") from None

    def _send(self, status: int, body: Any, headers: dict | None = None) -> None:
        if isinstance(body, (bytes, bytearray)):
            data, ctype = bytes(body), "application/octet-stream"
        else:
            data, ctype = (b"" if body is None else json.dumps(body).encode()), "application/json; charset=UTF-8"
        self.send_response(status)
        headers = {"Content-Type": ctype, **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    api: DriveServer


class DriveServer:
    """The server: ``start()`` on loopback, ``url``, state attributes, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = DriveState()
        self._http = _HttpServer((host, port), _Handler)
        self._http.api = self
        self.url = f"http://{host}:{self._http.server_address[1]}"
        self.token_uri = f"{self.url}/token"
        self._thread = threading.Thread(target=self._http.serve_forever, name="drive-server", daemon=True)

    # -- lifecycle and state for tests --------------------------------------------------------

    def start(self) -> DriveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fail_next(self, count: int, code: int = 503, reason: str = "backendError") -> None:
        """Answer the next ``count`` API requests with an error, as Drive does when overloaded."""
        with self.state.lock:
            self.state.faults.extend(ApiError(code, reason, f"injected {code} {reason}") for _ in range(count))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    @property
    def files(self) -> dict[str, dict]:
        return self.state.files

    @property
    def contents(self) -> dict[str, bytes]:
        return self.state.contents

    @property
    def permissions(self) -> dict[str, list[dict]]:
        return self.state.permissions

    @property
    def notifications(self) -> list[tuple[str, str]]:
        return self.state.notifications

    @property
    def requests(self) -> list[tuple[str, str, dict]]:
        return self.state.requests

    def add_service_account(self, email: str, key_id: str, public_key: Any) -> None:
        """Make the server accept JWTs signed by ``public_key``'s private key for ``email``."""
        with self.state.lock:
            self.state.accounts[email] = ServiceAccount(email, key_id, public_key)

    def create_folder(self, title: str, parent: str = ROOT_ID, owner: str = "organiser@example.com") -> str:
        """Make a folder directly (as an organiser would in the Drive UI); returns its id."""
        with self.state.lock:
            body = {"title": title, "mimeType": FOLDER_MIME, "parents": [{"id": parent}]}
            return self.state.insert(body, owner)["id"]

    def children(self, folder_id: str) -> list[dict]:
        """The resources whose parents include ``folder_id``."""
        with self.state.lock:
            return [f for f in self.files.values() if any(p["id"] == folder_id for p in f["parents"])]

    # -- auth ----------------------------------------------------------------------------------

    def authenticate(self, header: str) -> str:
        """The e-mail behind a valid bearer token, else ApiError 401 as Google answers."""
        token = header[7:] if header.startswith("Bearer ") else ""
        email, expiry = self.state.tokens.get(token, ("", 0.0))
        if not email or expiry < time.time():
            raise ApiError(401, "authError", "Invalid Credentials", "Authorization")
        return email

    def token(self, request: _Handler) -> None:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise TokenError(400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        email = verify_assertion(form.get("assertion", ""), self.state.accounts, {self.token_uri, GOOGLE_TOKEN_URI})
        token = "ya29.test-" + secrets.token_urlsafe(24)
        self.state.tokens[token] = (email, time.time() + 3600)
        raise Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- files ---------------------------------------------------------------------------------

    def files_list(self, request: _Handler) -> None:
        predicate = parse_query(request.query.get("q", ""))
        matches = [f for f in self.files.values() if f["id"] != ROOT_ID and predicate(f)]
        start = int(request.query.get("pageToken") or 0)
        size = int(request.query.get("maxResults") or 100)
        body = {"kind": "drive#fileList", "items": matches[start:start + size]}
        if start + size < len(matches):
            body["nextPageToken"] = str(start + size)
        raise Reply(200, body)

    def files_insert(self, request: _Handler) -> None:
        raise Reply(200, self.state.insert(request.json_body(), request.caller))

    def files_get(self, request: _Handler, file_id: str) -> None:
        resource = self.state.get(file_id)
        if request.query.get("alt") != "media":
            raise Reply(200, resource)
        if resource["mimeType"].startswith("application/vnd.google-apps."):
            raise ApiError(403, "fileNotDownloadable", "Only files with binary content can be downloaded.")
        self._send_media(request, self.contents.get(file_id, b""))

    @staticmethod
    def _send_media(request: _Handler, content: bytes) -> None:
        """The bytes, or the requested ``Range: bytes=a-b`` of them (206; 416 past the end)."""
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", "").strip())
        if not match:
            raise Reply(200, content)
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(content) - 1, len(content) - 1)
        if start >= len(content):
            raise Reply(416, b"", {"Content-Range": f"bytes */{len(content)}"})
        raise Reply(206, content[start:end + 1], {"Content-Range": f"bytes {start}-{end}/{len(content)}"})

    def files_update(self, request: _Handler, file_id: str) -> None:
        raise Reply(200, self.state.update(file_id, request.json_body()))

    def files_delete(self, request: _Handler, file_id: str) -> None:
        self.state.delete(file_id)
        raise Reply(204)

    # -- uploads -------------------------------------------------------------------------------

    def upload_insert(self, request: _Handler) -> None:
        self._upload(request, None)

    def upload_put(self, request: _Handler, file_id: str | None = None) -> None:
        if "upload_id" in request.query:
            self._upload_chunk(request, request.query["upload_id"])
        if file_id is None:
            raise ApiError(404, "notFound", "No such method: PUT /upload/drive/v2/files")
        self.state.get(file_id)
        self._upload(request, file_id)

    def _upload(self, request: _Handler, file_id: str | None) -> None:
        kind = request.query.get("uploadType")
        if kind == "media":
            metadata = {"mimeType": request.headers.get("Content-Type", "application/octet-stream")}
            self._finish(request, file_id, metadata, request.body)
        if kind == "multipart":
            self._finish(request, file_id, *self._multipart(request))
        if kind == "resumable":
            self._start_session(request, file_id)
        raise invalid(f"Invalid value for uploadType: {kind}", "uploadType")

    def _finish(self, request: _Handler, file_id: str | None, metadata: dict, content: bytes) -> None:
        if file_id is None:
            raise Reply(200, self.state.insert(metadata, request.caller, content))
        raise Reply(200, self.state.update(file_id, metadata, content))

    @staticmethod
    def _multipart(request: _Handler) -> tuple[dict, bytes]:
        """(metadata, content) of a ``multipart/related`` body: a JSON part, then the media part."""
        head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        if len(parts) != 2:
            raise invalid("Multipart upload needs exactly a metadata part and a media part")
        metadata = json.loads(parts[0].get_payload(decode=True) or b"{}")
        metadata.setdefault("mimeType", parts[1].get_content_type())
        return metadata, parts[1].get_payload(decode=True) or b""

    def _start_session(self, request: _Handler, file_id: str | None) -> None:
        metadata = request.json_body()
        mime = request.headers.get("X-Upload-Content-Type") or metadata.get("mimeType") or "application/octet-stream"
        metadata.setdefault("mimeType", mime)
        length = request.headers.get("X-Upload-Content-Length")
        session_id = secrets.token_urlsafe(16)
        self.state.sessions[session_id] = UploadSession(file_id, metadata, mime, int(length) if length else None)
        target = f"{self.url}/upload/drive/v2/files" + (f"/{file_id}" if file_id else "")
        raise Reply(200, None, {"Location": f"{target}?uploadType=resumable&upload_id={session_id}"})

    def _upload_chunk(self, request: _Handler, session_id: str) -> None:
        """Append a chunk (``Content-Range: bytes a-b/total``, or ``*/total`` to ask progress)."""
        session = self.state.sessions.get(session_id)
        if session is None:
            raise ApiError(404, "notFound", "Upload session not found or expired.")
        content_range = request.headers.get("Content-Range", "")
        match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", content_range.strip())
        if content_range and not match:
            raise invalid("Invalid Content-Range header")
        if match and match.group(3) != "*":
            session.size = int(match.group(3))
        if match and match.group(1) is not None:
            first, last = int(match.group(1)), int(match.group(2))
            if first != len(session.data) or last - first + 1 != len(request.body):
                raise invalid("Content-Range does not continue the upload")
            session.data += request.body
        elif not content_range:  # googleapiclient sends an empty file with no Content-Range
            session.data += request.body
            session.size = len(session.data)
        if session.size is not None and len(session.data) >= session.size:
            del self.state.sessions[session_id]
            self._finish(request, session.file_id, session.metadata, bytes(session.data))
        headers = {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}
        raise Reply(308, None, headers)

    # -- permissions ---------------------------------------------------------------------------

    def permissions_list(self, request: _Handler, file_id: str) -> None:
        self.state.get(file_id)
        raise Reply(200, {"kind": "drive#permissionList", "items": list(self.permissions.get(file_id, []))})

    def permissions_insert(self, request: _Handler, file_id: str) -> None:
        # Drive v2 mails users and groups unless told not to.
        notify = request.query.get("sendNotificationEmails", "true").lower() != "false"
        raise Reply(200, self.state.insert_permission(file_id, request.json_body(), notify))

    def permissions_get(self, request: _Handler, file_id: str, perm_id: str) -> None:
        raise Reply(200, self.state.permission(file_id, perm_id))

    def permissions_update(self, request: _Handler, file_id: str, perm_id: str) -> None:
        raise Reply(200, self.state.update_permission(file_id, perm_id, request.json_body()))

    def permissions_delete(self, request: _Handler, file_id: str, perm_id: str) -> None:
        self.state.delete_permission(file_id, perm_id)
        raise Reply(204)
