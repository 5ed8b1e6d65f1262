"""The Drive test server itself: the parts pydrive2 exercises only indirectly, checked through googleapiclient."""

from __future__ import annotations

import io
import json

import httplib2
import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload
from pydrive2.auth import GoogleAuth

from tests.support.drive_server import ApiError, parse_query


@pytest.fixture
def service(drive_routing, drive_key_file):
    """An authorised Drive v2 API client (the one pydrive2 builds) on the test server."""
    auth = GoogleAuth(settings={"client_config_backend": "service",
                                "service_config": {"client_json_file_path": str(drive_key_file)}})
    auth.ServiceAuth()
    return auth.service


def test_multipart_upload(service, drive_server, drive_parent):
    media = MediaIoBaseUpload(io.BytesIO(b"a,b\n1,2\n"), "text/csv", resumable=False)
    body = {"title": "m.csv", "parents": [{"id": drive_parent}]}
    created = service.files().insert(body=body, media_body=media).execute()
    assert drive_server.requests[-1][2]["uploadType"] == "multipart"
    assert drive_server.contents[created["id"]] == b"a,b\n1,2\n"
    assert created["mimeType"] == "text/csv" and created["fileSize"] == "8"


def test_resumable_upload_in_chunks(service, drive_server, drive_parent):
    data = bytes(range(256)) * 1024 + b"!"  # one full 256 KiB chunk (the minimum size), then one byte
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", chunksize=256 * 1024, resumable=True)
    request = service.files().insert(body={"title": "big.bin", "parents": [{"id": drive_parent}]}, media_body=media)
    status, response = request.next_chunk()
    assert response is None and status.resumable_progress == 256 * 1024  # the server answered 308
    status, response = request.next_chunk()
    assert drive_server.contents[response["id"]] == data


def test_not_found_has_googles_error_shape(service):
    with pytest.raises(HttpError) as caught:
        service.files().get(fileId="nope").execute()
    error = json.loads(caught.value.content)["error"]
    assert (error["code"], error["errors"][0]["reason"], error["message"]) == (404, "notFound", "File not found: nope.")


def test_api_calls_need_a_token(drive_server):
    response, content = httplib2.Http().request(f"{drive_server.url}/drive/v2/files")
    assert response.status == 401 and json.loads(content)["error"]["errors"][0]["reason"] == "authError"


def test_v2_has_no_commenter_role(service, drive_parent):
    with pytest.raises(HttpError) as caught:
        body = {"type": "user", "value": "a@b.org", "role": "commenter"}
        service.permissions().insert(fileId=drive_parent, body=body).execute()
    assert caught.value.resp.status == 400


@pytest.mark.parametrize("q, expected", [
    ("title = 'it\\'s'", ["it's"]),
    ("title = 'a' or title = 'b'", ["a", "b"]),
    ("'p1' in parents and not trashed = true", ["a"]),
    ("(title = 'a' or title = 'it\\'s') and mimeType != 'text/csv'", ["a", "it's"]),
    ("title contains 'b'", ["b"]),
])
def test_query_subset(q, expected):
    files = [
        {"title": "a", "mimeType": "x", "parents": [{"id": "p1"}], "labels": {"trashed": False}},
        {"title": "b", "mimeType": "text/csv", "parents": [{"id": "p2"}], "labels": {"trashed": False}},
        {"title": "it's", "mimeType": "x", "parents": [{"id": "p2"}], "labels": {"trashed": True}},
    ]
    predicate = parse_query(q)
    assert [f["title"] for f in files if predicate(f)] == expected


@pytest.mark.parametrize("q", ["title = ", "title = 'a' and", "owners in 'x'", "title = 'a"])
def test_unsupported_queries_are_400(q):
    with pytest.raises(ApiError) as caught:
        parse_query(q)
    assert caught.value.code == 400
