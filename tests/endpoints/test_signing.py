"""Signatures a participant can check, secrets derived (never stored), a private key file."""

from __future__ import annotations

import stat

from ppipe.endpoints import signing


def test_a_signed_body_verifies_and_any_change_does_not():
    headers = signing.signed_headers("ppwh_s", b'{"rows":[]}', now=1_800_000_000)
    assert headers["X-Ppipe-Signature"].startswith("sha256=") and headers["X-Ppipe-Timestamp"] == "1800000000"
    assert signing.verify("ppwh_s", headers, b'{"rows":[]}', now=1_800_000_010)
    assert not signing.verify("ppwh_s", headers, b'{"rows":[1]}', now=1_800_000_010)  # body changed
    assert not signing.verify("ppwh_other", headers, b'{"rows":[]}', now=1_800_000_010)  # wrong secret
    assert not signing.verify("ppwh_s", headers, b'{"rows":[]}', now=1_800_000_400)  # replayed later
    moved = {**headers, "X-Ppipe-Timestamp": "1800000001"}
    assert not signing.verify("ppwh_s", moved, b'{"rows":[]}', now=1_800_000_010)  # timestamp is signed


def test_the_signature_is_the_documented_hmac():
    import hashlib
    import hmac

    expected = hmac.new(b"ppwh_s", b"1800000000." + b"body", hashlib.sha256).hexdigest()
    assert signing.signature("ppwh_s", "1800000000", b"body") == f"sha256={expected}"


def test_secrets_are_derived_per_endpoint_and_version(ppipe_home):
    first = signing.endpoint_secret("e1", 1)
    assert first == signing.endpoint_secret("e1", 1)  # the same key and version give the same secret
    assert first != signing.endpoint_secret("e1", 2) != signing.endpoint_secret("e2", 1)
    assert first.startswith("ppwh_") and len(first) == 5 + 64


def test_the_key_file_is_private(ppipe_home):
    signing.signing_key()
    path = signing.key_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_bytes()) == 32
    assert signing.signing_key() == path.read_bytes()  # made once, then reused


def test_the_documented_verification_example_works(ppipe_home):
    """docs/endpoints.md's five lines, run against a body ppipe signed."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "endpoints.md").read_text()
    example = re.search(r"<!-- verify-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in example.splitlines() if line.strip()]) == 5
    namespace: dict = {}
    exec(example, namespace)  # noqa: S102 - our own documentation
    body = b'{"rows":[{"row_id":1,"x":0.5}]}'
    headers = signing.signed_headers("ppwh_doc", body)
    assert namespace["verify"]("ppwh_doc", headers, body) is True
    assert namespace["verify"]("ppwh_doc", headers, body + b" ") is False
