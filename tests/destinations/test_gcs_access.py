"""GCS grants: the IAM policy the emulator stores after grant and revoke.

gcp-storage-emulator implements ``GET/PUT /b/<bucket>/iam`` (stored, not enforced), so these
tests read back the stored policy with a separate google-cloud-storage client.
"""

from __future__ import annotations

import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from ppipe.destinations.gcs.client import READER_ROLE, GcsBucket
from ppipe.errors import DestinationError
from ppipe.challenge.spec import GcsDestination

FOREIGN = [
    {"role": "roles/storage.admin", "members": {"user:owner@example.com"}},
    # The same role and member as a ppipe grant, but not ppipe's: must survive a revoke.
    {"role": READER_ROLE, "members": {"user:alice@example.com", "group:staff@example.com"}},
]


@pytest.fixture
def raw(gcs_server):
    return storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_server})


def _destination(gcs_server, bucket: str, challenge: str) -> GcsBucket:
    spec = GcsDestination(bucket=bucket, endpoint_url=gcs_server, project="test")
    return GcsBucket(spec, challenge)


def _bindings(raw, bucket: str) -> tuple[list[dict], list[dict]]:
    """The stored bindings: (without a condition, with one); the server may reorder them."""
    policy = raw.bucket(bucket).get_iam_policy(requested_policy_version=3)
    bindings = [{**b, "members": set(b["members"])} for b in policy.bindings]
    return [b for b in bindings if "condition" not in b], [b for b in bindings if "condition" in b]


def test_grants_merge_with_existing_bindings_and_revoke_only_ppipes(gcs_server, raw):
    bucket = f"ppipe-g-{uuid.uuid4().hex[:10]}"
    alpha, beta = _destination(gcs_server, bucket, "alpha"), _destination(gcs_server, bucket, "beta")
    alpha.prepare()
    policy = raw.bucket(bucket).get_iam_policy(requested_policy_version=3)
    policy.bindings.extend(FOREIGN)
    raw.bucket(bucket).set_iam_policy(policy)

    alpha.grant("alice@example.com")  # a bare e-mail is a user
    alpha.grant("user:alice@example.com")  # idempotent
    alpha.grant("serviceAccount:robot@proj.iam.gserviceaccount.com")
    alpha.grant("group:team@example.com", role="roles/storage.legacyObjectReader")
    beta.grant("user:alice@example.com")

    foreign, conditional = _bindings(raw, bucket)
    assert foreign == FOREIGN
    ours = {(b["role"], b["condition"]["title"]): b for b in conditional}
    assert set(ours) == {(READER_ROLE, "ppipe-alpha"), ("roles/storage.legacyObjectReader", "ppipe-alpha"), (READER_ROLE, "ppipe-beta")}
    reader = ours[(READER_ROLE, "ppipe-alpha")]
    assert reader["members"] == {"user:alice@example.com", "serviceAccount:robot@proj.iam.gserviceaccount.com"}
    expression = reader["condition"]["expression"]
    assert f'"projects/_/buckets/{bucket}/objects/alpha/"' in expression and '.startsWith("alpha/")' in expression
    assert "objectListPrefix" in expression

    alpha.revoke("user:alice@example.com")
    alpha.revoke("alice@example.com")
    alpha.revoke("group:team@example.com")  # from the custom-role binding
    foreign, conditional = _bindings(raw, bucket)
    assert foreign == FOREIGN  # alice's non-ppipe reader binding is untouched
    ours = {(b["role"], b["condition"]["title"]): b["members"] for b in conditional}
    assert ours == {
        (READER_ROLE, "ppipe-alpha"): {"serviceAccount:robot@proj.iam.gserviceaccount.com"},
        (READER_ROLE, "ppipe-beta"): {"user:alice@example.com"},  # another challenge's grant stays
    }
    alpha.revoke("serviceAccount:robot@proj.iam.gserviceaccount.com")
    foreign, conditional = _bindings(raw, bucket)
    assert foreign == FOREIGN and [b["condition"]["title"] for b in conditional] == ["ppipe-beta"]


def test_bad_gcs_grants_are_refused(gcs_server):
    destination = _destination(gcs_server, f"ppipe-g-{uuid.uuid4().hex[:10]}", "alpha")
    with pytest.raises(DestinationError, match="not a GCS member"):
        destination.grant("domain:example.com")
    with pytest.raises(DestinationError, match="role 'writer'"):
        destination.grant("user:a@example.com", role="writer")
    with pytest.raises(DestinationError, match="via"):
        destination.grant("user:a@example.com", via="bucket-policy")
