"""Points 7, 8 and 9: delete revokes first, revoke finds a grant however it was made, and the
organiser can see who has access.

Against moto with IAM enforced, through the ``ppipe`` command line (typer's CliRunner).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppipe.cli import app
from tests.hardening.conftest import bucket_policy, fresh_bucket, principals, s3_spec
from tests.support.helpers import write_csv

README = Path(__file__).resolve().parents[2] / "README.md"
runner = CliRunner()
ACCOUNT_ROOT = "arn:aws:iam::210987654321:root"


def ppipe(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def _write(tmp_path, bucket: str, endpoint: str, grants: list[dict]) -> Path:
    import yaml

    write_csv(tmp_path / "data.csv", 20)
    path = tmp_path / "alpha.yaml"
    path.write_text(yaml.safe_dump({
        "name": "alpha", "source": str(tmp_path / "data.csv"), "releases": 2,
        "schedule": {"start": "2026-12-01T09:00:00Z", "every": "60s"},
        "destinations": [s3_spec(endpoint, bucket)], "grants": grants,
    }))
    return path


@pytest.fixture
def alpha(tmp_path, organiser):
    """Challenge alpha on a fresh bucket with one account granted, its first release delivered."""
    bucket = fresh_bucket()
    path = _write(tmp_path, bucket, organiser.endpoint, [{"service": "s3", "identity": "210987654321"}])
    assert ppipe("create", str(path)).exit_code == 0
    ran = ppipe("run", "alpha", "--release", "0")
    assert ran.exit_code == 0, ran.output
    assert ACCOUNT_ROOT in principals(bucket_policy(organiser("s3"), bucket))
    return path, bucket


def test_delete_revokes_and_a_recreated_challenge_inherits_nothing(tmp_path, organiser, alpha):
    path, bucket = alpha
    deleted = ppipe("delete", "alpha", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert ACCOUNT_ROOT not in principals(bucket_policy(organiser("s3"), bucket))
    _write(tmp_path, bucket, organiser.endpoint, [])  # same name, same bucket, no grants
    assert ppipe("create", str(path)).exit_code == 0
    assert ppipe("run", "alpha", "--release", "0").exit_code == 0
    assert principals(bucket_policy(organiser("s3"), bucket)) == set()


def test_delete_refuses_when_a_revoke_fails_and_says_why(organiser, alpha):
    _, bucket = alpha
    organiser("iam").put_user_policy(UserName="organiser", PolicyName="no-policy-changes", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Resource": "*",
                                                "Action": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"]}]}))
    refused = ppipe("delete", "alpha", "--yes")
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.strip().splitlines()
    assert "cannot delete alpha" in line and "210987654321" in line and "access denied" in line
    assert ppipe("show", "alpha").exit_code == 0  # still there
    assert ACCOUNT_ROOT in principals(bucket_policy(organiser("s3"), bucket))
    forced = ppipe("delete", "alpha", "--yes", "--keep-access")  # the organiser's way out, said aloud
    assert forced.exit_code == 0, forced.output
    assert forced.stderr.startswith("warning: ") and "210987654321" in forced.stderr
    assert ppipe("show", "alpha").exit_code == 2


def test_revoke_without_via_finds_an_iam_user_grant(organiser, alpha):
    granted = ppipe("grant", "alpha", "--service", "s3", "--identity", "carol", "--via", "iam-user-policy")
    assert granted.exit_code == 0, granted.output
    assert organiser("iam").list_user_policies(UserName="carol")["PolicyNames"]
    revoked = ppipe("revoke", "alpha", "--service", "s3", "--identity", "carol")
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout and "carol" in revoked.stdout
    assert organiser("iam").list_user_policies(UserName="carol")["PolicyNames"] == []
    missing = ppipe("revoke", "alpha", "--service", "s3", "--identity", "dora")
    assert missing.exit_code == 2 and "no s3 grant for 'dora'" in missing.stderr


def test_show_lists_grants_and_the_key_file_is_printed_once(organiser, alpha, ppipe_home):
    granted = ppipe("grant", "alpha", "--service", "s3", "--identity", "carol", "--via", "iam-user-policy")
    key_file = ppipe_home / "credentials" / "alpha" / "carol.json"
    assert "IAM user carol (created)" in granted.stdout and str(key_file) in granted.stdout
    again = ppipe("grant", "alpha", "--service", "s3", "--identity", "carol", "--via", "iam-user-policy")
    assert again.exit_code == 0 and "created" not in again.stdout and "new access key" not in again.stdout
    refused = ppipe("grant", "alpha", "--service", "s3", "--identity", "root-ish-admin", "--via", "iam-user-policy")
    assert refused.exit_code == 2 and "not created by ppipe" in refused.stderr

    shown = json.loads(ppipe("show", "alpha", "--json").stdout)
    grants = {(g["service"], g["via"], g["identity"]): g for g in shown["grants"]}
    assert {key: (g["state"], [(a["state"], bool(a["error"])) for a in g["destinations"]])
            for key, g in grants.items()} == {
        ("s3", "bucket-policy", "210987654321"): ("active", [("active", False)]),
        ("s3", "iam-user-policy", "carol"): ("active", [("active", False)]),
        ("s3", "iam-user-policy", "root-ish-admin"): ("active", [("failed", True)]),
    }
    table = ppipe("show", "alpha").stdout
    assert "grants" in table and "carol" in table and "root-ish-admin" in table and "failed" in table


def test_readme_documents_the_credentials_folder():
    text = README.read_text()
    assert "PPIPE_HOME/credentials/" in text


def test_run_prints_a_new_users_key_file_once(tmp_path, organiser, ppipe_home):
    path = _write(tmp_path, fresh_bucket(), organiser.endpoint,
                  [{"service": "s3", "via": "iam-user-policy", "identity": "erin"}])
    assert ppipe("create", str(path)).exit_code == 0
    first = ppipe("run", "alpha", "--release", "0")
    key_file = str(ppipe_home / "credentials" / "alpha" / "erin.json")
    assert first.exit_code == 0 and "IAM user erin (created)" in first.stdout and key_file in first.stdout
    second = ppipe("run", "alpha", "--release", "1")
    assert second.exit_code == 0 and key_file not in second.stdout
