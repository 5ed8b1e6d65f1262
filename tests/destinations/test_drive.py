"""The Google Drive destination against the Drive v2-compatible test server, through pydrive2."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from pydrive2.auth import GoogleAuth
from pydrive2.drive import GoogleDrive

from ppipe.destinations import open_destination
from ppipe.destinations.drive.client import DriveFolder, quote
from ppipe.errors import ConfigError, DestinationError
from ppipe.challenge.spec import DriveDestination
from tests.support.drive_server import FOLDER_MIME
from tests.support.fixtures_drive import write_key_file

PARTICIPANT = "participant@example.com"


@pytest.fixture
def make(drive_routing, drive_key_file, drive_parent):
    """make(challenge, **spec fields) -> DriveFolder under the test's fresh parent folder."""

    def build(challenge: str = "demo", **fields) -> DriveFolder:
        fields = {"parent": drive_parent, "service_account_file": str(drive_key_file), **fields}
        return open_destination(DriveDestination(**fields), challenge)

    return build


@pytest.fixture
def release(tmp_path):
    """A CSV release file as the data path writes them."""
    path = tmp_path / "release_0.csv"
    path.write_bytes(b"row_id,city,temp\n" + b"".join(b"%d,city-%d,%d.5\n" % (i, i % 7, i % 40) for i in range(5000)))
    return path


@pytest.fixture
def participant(drive_server, drive_routing, tmp_path) -> GoogleDrive:
    """A second, independent pydrive2 client, as a participant's own script would use."""
    path, key_id, public_key = write_key_file(tmp_path / "participant.json", drive_server.token_uri,
                                              email="participant-bot@example.iam.gserviceaccount.com")
    drive_server.add_service_account("participant-bot@example.iam.gserviceaccount.com", key_id, public_key)
    auth = GoogleAuth(settings={"client_config_backend": "service",
                                "service_config": {"client_json_file_path": str(path)}})
    auth.ServiceAuth()
    return GoogleDrive(auth)


def folder_of(server, parent: str, title: str) -> dict:
    [folder] = [f for f in server.children(parent) if f["title"] == title and f["mimeType"] == FOLDER_MIME]
    return folder


def calls(server, method: str, path_part: str, since: int = 0) -> list:
    return [r for r in server.requests[since:] if r[0] == method and path_part in r[1]]


# --- folder --------------------------------------------------------------------------------


def test_prepare_creates_one_folder_titled_for_the_challenge(make, drive_server, drive_parent):
    destination = make("weather")
    destination.prepare()
    destination.prepare()
    folder = folder_of(drive_server, drive_parent, "challenge_weather")
    assert folder["parents"][0]["id"] == drive_parent
    assert destination.uri == f"drive://{drive_parent}/challenge_weather"


def test_quotes_in_the_folder_title_are_escaped(make, drive_server, drive_parent):
    destination = make("demo", folder="it's ours")
    destination.prepare()
    make("demo", folder="it's ours").prepare()  # a new instance finds it instead of making another
    assert folder_of(drive_server, drive_parent, "it's ours")
    assert quote("a\\b's") == "'a\\\\b\\'s'"


def test_two_folders_with_the_title_is_an_error(make, drive_server, drive_parent):
    drive_server.create_folder("challenge_twice", drive_parent)
    drive_server.create_folder("challenge_twice", drive_parent)
    with pytest.raises(DestinationError, match="2 folders titled 'challenge_twice'") as caught:
        make("twice").prepare()
    assert str(caught.value).startswith(f"destination drive://{drive_parent}/challenge_twice: ")


def test_missing_parent_is_a_clear_error(drive_routing, drive_key_file, drive_server):
    spec = DriveDestination(parent="no-such-folder", service_account_file=str(drive_key_file))
    before = len(drive_server.files)
    with pytest.raises(DestinationError, match="parent folder no-such-folder does not exist"):
        DriveFolder(spec, "demo").prepare()
    assert len(drive_server.files) == before


