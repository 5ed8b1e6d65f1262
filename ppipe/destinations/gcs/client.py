"""Google Cloud Storage buckets: releases at ``gs://<bucket>/<prefix>/<name>``.

Objects go through gcsfs (each object is written atomically by GCS); bucket creation and IAM
go through google-cloud-storage, pointed at the same endpoint with the same credentials.

A grant is an IAM binding of ``roles/storage.objectViewer`` (role ``reader``, or a
``roles/...`` role) for a ``user:``, ``group:`` or ``serviceAccount:`` member, carrying an IAM
condition titled ``ppipe-<challenge>`` that limits it to the challenge's prefix (objects under
``<prefix>/`` and listings of that prefix). The condition is what makes the access "this
challenge's location only" on a shared bucket, and it marks ppipe's bindings, so a revoke
removes the member from those and from nothing else. Conditional bindings need uniform
bucket-level access, which ppipe turns on for the buckets it creates.

A bucket that already exists must be the organiser's (a predictable name may have been taken
by another project): its ``projectNumber`` must be ``project_number`` when the spec gives one,
else the bucket must be among ``project``'s buckets.

Environment: ``PPIPE_CONNECT_TIMEOUT`` (seconds, default 10) bounds each connection attempt and
``PPIPE_RETRY_DEADLINE`` (seconds, default 60) the retries of one bucket/IAM call.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from ppipe import settings
from ppipe.destinations.gcs import credentials, errors
from ppipe.destinations.gcs.spec import check_member
from ppipe.destinations.base import GrantResult
from ppipe.durable import file_sha256
from ppipe.destinations.bucket import BucketPrefix
from ppipe.errors import DestinationError, GrantRefused

READER_ROLE = "roles/storage.objectViewer"
READ_ROLES = ("reader", READER_ROLE, "roles/storage.legacyObjectReader")
SHA256_KEY = "sha256"  # custom object metadata key


def _timeouts() -> tuple[float, float]:
    return settings.connect_timeout(), 60.0


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(settings.retry_deadline())


class GcsBucket(BucketPrefix):
    """One challenge's prefix in a GCS bucket."""

    kind = "gcs"

    # -- clients --------------------------------------------------------------------------

    @cached_property
    def access(self) -> credentials.GcsAccess:
        return credentials.gcs(self.spec, self.uri)

    @property
    def project(self) -> str | None:
        return self.spec.project or self.access.project

    @cached_property
    def fs(self):
        import gcsfs

        return gcsfs.GCSFileSystem(
            token=self.access.gcsfs_token(), project=self.project, endpoint_url=self.spec.endpoint_url,
            skip_instance_cache=True,
        )

    @cached_property
    def client(self):
        from google.cloud import storage

        options = {"api_endpoint": self.spec.endpoint_url} if self.spec.endpoint_url else None
        # "<none>" is what google-cloud-storage itself uses for a client without a project.
        return storage.Client(project=self.project or "<none>", credentials=self.access.credentials, client_options=options)

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, what: str, exc: BaseException) -> tuple[str, bool]:
        return errors.translate(exc, what, bucket=self.bucket, source=self.access.source,
                                endpoint=self.spec.endpoint_url or "Google Cloud Storage")

    # -- objects --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the bucket (in ``project`` and ``location``, uniform access on) if missing; an
        existing bucket must be the organiser's (:meth:`_check_project`). Idempotent."""
        from google.api_core import exceptions as api

        connect, read = _timeouts()
        with self._errors("check the bucket"):
            found = self.client.lookup_bucket(self.bucket, timeout=(connect, read), retry=_retry())
        if found is not None:
            self._check_project(found)
            return
        if not self.project:
            raise DestinationError(self.uri, f"bucket {self.bucket} does not exist; set 'project' to have ppipe create it")
        bucket = self.client.bucket(self.bucket)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        with self._errors(f"create bucket {self.bucket}"):
            try:
                self.client.create_bucket(
                    bucket, project=self.project, location=self.spec.location_, timeout=(connect, read), retry=_retry()
                )
            except api.Conflict as exc:
                if "already own" not in (exc.message or ""):  # not created meanwhile by us
                    raise DestinationError(
                        self.uri, f"bucket name {self.bucket} is taken by another project: choose another 'bucket'"
                    ) from None

    def _check_project(self, bucket) -> None:
        """A bucket that already exists must be the organiser's: a predictable name
        (``ppipe-<challenge>``) may have been taken, and left open, by another project.
        Checked against ``project_number`` when given, else among ``project``'s buckets."""
        expected = self.spec.project_number
        actual = str(bucket.project_number) if bucket.project_number is not None else "unknown"
        if expected:
            if actual != expected:
                raise DestinationError(self.uri, f"bucket {self.bucket} belongs to project {actual}, not the "
                                                 f"organiser's project {expected} (project_number): choose another 'bucket'")
            return
        if self.project and self.bucket not in self._project_buckets():
            raise DestinationError(self.uri, f"bucket {self.bucket} belongs to project {actual}, not the organiser's "
                                             f"project {self.project} (it is not among its buckets): choose another 'bucket'")

    def _project_buckets(self) -> set[str]:
        """The names of ``project``'s buckets; a refused listing says how to check without one."""
        from google.api_core import exceptions as api

        connect, read = _timeouts()
        with self._errors(f"list the buckets of project {self.project}"):
            try:
                listed = self.client.list_buckets(project=self.project, timeout=(connect, read), retry=_retry())
                return {bucket.name for bucket in listed}
            except api.Forbidden:
                raise DestinationError(self.uri, f"may not list project {self.project}'s buckets to check that bucket "
                                                 f"{self.bucket} is the organiser's: set 'project_number'") from None

    def upload(self, local_file: Path, name: str) -> str:
        """Put ``local_file`` at ``<prefix>/<name>`` with its sha256 as metadata; return ``uri_of(name)``."""
        _, digest = file_sha256(local_file)
        with self._errors(f"upload {name}"):
            self.fs.put_file(str(local_file), self._path(name), metadata={SHA256_KEY: digest})
        return self.uri_of(name)

    def exists(self, name: str, sha256: str) -> bool:
        """True if ``name`` is stored with this sha256: answered from the object's metadata;
        objects without ppipe's metadata are read back and hashed."""
        with self._errors(f"check {name}"):
            self.fs.invalidate_cache(self._path(name))
            try:
                info = self.fs.info(self._path(name))
            except FileNotFoundError:
                return False
        stored = (info.get("metadata") or {}).get(SHA256_KEY)
        return stored == sha256 if stored else super().exists(name, sha256)

    # -- grants ---------------------------------------------------------------------------

    @property
    def condition(self) -> dict:
        """ppipe's IAM condition for this challenge: its prefix's objects and listings."""
        base = f"projects/_/buckets/{self.bucket}"
        if self.prefix:
            expression = (
                f'resource.name.startsWith("{base}/objects/{self.prefix}/") || '
                f'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{self.prefix}/")'
            )
        else:
            expression = f'resource.name.startsWith("{base}")'
        return {
            "title": f"ppipe-{self.challenge}"[:100],
            "description": f"ppipe: read access to {self.uri}",
            "expression": expression,
        }

    def _member(self, identity: str) -> str:
        try:
            return check_member(identity)
        except ValueError as exc:
            raise DestinationError(self.uri, str(exc)) from None

    def iam_policy(self):
        """The bucket's IAM policy (google.api_core.iam.Policy, version 3)."""
        connect, read = _timeouts()
        with self._errors("read the bucket IAM policy"):
            policy = self.client.bucket(self.bucket).get_iam_policy(
                requested_policy_version=3, timeout=(connect, read), retry=_retry()
            )
        policy.version = 3  # conditional bindings need version 3
        return policy

    def _set_policy(self, policy) -> None:
        connect, read = _timeouts()
        with self._errors("write the bucket IAM policy"):
            try:
                self.client.bucket(self.bucket).set_iam_policy(policy, timeout=(connect, read), retry=_retry())
            except Exception as exc:
                if "uniform" in str(exc).lower():  # conditions refused: uniform bucket-level access is off
                    raise DestinationError(
                        self.uri, "per-challenge grants need uniform bucket-level access on the bucket: turn it on"
                    ) from None
                raise

    def _ours(self, binding: dict) -> bool:
        return (binding.get("condition") or {}).get("title") == self.condition["title"]

    def grant(self, identity: str, role: str = "reader", *, via: str | None = None, notify: bool = False) -> GrantResult:
        """Add ``identity`` to ppipe's conditional binding of ``role`` (merged with the policy's
        other bindings). Idempotent. Returns a GrantResult describing the binding."""
        if via is not None:
            raise DestinationError(self.uri, "via: applies to s3 grants only")
        if role not in READ_ROLES:
            raise GrantRefused(self.uri, f"role {role!r}: grants are read-only: use {', '.join(READ_ROLES)}")
        role = READER_ROLE if role == "reader" else role
        member = self._member(identity)
        policy = self.iam_policy()
        binding = next((b for b in policy.bindings if b["role"] == role and self._ours(b)), None)
        if binding is None:
            policy.bindings.append({"role": role, "members": {member}, "condition": self.condition})
            self._set_policy(policy)
        elif member not in binding["members"]:
            binding["members"] = set(binding["members"]) | {member}
            self._set_policy(policy)
        return GrantResult(f"{role} on {self.uri} for {member} (IAM binding with condition {self.condition['title']})")

    def revoke(self, identity: str, *, via: str | None = None) -> None:
        """Remove ``identity`` from ppipe's bindings for this challenge (any role); other
        members and bindings stay. Idempotent."""
        member = self._member(identity)
        policy = self.iam_policy()
        changed = False
        for binding in policy.bindings:
            if self._ours(binding) and member in binding["members"]:
                binding["members"] = set(binding["members"]) - {member}
                changed = True
        if changed:
            policy.bindings = [b for b in policy.bindings if b["members"]]
            self._set_policy(policy)
