"""The standing local Prefect server: start (or reuse), stop, status, and pointing Prefect at it.

Runs go against a standing server, never Prefect's temporary one: a temporary server runs
no scheduler and, when it stops, cancels its event recorder (CancelledError tracebacks and
lost task-run records). ``connect()`` therefore uses ``PREFECT_API_URL`` when it is set,
else this server, started on demand on 127.0.0.1 (port 4200, or ``PPIPE_PREFECT_PORT``)
with ``PREFECT_HOME`` under ``PPIPE_HOME`` unless set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ppipe import settings
from ppipe.errors import ConfigError, PpipeError

HOST = "127.0.0.1"
#: A log line at ERROR level, or a traceback.
ERROR_LINE = re.compile(r"\|\s*ERROR\s*\||^\s*ERROR\b|Traceback \(most recent call last\)|CancelledError")


@dataclass(frozen=True)
class ServerStatus:
    """Where the server answers, whether it is healthy, and the pid ppipe started (if any)."""

    url: str
    healthy: bool
    pid: int | None = None

    @property
    def ui_url(self) -> str:
        return ui_url(self.url)


def ui_url(api: str) -> str:
    """The Prefect UI's address for the API at ``api``."""
    return api.rstrip("/").removesuffix("/api")


def port() -> int:
    return settings.prefect_port()


def api_url(at_port: int | None = None) -> str:
    return f"http://{HOST}:{at_port or port()}/api"


def prefect_home() -> Path:
    """``PREFECT_HOME`` if set, else ``<PPIPE_HOME>/prefect``."""
    return Path(os.environ.get("PREFECT_HOME") or settings.home() / "prefect").expanduser()


def _state_file() -> Path:
    return settings.home() / "prefect-server.json"


def _log_file() -> Path:
    return settings.home() / "prefect-server.log"


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when ``<url>/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _recorded() -> dict:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}


def status(at_port: int | None = None) -> ServerStatus:
    """Is the local server up at ``at_port``, and did ppipe start it (pid)."""
    url = api_url(at_port)
    record = _recorded()
    pid = record.get("pid") if record.get("url") == url and alive(record.get("pid")) else None
    return ServerStatus(url, healthy(url), pid)


def alive(pid: int | None) -> bool:
    """Is process ``pid`` running? A child of ours that exited is reaped, so it is not counted."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def prefect_executable() -> str:
    """The ``prefect`` command of this environment."""
    beside = Path(sys.executable).with_name("prefect")
    return str(beside) if beside.exists() else (shutil.which("prefect") or "prefect")


def server_environment(home: Path | None = None) -> dict[str, str]:
    """The environment for Prefect processes ppipe starts: its home and no analytics."""
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(home or prefect_home())
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)  # the server itself must not point at another API
    return env


def start(at_port: int | None = None, *, timeout: float = 90.0, home: Path | None = None) -> ServerStatus:
    """Start ``prefect server start`` in the background (with ppipe's SQLite fix, see
    ``prefect_server``), or reuse one that answers; wait until healthy."""
    current = status(at_port)
    if current.healthy:
        return current
    env = server_environment(home)
    settings.private_dir(Path(env["PREFECT_HOME"]))
    chosen = at_port or port()
    with open(os.open(_log_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ppipe.orchestration.prefect_server",
             "server", "start", "--host", HOST, "--port", str(chosen)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # its own process group, so stop() ends it and its children only
            umask=0o077,  # Prefect's database and files stay private to the organiser
        )
    _state_file().write_text(json.dumps({"pid": process.pid, "url": api_url(chosen)}))
    settings.make_private(_state_file())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api_url(chosen)):
            return ServerStatus(api_url(chosen), True, process.pid)
        if process.poll() is not None:
            raise PpipeError(f"prefect server exited with code {process.returncode}: see {_log_file()}")
        time.sleep(0.5)
    stop(chosen)
    raise PpipeError(f"prefect server did not answer on {api_url(chosen)} within {timeout:g}s: see {_log_file()}")


def stop(at_port: int | None = None, *, timeout: float = 20.0) -> bool:
    """Stop the server ppipe started (its process group); False if ppipe started none that runs."""
    record = _recorded()
    pid = record.get("pid")
    if record.get("url") != api_url(at_port) or not alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return True


def answering() -> str | None:
    """The API to act on without starting one: ``PREFECT_API_URL`` when it answers, else the local
    server this ``PPIPE_HOME`` started, when it runs (a server another home started is left alone)."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if url:
        return url if healthy(url) else None
    current = status()
    return current.url if current.healthy and current.pid else None