def test_parent_that_is_a_file_is_refused(make, release, drive_server, drive_parent):
    destination = make("files")
    destination.upload(release, "release_0.csv")
    file_id = next(f["id"] for f in drive_server.files.values() if f["title"] == "release_0.csv"
                   and f["parents"][0]["id"] == destination._folder_id)
    with pytest.raises(DestinationError, match="is a file, not a folder"):
        make("files", parent=file_id).prepare()


# --- files ---------------------------------------------------------------------------------


def test_participant_lists_and_downloads_the_release(make, release, participant, drive_parent, tmp_path):
    destination = make("weather")
    destination.prepare()
    assert destination.upload(release, "release_0.csv") == f"drive://{drive_parent}/challenge_weather/release_0.csv"

    [folder] = participant.ListFile({"q": f"title = 'challenge_weather' and '{drive_parent}' in parents"}).GetList()
    [listed] = participant.ListFile({"q": f"'{folder['id']}' in parents and trashed = false"}).GetList()
    assert listed["title"] == "release_0.csv" and listed["mimeType"] == "text/csv"
    listed.GetContentFile(str(tmp_path / "downloaded.csv"))
    assert (tmp_path / "downloaded.csv").read_bytes() == release.read_bytes()
    sha = {p["key"]: p["value"] for p in listed["properties"]}["ppipe_sha256"]
    assert sha == hashlib.sha256(release.read_bytes()).hexdigest()


def test_reupload_updates_the_same_file(make, release, tmp_path, drive_server):
    destination = make("weather")
    destination.upload(release, "release_0.csv")
    [first] = drive_server.children(destination._folder_id)
    changed = tmp_path / "changed.csv"
    changed.write_bytes(b"row_id,city,temp\n1,elsewhere,3.5\n")

    make("weather").upload(changed, "release_0.csv")  # a fresh instance, as a retried task would be

    [second] = drive_server.children(destination._folder_id)
    assert second["id"] == first["id"] and int(second["version"]) > 1
    assert drive_server.contents[second["id"]] == changed.read_bytes()
    assert {p["key"]: p["value"] for p in second["properties"]}["ppipe_sha256"] == hashlib.sha256(
        changed.read_bytes()).hexdigest()


def test_exists_answers_from_metadata_without_downloading(make, release, drive_server):
    destination = make("weather")
    destination.upload(release, "release_0.csv")
    mark = len(drive_server.requests)
    assert destination.exists("release_0.csv", hashlib.sha256(release.read_bytes()).hexdigest())
    assert not [r for r in drive_server.requests[mark:] if r[2].get("alt") == "media"]


def test_exists_notices_content_replaced_by_another_client(make, release, participant, drive_server):
    destination = make("weather")
    destination.upload(release, "release_0.csv")
    [stored] = drive_server.children(destination._folder_id)
    replaced = participant.CreateFile({"id": stored["id"]})
    replaced.SetContentString("tampered")
    replaced.Upload()  # Drive keeps ppipe's properties but recomputes md5Checksum

    assert not destination.exists("release_0.csv", hashlib.sha256(release.read_bytes()).hexdigest())
    assert destination.exists("release_0.csv", hashlib.sha256(b"tampered").hexdigest())


def test_stat_reads_an_empty_file(make, tmp_path):
    empty = tmp_path / "release_9.csv"
    empty.write_bytes(b"")
    destination = make("weather")
    destination.upload(empty, "release_9.csv")
    info = destination.stat("release_9.csv")
    assert (info.size, info.sha256) == (0, hashlib.sha256(b"").hexdigest())


def test_stat_reads_large_files_in_chunks(make, tmp_path, monkeypatch, drive_server):
    monkeypatch.setattr("ppipe.destinations.drive.client.DOWNLOAD_CHUNK", 1000)
    data = bytes(range(256)) * 20  # 5120 bytes: six ranged requests
    path = tmp_path / "release_1.parquet"
    path.write_bytes(data)
    destination = make("weather")
    destination.upload(path, "release_1.parquet")
    mark = len(drive_server.requests)
    assert destination.stat("release_1.parquet").sha256 == hashlib.sha256(data).hexdigest()
    assert len([r for r in drive_server.requests[mark:] if r[2].get("alt") == "media"]) == 6


