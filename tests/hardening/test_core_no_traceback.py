"""Issue 10, point 17: no Python traceback reaches a user; a deterministic failure is not retried."""

from __future__ import annotations

import time

import pytest

from tests.hardening.core_helpers import assert_one_line_error, no_traceback, ppipe, spec, write_spec
from tests.support.servers import free_port


def test_running_an_unknown_challenge_is_one_line(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setenv("PPIPE_DEPLOYMENTS_DIR", str(tmp_path))
    assert_one_line_error(ppipe("run", "no-such-challenge"), "no-such-challenge")


def test_an_unreachable_prefect_api_is_one_line(tmp_path):
    path = write_spec(tmp_path, spec(tmp_path))
    assert ppipe("create", str(path)).returncode == 0
    url = f"http://127.0.0.1:{free_port()}/api"
    assert_one_line_error(ppipe("run", "chal-a", env={"PREFECT_API_URL": url}), url)


def test_bad_credentials_are_one_line_per_failure_and_no_traceback(prefect_api, tmp_path):
    destination = {"kind": "s3", "bucket": "ppipe-x", "endpoint_url": "http://127.0.0.1:9",
                   "credentials_block": "no-such-block"}
    path = write_spec(tmp_path, spec(tmp_path, destinations=[destination],
                                     delivery={"retries": 0, "retry_delay": "1s", "timeout": "1m"}))
    assert ppipe("create", str(path)).returncode == 0
    result = ppipe("run", "chal-a")
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "no-such-block" in errors[0], result.stderr


def test_a_changed_source_is_one_line_and_not_retried(prefect_api, tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(30)))
    path = write_spec(tmp_path, spec(tmp_path, source=str(source),
                                     delivery={"retries": 3, "retry_delay": "20s", "timeout": "5m"}))
    assert ppipe("create", str(path)).returncode == 0
    source.write_text("id,x\n" + "".join(f"{i},{i * 2}\n" for i in range(31)))
    started = time.monotonic()
    result = ppipe("run", "chal-a")
    elapsed = time.monotonic() - started
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "changed" in errors[0], result.stderr
    assert elapsed < 20, f"a changed source was retried ({elapsed:.0f} s)"
