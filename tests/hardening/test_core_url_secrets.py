"""Issue 10, point 14: URLs carrying credentials are refused like other secrets; error texts never
quote a query string; ``endpoint_url`` is checked."""

from __future__ import annotations

import pytest

from ppipe.ledger import Ledger
from tests.hardening.core_helpers import assert_one_line_error, ppipe, spec, write_spec
from tests.support.servers import free_port

SECRET = "s3cr3tVALUE"
SECRET_URLS = {
    "userinfo": f"https://alice:{SECRET}@data.example.org/flights.csv",
    "user-only": f"https://{SECRET}@data.example.org/flights.csv",
    "s3-presigned": f"https://b.s3.amazonaws.com/f.csv?X-Amz-Algorithm=AWS4&X-Amz-Signature={SECRET}",
    "gcs-signed": f"https://storage.googleapis.com/b/f.csv?X-Goog-Signature={SECRET}&X-Goog-Expires=60",
    "sas-token": f"https://acct.blob.core.windows.net/c/f.csv?sv=2022&sig={SECRET}",
    "token-param": f"https://data.example.org/f.csv?access_token={SECRET}",
}


@pytest.mark.parametrize("command", ["plan", "create"])
@pytest.mark.parametrize("case", sorted(SECRET_URLS))
def test_a_source_url_carrying_a_secret_is_refused_without_quoting_it(tmp_path, case, command):
    path = write_spec(tmp_path, spec(tmp_path, source=SECRET_URLS[case]))
    result = ppipe(command, str(path))
    line = assert_one_line_error(result, "source")
    assert "credential" in line or "secret" in line, line  # refused for what it carries, not for the network
    assert SECRET not in result.stdout + result.stderr, line
    assert not (tmp_path / "ppipe-home" / "ledger.db").exists() or Ledger().list_challenges() == []


def test_an_error_about_a_source_url_never_quotes_its_query_string(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/flights.csv?page=1&filter={SECRET}"  # nothing listens there
    result = ppipe("plan", str(write_spec(tmp_path, spec(tmp_path, source=url))))
    assert_one_line_error(result, "127.0.0.1")
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("endpoint", [
    "127.0.0.1:9000", "ftp://127.0.0.1:9000", f"http://admin:{SECRET}@127.0.0.1:9000",
    f"http://127.0.0.1:9000/?token={SECRET}", "http://", "http://exa mple.org",
])
def test_endpoint_url_is_validated(tmp_path, endpoint):
    destination = {"kind": "s3", "bucket": "ppipe-x", "endpoint_url": endpoint}
    result = ppipe("plan", str(write_spec(tmp_path, spec(tmp_path, destinations=[destination]))))
    assert_one_line_error(result, "endpoint_url")
    assert SECRET not in result.stdout + result.stderr