def test_delete_removes_only_that_file(make, release, drive_server):
    destination = make("weather")
    destination.upload(release, "release_0.csv")
    destination.upload(release, "release_1.csv")
    destination.delete("release_0.csv")
    destination.delete("release_0.csv")
    assert [f["title"] for f in drive_server.children(destination._folder_id)] == ["release_1.csv"]


def test_provider_errors_are_one_line_and_name_the_file(make, release, drive_server):
    destination = make("weather")
    destination.prepare()
    drive_server.state.delete(destination._folder_id)  # removed behind ppipe's back
    with pytest.raises(DestinationError) as caught:
        destination.upload(release, "release_0.csv")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"destination {destination.uri_of('release_0.csv')}: upload: Drive answered 404")


# --- credentials ---------------------------------------------------------------------------


def test_unknown_key_is_refused_without_showing_it(drive_routing, drive_server, drive_parent, tmp_path, caplog):
    # Same service-account e-mail, but a key the server never registered.
    path, key_id, _ = write_key_file(tmp_path / "stolen.json", drive_server.token_uri)
    key = json.loads(path.read_text())
    caplog.set_level(logging.DEBUG)
    spec = DriveDestination(parent=drive_parent, service_account_file=str(path))
    refused = "refused the service-account credentials.*Invalid JWT Signature"
    with pytest.raises(DestinationError, match=refused) as caught:
        DriveFolder(spec, "demo").prepare()
    secret_bits = [key_id, *key["private_key"].splitlines()[1:-1]]
    shown = str(caught.value) + repr(caught.value.__cause__) + caplog.text
    assert not [bit for bit in secret_bits if bit in shown]


def test_unregistered_account_is_refused(drive_routing, drive_server, drive_parent, tmp_path):
    email = "nobody@example.iam.gserviceaccount.com"
    path, _, _ = write_key_file(tmp_path / "other.json", drive_server.token_uri, email=email)
    spec = DriveDestination(parent=drive_parent, service_account_file=str(path))
    with pytest.raises(DestinationError, match="account not found"):
        DriveFolder(spec, "demo").prepare()


def test_broken_key_file_is_named_not_quoted(drive_routing, drive_parent, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({
        "type": "service_account", "client_email": "a@b.c", "private_key_id": "k1", "client_id": "1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nTOPSECRETBYTES\n-----END PRIVATE KEY-----\n",
    }))
    spec = DriveDestination(parent=drive_parent, service_account_file=str(path))
    with pytest.raises(DestinationError, match=f"service-account key file {path} is not a valid key") as caught:
        DriveFolder(spec, "demo").prepare()
    assert "TOPSECRET" not in str(caught.value) and caught.value.__cause__ is None


