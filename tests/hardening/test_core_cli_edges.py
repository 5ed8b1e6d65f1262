"""Issue 10, point 18: --release out of range, Ctrl-C during create, show without a ledger, --version."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
from importlib.metadata import version

import pytest

from tests.hardening.core_helpers import PPIPE, assert_one_line_error, ppipe, spec, write_spec


def test_run_of_a_release_out_of_range_names_the_range(prefect_api, tmp_path):
    assert ppipe("create", str(write_spec(tmp_path, spec(tmp_path)))).returncode == 0
    line = assert_one_line_error(ppipe("run", "chal-a", "--release", "99"), "--release", "99")
    assert "0" in line and "2" in line, line


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Serves a CSV's first bytes, then stalls: a create reading it is still at work when interrupted."""

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        self._headers()
        self.wfile.write(b"id,x\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(1000)))
        self.wfile.flush()
        time.sleep(60)

    def _headers(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(10**8))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def stalling_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/flights.csv"
    server.shutdown()


def test_ctrl_c_during_create_says_it_stopped_and_leaves_nothing(tmp_path, stalling_url):
    path = write_spec(tmp_path, spec(tmp_path, source=stalling_url))
    proc = subprocess.Popen([str(PPIPE), "create", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "80"})
    time.sleep(4)  # importing, validating, then reading the stalled source
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in out + err, err
    assert proc.returncode == 130, (proc.returncode, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped" in lines[0] and "create" in lines[0], err
    home = tmp_path / "ppipe-home"
    assert not (home / "staged" / "chal-a").exists() or not any((home / "staged" / "chal-a").iterdir())


@pytest.mark.parametrize("command", [["show", "chal-a"], ["list"], ["verify", "chal-a"]])
def test_reading_commands_do_not_create_a_ledger(tmp_path, command):
    home = tmp_path / "ppipe-home"
    result = ppipe(*command)
    assert "Traceback" not in result.stderr
    assert not (home / "ledger.db").exists(), sorted(p.name for p in home.iterdir())


def test_version():
    result = ppipe("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ppipe {version('ppipe')}"