def ensure_api(on_start: Callable[[str], None] | None = None) -> str:
    """``PREFECT_API_URL`` if set (and answering), else the local server's URL (starting it if
    needed, and then telling ``on_start`` where it runs and how to stop it)."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if url:
        if not healthy(url, timeout=5.0):
            raise PpipeError(f"PREFECT_API_URL {url} does not answer: start that server, or unset "
                             "PREFECT_API_URL to use ppipe's local one (ppipe server start)")
        return url
    current = status()
    if current.healthy:
        return current.url
    started = start()
    if on_start is not None:
        on_start(f"started a Prefect server in the background at {started.ui_url} (pid {started.pid}); "
                 f"it keeps running for the next commands: stop it with 'ppipe server stop'")
    return started.url


@contextlib.contextmanager
def connect(on_start: Callable[[str], None] | None = None) -> Iterator[str]:
    """Point Prefect (in this process and the processes it starts) at the standing API; yields its URL."""
    url = ensure_api(on_start)
    # Prefect reads its settings when imported; override them for this block as well.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with settings.environment(PREFECT_API_URL=url,
                              PREFECT_HOME=os.environ.get("PREFECT_HOME") or str(prefect_home()),
                              PREFECT_SERVER_ANALYTICS_ENABLED=os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED") or "false"), \
            temporary_settings(updates={PREFECT_API_URL: url}):
        try:
            yield url
        finally:
            _drain_prefect_workers()


def _drain_prefect_workers() -> None:
    """Prefect sends events and logs through one worker per process, each bound to the API it
    first met: send what they hold to this block's server and stop them, so that a later block
    in the same process (a test, the demo) against another server starts its own."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        worker.drain_all(timeout=10)


# --- a process worker ----------------------------------------------------------------------


@dataclass
class Worker:
    """A ``prefect worker start`` subprocess and the file its output goes to."""

    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def problems(self) -> list[str]:
        """Lines of the worker's output that report an error or a traceback."""
        return [line for line in self.output().splitlines() if ERROR_LINE.search(line)]

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the worker (SIGINT, as Ctrl-C; then SIGKILL); returns its exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def start_worker(pool: str, *, cwd: Path, log: Path, env: dict[str, str] | None = None,
                 poll_seconds: int | None = None) -> Worker:
    """Start a process worker on ``pool`` in ``cwd``; its output goes to ``log``.
    ``PREFECT_API_URL`` must be set. The worker polls at Prefect's default interval (10 s)
    unless ``poll_seconds`` says otherwise: every poll reads the pool's deployments, and a
    run started early waits for its exact slot anyway."""
    environment = dict(env or os.environ)
    environment.update({
        "PWD": str(cwd),  # prefect.yaml's pull step reads it; a subprocess does not update it
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    })
    if poll_seconds is not None:
        environment["PREFECT_WORKER_QUERY_SECONDS"] = str(poll_seconds)
        environment["PREFECT_WORKER_PREFETCH_SECONDS"] = str(max(poll_seconds, 5))
    if not environment.get("PREFECT_API_URL"):
        raise ConfigError("PREFECT_API_URL: not set: the worker needs the standing Prefect server's address")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(log, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600), "wb") as out:
        process = subprocess.Popen(
            [prefect_executable(), "worker", "start", "--pool", pool, "--type", "process"],
            cwd=cwd, env=environment, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Worker(process, log)


def exec_worker(pool: str | None = None) -> None:
    """Replace this process with a Prefect process worker on ``pool`` (default PPIPE_WORK_POOL),
    against the standing server, in the project folder (where the flows are)."""
    from ppipe.orchestration.deploy import project_root

    with connect():
        root = project_root()
        os.chdir(root)
        command_line = [prefect_executable(), "worker", "start", "--pool", pool or settings.work_pool(),
                        "--type", "process"]
        os.execvpe(command_line[0], command_line, {**os.environ, "PWD": str(root)})
