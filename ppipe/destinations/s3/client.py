"""S3 (and S3-compatible) buckets: releases at ``s3://<bucket>/<prefix>/<name>``.

Objects go through s3fs (multipart above ``2 * multipart_chunksize``, each object written
atomically by S3 itself); bucket creation, bucket policies and IAM go through boto3, which has
the verbs fsspec lacks. Both clients get the same credentials from :mod:`ppipe.destinations.credentials`.

Grants are read-only: ``s3:GetObject`` on ``<bucket>/<prefix>/*`` and ``s3:ListBucket`` on the
bucket with the condition ``s3:prefix`` like ``<prefix>/*``, in one of two forms (``via``):

- ``bucket-policy`` (default): one pair of statements per challenge in the bucket policy (Sids
  derived from challenge and prefix) listing its principals; everyone else's statements stay.
  Once the policy (20 KB at most) has no room for one more, principals go to S3 Access Points
  of the challenge, to which the bucket policy delegates (:mod:`.access_points`); a revoke
  removes the principal wherever it is.
- ``iam-user-policy``: an inline policy ``ppipe-<challenge>-<bucket>`` on an IAM user of the
  organiser's account; the user is created if missing and, when it has no access key yet, one
  key is made and written once to ``<PPIPE_HOME>/credentials/<challenge>/<user>.json`` (0600).

Environment: ``PPIPE_CONNECT_TIMEOUT`` (seconds, default 10) bounds each connection attempt;
botocore's ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` set its retries.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
import json
import logging
import os
import threading
from collections import defaultdict
from contextlib import contextmanager
from functools import cached_property
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ppipe.destinations.s3 import credentials, errors
from ppipe.destinations.s3.access_points import POLICY_LIMIT, POLICY_VERSION, AccessPoints, listed_principals, policy_bytes
from ppipe.destinations.s3.spec import check_principal
from ppipe import settings
from ppipe.destinations.base import GrantResult
from ppipe.durable import file_sha256
from ppipe.destinations.bucket import BucketPrefix
from ppipe.errors import DestinationError, GrantRefused

PUT_THREADS = 10  # as aws s3 cp; boto3's connection pool holds 10
BUCKET_POLICY_LIMIT = POLICY_LIMIT  # bytes: S3 refuses larger bucket policies
SHA256_KEY = "sha256"  # user metadata key: x-amz-meta-sha256
CREATED_BY = "created-by"  # IAM user tag marking the users ppipe made (and may give keys)
# A run grants at several destinations side by side, and an IAM user is account-wide: one
# grant at a time per user in this process, so two never both create the user or its key.
_USER_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


class S3Bucket(BucketPrefix):
    """One challenge's prefix in an S3 bucket."""

    kind = "s3"
    #: s3fs uploads a file in parts of this size when it is at least twice as large.
    multipart_chunksize = 50 * 2**20

    # -- clients --------------------------------------------------------------------------

    @cached_property
    def access(self) -> credentials.AwsAccess:
        return credentials.aws(self.spec, self.uri)

    @property
    def region(self) -> str:
        return self.spec.region or self.access.region or "us-east-1"

    def _config(self):
        from botocore.config import Config

        return Config(connect_timeout=settings.connect_timeout(), read_timeout=60)

    @cached_property
    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(
            **self.access.s3fs_kwargs(), endpoint_url=self.spec.endpoint_url, skip_instance_cache=True,
            client_kwargs={"region_name": self.region},
            config_kwargs={"connect_timeout": settings.connect_timeout(), "read_timeout": 60},
        )

    @cached_property
    def client(self):
        return self.access.boto3_session(self.region).client("s3", endpoint_url=self.spec.endpoint_url, config=self._config())

    @cached_property
    def iam(self):
        return self.access.boto3_session(self.region).client("iam", endpoint_url=self.spec.endpoint_url, config=self._config())

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, what: str, exc: BaseException) -> tuple[str, bool]:
        return errors.translate(exc, what, bucket=self.bucket, endpoint=self.spec.endpoint_url or "AWS",
                                source=self.access.source, redact=self.access.redact)

    # -- objects --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the bucket in ``region`` if it does not exist, and abort uploads killed mid-way. Idempotent."""
        if self._bucket_exists():
            self._check_owner()
            self._abort_stale_uploads()
        else:
            self._create_bucket()

    def _check_owner(self) -> None:
        """A bucket ppipe did not create right now must be the organiser's: a predictable name
        (``ppipe-<challenge>``) may have been taken, and left open, by someone else."""
        from botocore.exceptions import ClientError

        with self._errors("list the organiser's buckets"):
            try:
                pages = self.client.get_paginator("list_buckets").paginate()
                ours = {bucket["Name"] for page in pages for bucket in page.get("Buckets", [])}
            except ClientError as exc:
                if errors.code_of(exc) in ("AccessDenied", "403"):
                    return  # may not list buckets: ExpectedBucketOwner (on AWS) still guards every call
                raise
        if self.bucket not in ours:
            raise DestinationError(self.uri, f"bucket {self.bucket} belongs to another account (it is not among "
                                             "the organiser's buckets): choose another 'bucket'")

    def _bucket_exists(self) -> bool:
        from botocore.exceptions import ClientError

        with self._errors("check the bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket, **self._owner())
                return True
            except ClientError as exc:
                if errors.status_of(exc) == 403:
                    self._explain_forbidden()
                if errors.status_of(exc) != 404:
                    raise
        return False

    def _create_bucket(self) -> None:
        from botocore.exceptions import ClientError

        kwargs = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with self._errors(f"create bucket {self.bucket} in {self.region}"):
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc:
                if errors.code_of(exc) == "BucketAlreadyExists":
                    raise DestinationError(
                        self.uri, f"bucket name {self.bucket} is taken by another account: choose another 'bucket'"
                    ) from None
                if errors.code_of(exc) != "BucketAlreadyOwnedByYou":  # created meanwhile by us: fine
                    raise

    def _abort_stale_uploads(self) -> None:
        """Abort multipart uploads under the prefix older than a claim lease: a killed run's
        (no live run owns them), whose stored parts S3 would otherwise keep billing."""
        from botocore.exceptions import ClientError

        cutoff = datetime.now(timezone.utc) - settings.claim_lease()
        with self._errors("abort unfinished uploads"):
            try:
                pages = self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=self.key_of(""))
                stale = [u for page in pages for u in page.get("Uploads", []) if u["Initiated"] < cutoff]
            except ClientError as exc:
                if errors.code_of(exc) in ("AccessDenied", "403"):
                    return  # not allowed to list them: nothing to clean, the upload itself is unaffected
                raise
            for upload in stale:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def _explain_forbidden(self) -> None:
        """HEAD has no error body: ask again with a GET to tell bad keys from someone else's bucket."""
        from botocore.exceptions import ClientError

        try:
            self.client.get_bucket_location(Bucket=self.bucket)
        except ClientError as exc:
            if errors.code_of(exc) in errors.CREDENTIAL_CODES:
                raise
        raise DestinationError(
            self.uri, f"bucket {self.bucket} belongs to another account, or these credentials may not use it (403 Forbidden)"
        )

    def upload(self, local_file: Path, name: str) -> str:
        """Put ``local_file`` at ``<prefix>/<name>`` with its sha256 as metadata; return ``uri_of(name)``."""
        _, digest = file_sha256(local_file)
        with self._errors(f"upload {name}"):
            self.fs.put_file(
                str(local_file), self._path(name), chunksize=self.multipart_chunksize, Metadata={SHA256_KEY: digest}
            )
        return self.uri_of(name)

    def upload_many(self, files: list[tuple[Path, str]]) -> None:
        """Put many files, :data:`PUT_THREADS` at a time, through boto3 (thread-safe; about twice
        as fast as s3fs for thousands of small objects); a large file goes through :meth:`upload`."""
        def put(item: tuple[Path, str]) -> None:
            path, name = item
            if path.stat().st_size >= 2 * self.multipart_chunksize:
                self.upload(path, name)
                return
            with open(path, "rb") as body, self._errors(f"upload {name}"):
                self.client.put_object(Bucket=self.bucket, Key=self.key_of(name), Body=body)

        with ThreadPoolExecutor(PUT_THREADS) as pool:
            for _ in pool.map(put, files):
                pass

    def exists(self, name: str, sha256: str) -> bool:
        """True if ``name`` is stored with this sha256: answered from the object's metadata
        (one HEAD); objects without ppipe's metadata are read back and hashed."""
        from botocore.exceptions import ClientError

        with self._errors(f"check {name}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.key_of(name), **self._owner())
            except ClientError as exc:
                if errors.status_of(exc) == 404:
                    return False
                raise
        stored = head.get("Metadata", {}).get(SHA256_KEY)
        return stored == sha256 if stored else super().exists(name, sha256)

    # -- grants ---------------------------------------------------------------------------

    def read_statements(self) -> list[dict]:
        """The two read-only statements (GetObject under the prefix, ListBucket limited to it)."""
        objects = f"arn:aws:s3:::{self.bucket}/{self.prefix}/*" if self.prefix else f"arn:aws:s3:::{self.bucket}/*"
        listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{self.bucket}"}
        if self.prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{self.prefix}/*"]}}
        return [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}, listing]

    def statement_ids(self) -> tuple[str, str]:
        """The Sids of this challenge's two bucket-policy statements (deterministic)."""
        digest = hashlib.sha256(f"{self.challenge}\n{self.prefix}".encode()).hexdigest()[:20]
        return f"Ppipe{digest}Read", f"Ppipe{digest}List"

    def delegation_ids(self) -> tuple[str, str]:
        """The Sids of the bucket-policy statements delegating this challenge's reads to its access points."""
        return tuple(sid.replace("Ppipe", "PpipeAp", 1) for sid in self.statement_ids())

    def legacy_statement_ids(self, identity: str) -> tuple[str, str]:
        """The Sids older ppipe versions used: two statements per participant (removed on revoke)."""
        digest = hashlib.sha256(f"{self.challenge}\n{self.prefix}\n{identity}".encode()).hexdigest()[:20]
        return f"Ppipe{digest}Read", f"Ppipe{digest}List"

    @property
    def inline_policy_name(self) -> str:
        """Name of ppipe's inline policy on an IAM user, one per challenge and bucket (and prefix)."""
        name = f"ppipe-{self.challenge}-{self.bucket}"
        if self.prefix != self.challenge:
            name += "-" + hashlib.sha256(self.prefix.encode()).hexdigest()[:8]
        return name

    def _principal(self, identity: str, via: str | None) -> tuple[str, str]:
        """(normalised identity, via) for a grant or revoke; DestinationError when malformed."""
        via = via or "bucket-policy"
        try:
            if via not in ("bucket-policy", "iam-user-policy"):
                raise ValueError(f"unknown via {via!r}: use bucket-policy or iam-user-policy")
            return check_principal(identity, via), via
        except ValueError as exc:
            raise DestinationError(self.uri, str(exc)) from None

    def grant(self, identity: str, role: str = "reader", *, via: str | None = None, notify: bool = False) -> GrantResult:
        """Give ``identity`` read-only access to this prefix (see the module doc). Idempotent.

        Returns a GrantResult saying what was done; for ``iam-user-policy`` its
        ``credentials_file`` is the 0600 file holding the user's access key, if ppipe made one.
        """
        if role != "reader":
            raise DestinationError(self.uri, f"role {role!r}: S3 grants are read-only ('reader')")
        identity, via = self._principal(identity, via)
        if via == "iam-user-policy":
            return self._grant_user(identity)
        return self._grant_bucket_policy(identity)

    def revoke(self, identity: str, *, via: str | None = None) -> None:
        """Remove ppipe's statements (bucket-policy) or inline policy (iam-user-policy) for
        ``identity``; other statements, policies, users and keys stay. Idempotent."""
        identity, via = self._principal(identity, via)
        if via == "iam-user-policy":
            self._revoke_user(identity)
        else:
            self._revoke_bucket_policy(identity)

    def _owner(self) -> dict:
        """``ExpectedBucketOwner`` for calls on the bucket: AWS refuses them on a bucket of
        another account. Only on AWS itself (S3-compatible stores have no account to name)."""
        return {} if self.spec.endpoint_url else {"ExpectedBucketOwner": self.account_id}

    # bucket policy: one pair of statements per challenge, listing its principals, then access points

    def bucket_policy(self) -> dict:
        """The bucket's policy document (an empty one if it has none)."""
        from botocore.exceptions import ClientError

        with self._errors("read the bucket policy"):
            try:
                text = self.client.get_bucket_policy(Bucket=self.bucket, **self._owner())["Policy"]
            except ClientError as exc:
                if errors.code_of(exc) == "NoSuchBucketPolicy":
                    return {"Version": POLICY_VERSION, "Statement": []}
                raise
        policy = json.loads(text)
        if isinstance(policy.get("Statement"), dict):
            policy["Statement"] = [policy["Statement"]]
        policy.setdefault("Statement", [])
        return policy

    def granted_principals(self, policy: dict) -> set[str]:
        """The principals this challenge's statements name in ``policy``."""
        return listed_principals(policy["Statement"], self.statement_ids()[0])

    def _delegates(self, policy: dict) -> bool:
        """Whether ``policy`` lets this challenge's access points serve its reads (some principals are there)."""
        return any(statement.get("Sid") in self.delegation_ids() for statement in policy["Statement"])

    def _policy_with(self, policy: dict, principals: set[str], delegate: bool, drop: tuple[str, ...] = ()) -> dict:
        """``policy`` with this challenge's statements naming exactly ``principals`` (none: no
        statements) and delegating to its access points if ``delegate``; others' statements stay."""
        sids = (*self.statement_ids(), *self.delegation_ids(), *drop)
        others = [s for s in policy["Statement"] if s.get("Sid") not in sids]
        ours = [{"Sid": sid, "Principal": {"AWS": sorted(principals)}, **statement}
                for sid, statement in zip(self.statement_ids(), self.read_statements())] if principals else []
        return {**policy, "Statement": others + ours + (self.access_points.delegation() if delegate else [])}

    def _fits(self, policy: dict, principals: set[str]) -> bool:
        """Whether the bucket policy can name ``principals`` and still have room to delegate."""
        return policy_bytes(self._policy_with(policy, principals, delegate=True)) <= BUCKET_POLICY_LIMIT

    def _put_bucket_policy(self, policy: dict, document: dict) -> None:
        """Write ``document`` as the bucket policy (unless it is ``policy``, already there)."""
        if document["Statement"] == policy["Statement"]:
            return
        if policy_bytes(document) > BUCKET_POLICY_LIMIT:  # only others' statements can make it so
            raise GrantRefused(self.uri, (
                f"the bucket policy would be {policy_bytes(document)} bytes, over S3's {BUCKET_POLICY_LIMIT}: "
                "its other statements leave no room: give the challenge a bucket of its own"))
        with self._errors("write the bucket policy"):
            if document["Statement"]:
                self.client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(document, separators=(",", ":")),
                                              **self._owner())
            else:  # S3 refuses a policy without statements
                self.client.delete_bucket_policy(Bucket=self.bucket, **self._owner())

    @staticmethod
    def _principal_of(identity: str) -> str:
        return f"arn:aws:iam::{identity}:root" if identity.isdigit() else identity

    @cached_property
    def access_points(self) -> AccessPoints:
        return AccessPoints(self)

    def _grant_bucket_policy(self, identity: str) -> GrantResult:
        """Name the principal in the bucket policy while it has room, else in an access point."""
        principal = self._principal_of(identity)
        policy = self.bucket_policy()
        granted, delegated = self.granted_principals(policy), self._delegates(policy)
        points = self.access_points.listed() if delegated else []
        held = next((point for point in points if principal in point.principals), None)
        if held is None and (principal in granted or self._fits(policy, granted | {principal})):
            self._put_bucket_policy(policy, self._policy_with(policy, granted | {principal}, delegated))
            return GrantResult(f"read access to {self.uri} for {principal} via the bucket policy "
                               f"(statements {', '.join(self.statement_ids())})")
        if not delegated:  # the first one the bucket policy has no room for
            self._put_bucket_policy(policy, self._policy_with(policy, granted, delegate=True))
        point = self.access_points.add(principal, points)
        return GrantResult(f"read access to {self.uri} for {principal} via access point {point.name} "
                           f"({point.arn}): read at {point.reads_at(self.prefix)}", access=point.reads_at(self.prefix))

    def _revoke_bucket_policy(self, identity: str) -> None:
        principal = self._principal_of(identity)
        policy = self.bucket_policy()
        delegated = self._delegates(policy)
        left = self.access_points.remove(principal, self.access_points.listed()) if delegated else []
        self._put_bucket_policy(policy, self._policy_with(policy, self.granted_principals(policy) - {principal},
                                                          bool(left), drop=self.legacy_statement_ids(identity)))

    # IAM user policy

    @cached_property
    def account_id(self) -> str:
        """The organiser's AWS account (the one these credentials act in)."""
        with self._errors("identify the organiser's account"):
            sts = self.access.boto3_session(self.region).client("sts", endpoint_url=self.spec.endpoint_url, config=self._config())
            return sts.get_caller_identity()["Account"]

    def _user_name(self, identity: str) -> str:
        """The IAM user an iam-user-policy grant names; a user of another account is refused."""
        if not identity.startswith("arn:"):
            return identity
        account, user = identity.split(":")[4], identity.rsplit("/", 1)[1]
        if account != self.account_id:
            raise GrantRefused(self.uri, f"{identity}: account {account} is not the organiser's account "
                                         f"{self.account_id}: iam-user-policy makes users in the organiser's account "
                                         "only; grant another account via bucket-policy")
        return user

    def credentials_file(self, user: str) -> Path:
        """Where the access key ppipe makes for ``user`` is written (once, mode 0600)."""
        return settings.home() / "credentials" / self.challenge / f"{user}.json"

    def _made_by_ppipe(self, user: str) -> bool | None:
        """True if ppipe created ``user`` (its tag says so), False if not, None if there is no such user."""
        from botocore.exceptions import ClientError

        try:
            tags = self.iam.list_user_tags(UserName=user)["Tags"]
        except ClientError as exc:
            if errors.code_of(exc) == "NoSuchEntity":
                return None
            raise
        return {"Key": CREATED_BY, "Value": "ppipe"} in tags

    def _grant_user(self, identity: str) -> GrantResult:
        user = self._user_name(identity)
        with _USER_LOCKS[user]:
            return self._grant_user_locked(user)

    def _grant_user_locked(self, user: str) -> GrantResult:
        document = {"Version": POLICY_VERSION, "Statement": self.read_statements()}
        with self._errors(f"grant IAM user {user}"):
            ours = self._made_by_ppipe(user)
            if ours is None and not self._create_user(user):
                ours = self._made_by_ppipe(user)  # another process made it first: is it ours?
            if ours is False:  # never hand out keys to (or widen) a user someone else manages
                raise GrantRefused(self.uri, f"IAM user {user} exists and was not created by ppipe (no tag "
                                             f"{CREATED_BY}=ppipe): grant it via bucket-policy with its ARN, or pick another name")
            self.iam.put_user_policy(UserName=user, PolicyName=self.inline_policy_name, PolicyDocument=json.dumps(document))
            has_key = bool(self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"])
        path = self.credentials_file(user)
        what = f"read access to {self.uri} for IAM user {user}{' (created)' if ours is None else ''} via inline policy {self.inline_policy_name}"
        if not has_key:
            self._new_key(user, path)
            return GrantResult(f"{what}; new access key written to {path}", path)
        # The key file's path was printed when the key was made: once.
        return GrantResult(f"{what}; it already has the access key ppipe made", path if path.exists() else None)

    def _create_user(self, user: str) -> bool:
        """Create ``user`` with ppipe's tag; False when it already exists."""
        from botocore.exceptions import ClientError

        try:
            self.iam.create_user(UserName=user, Tags=[{"Key": CREATED_BY, "Value": "ppipe"}])
        except ClientError as exc:
            if errors.code_of(exc) == "EntityAlreadyExists":
                return False
            raise
        return True

    def _new_key(self, user: str, path: Path) -> None:
        """Make one access key for ``user`` and write it to ``path`` (0600, never overwritten)."""
        with self._errors(f"create an access key for {user}"), _no_response_bodies_logged():
            key = self.iam.create_access_key(UserName=user)["AccessKey"]
        content = {
            "user": user, "aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"],
            "bucket": self.bucket, "prefix": self.prefix, "uri": self.uri, "region": self.region,
            "endpoint_url": self.spec.endpoint_url,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path.parent.parent, 0o700)
            os.chmod(path.parent, 0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(content, out, indent=2)
        except OSError as exc:
            # A key nobody can read must not linger: delete it, then report.
            with self._errors(f"delete the unsaved access key of {user}"):
                self.iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
            raise DestinationError(self.uri, f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None

    def _revoke_user(self, identity: str) -> None:
        """Remove this challenge's inline policy; a ppipe-made user left with no ppipe policy
        loses the keys ppipe made (and their files)."""
        from botocore.exceptions import ClientError

        user = self._user_name(identity)
        with self._errors(f"revoke IAM user {user}"):
            try:
                self.iam.delete_user_policy(UserName=user, PolicyName=self.inline_policy_name)
            except ClientError as exc:
                if errors.code_of(exc) != "NoSuchEntity":
                    raise
            if not self._made_by_ppipe(user):
                return
            if any(name.startswith("ppipe-") for name in self.iam.list_user_policies(UserName=user)["PolicyNames"]):
                return  # still reads another challenge with that key
            for key in self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                self.iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        for stale in (settings.home() / "credentials").glob(f"*/{user}.json"):
            stale.unlink(missing_ok=True)


@contextmanager
def _no_response_bodies_logged():
    """Keep botocore from logging response bodies (at DEBUG) while a new secret key is fetched."""
    parsers = logging.getLogger("botocore.parsers")
    drop = logging.Filter("ppipe-drops-everything")  # matches no botocore logger name: drops all
    parsers.addFilter(drop)
    try:
        yield
    finally:
        parsers.removeFilter(drop)