def test_no_key_configured_lists_every_place(drive_routing, drive_parent):
    with pytest.raises(ConfigError) as caught:
        DriveFolder(DriveDestination(parent=drive_parent), "demo").prepare()
    for place in ("service_account_file", "PPIPE_DRIVE_SERVICE_ACCOUNT_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert place in str(caught.value)


@pytest.mark.parametrize("variable", ["PPIPE_DRIVE_SERVICE_ACCOUNT_FILE", "GOOGLE_APPLICATION_CREDENTIALS"])
def test_key_file_from_the_environment(variable, drive_routing, drive_key_file, drive_parent, monkeypatch, tmp_path):
    monkeypatch.setenv(variable, str(drive_key_file))
    DriveFolder(DriveDestination(parent=drive_parent), "demo").prepare()
    monkeypatch.setenv(variable, str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=f"{variable}: .*missing.json is not a file"):
        DriveFolder(DriveDestination(parent=drive_parent), "demo").prepare()


# --- access --------------------------------------------------------------------------------


def grantee(server, folder_id: str, email: str) -> list[dict]:
    return [p for p in server.permissions[folder_id] if p.get("emailAddress") == email]


def test_grant_stores_a_reader_permission_without_mail(make, drive_server):
    destination = make("weather")
    result = destination.grant(PARTICIPANT)
    [perm] = grantee(drive_server, destination._folder_id, PARTICIPANT)
    assert (perm["type"], perm["role"], perm.get("additionalRoles")) == ("user", "reader", None)
    assert not [n for n in drive_server.notifications if n[0] == destination._folder_id]
    [insert] = calls(drive_server, "POST", f"/files/{destination._folder_id}/permissions")
    assert insert[2]["sendNotificationEmails"] == "false"
    assert "no notification" in result.description and PARTICIPANT in result.description


def test_grant_with_notify_mails_once_and_is_idempotent(make, drive_server):
    destination = make("weather")
    destination.grant("notified@example.com", notify=True)
    mark = len(drive_server.requests)
    again = destination.grant("notified@example.com", notify=True)
    assert "already granted" in again.description
    assert not calls(drive_server, "POST", "/permissions", since=mark)
    assert [e for _, e in drive_server.notifications if e == "notified@example.com"] == ["notified@example.com"]
    assert len(grantee(drive_server, destination._folder_id, "notified@example.com")) == 1


def test_commenter_is_reader_with_additional_role_and_can_be_changed(make, drive_server):
    destination = make("weather")
    destination.grant(PARTICIPANT, "commenter")
    [perm] = grantee(drive_server, destination._folder_id, PARTICIPANT)
    assert (perm["role"], perm["additionalRoles"]) == ("reader", ["commenter"])
    destination.grant(PARTICIPANT, "reader")
    [changed] = grantee(drive_server, destination._folder_id, PARTICIPANT)
    assert (changed["id"], changed["role"], changed.get("additionalRoles") or None) == (perm["id"], "reader", None)


def test_group_grant(make, drive_server):
    destination = make("weather")
    destination.grant("group:team@example.com")
    [perm] = grantee(drive_server, destination._folder_id, "team@example.com")
    assert (perm["type"], perm["role"]) == ("group", "reader")


def test_revoke_removes_only_that_identity(make, drive_server):
    destination = make("weather")
    destination.grant(PARTICIPANT)
    destination.grant("other@example.com", "commenter")
    destination.revoke(PARTICIPANT)
    destination.revoke(PARTICIPANT)
    remaining = {(p["emailAddress"], p["role"]) for p in drive_server.permissions[destination._folder_id]}
    assert remaining == {("other@example.com", "reader"), ("ppipe-test@ppipe-test.iam.gserviceaccount.com", "owner")}


def test_revoke_before_any_folder_exists_does_nothing(make, drive_server, drive_parent):
    make("never").revoke(PARTICIPANT)
    assert drive_server.children(drive_parent) == []


@pytest.mark.parametrize("identity, role, message", [
    (PARTICIPANT, "owner", "role 'owner': grants are read-only"),
    ("not-an-email", "reader", "not a valid e-mail"),
    ("domain:example.com", "reader", "use an e-mail address"),
])
def test_bad_grants_are_refused(make, identity, role, message):
    with pytest.raises(DestinationError, match=message):
        make("weather").grant(identity, role)


def test_revoking_the_owner_address_leaves_the_owner(make, drive_server):
    destination = make("weather")
    destination.prepare()
    destination.revoke("ppipe-test@ppipe-test.iam.gserviceaccount.com")
    assert [p["role"] for p in drive_server.permissions[destination._folder_id]] == ["owner"]


def test_user_and_group_of_one_address_are_separate_grants(make, drive_server):
    destination = make("weather")
    destination.grant("group:team@example.com")
    destination.grant("team@example.com", "commenter")
    assert {p["type"] for p in grantee(drive_server, destination._folder_id, "team@example.com")} == {"user", "group"}
    destination.revoke("user:team@example.com")
    [left] = grantee(drive_server, destination._folder_id, "team@example.com")
    assert (left["type"], left["role"]) == ("group", "reader")
