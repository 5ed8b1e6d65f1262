"""Prefect on PostgreSQL and Redis: N API processes and one background-services process.

This is Prefect's own distributed setup ("How to scale self-hosted Prefect"), started the
way docs/scale-out.md writes it down, so one machine can run, and tests and benchmarks can
prove, what several machines run in production:

- the database is migrated once (``prefect server database upgrade -y``), never on start;
- every server process gets the same settings: PostgreSQL, prefect-redis for the messaging
  broker and cache, causal ordering, concurrency lease storage, and the docket on Redis;
- the API processes (``prefect server start --no-services``) start one after another: two
  starting together on an empty database race to register block types and one dies;
- exactly one ``prefect server services start`` runs the scheduler, recorders and automations.

Each process gets its own process group, so :meth:`Cluster.stop` ends it and its children.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ppipe.durable import write_json
from ppipe.errors import ConfigError, ConflictError, PpipeError
from ppipe.orchestration.server import ERROR_LINE, HOST, alive, healthy, prefect_executable, server_environment

#: prefect-redis modules for each pluggable part of the server.
REDIS_MODULES = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}
#: prefect-redis 0.3.0's publisher (each API process has one per events websocket) batches
#: events, and a second task flushes the batch every 10 s; a flush empties the batch only after
#: awaiting Redis, so it drops the events that arrived meanwhile: a task run whose Completed was
#: among them stays Running in Prefect for ever (1-3 of 100 upload task runs under the benchmark's
#: load). A batch of one goes out as each event arrives, with nothing left for a flush to race
#: with, and the periodic flush is pushed out of the way. tests/orchestration/test_redis_events.py
#: measures both.
EVENT_PUBLISHER = {
    "PREFECT_REDIS_MESSAGING_PUBLISHER_BATCH_SIZE": "1",
    "PREFECT_REDIS_MESSAGING_PUBLISHER_PUBLISH_EVERY": str(365 * 24 * 3600),
}


@dataclass(frozen=True)
class ClusterConfig:
    """Where Prefect keeps its state, and how many API processes answer."""

    database_url: str  # postgresql+asyncpg://user@host:port/db (Prefect's own database)
    redis_url: str  # redis://host:port/N: messaging (N) and the docket (N + 1)
    api_ports: tuple[int, ...]
    home: Path  # PREFECT_HOME of the server processes (logs go beside it)
    host: str = HOST

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("postgresql+asyncpg://", "postgresql://", "postgres://")):
            raise ConfigError(f"Prefect database: {self.database_url.split('://')[0]!r}: several API processes "
                              "need PostgreSQL (postgresql+asyncpg://user@host/db)")
        if not self.redis_url.startswith(("redis://", "rediss://")):
            raise ConfigError(f"Redis: {self.redis_url.split('://')[0]!r}: give redis://host:port/db")
        if not self.api_ports:
            raise ConfigError("API processes: at least one port is needed")

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{self.host}:{port}/api" for port in self.api_ports]

    @property
    def docket_url(self) -> str:
        """The docket on the next Redis database number, apart from the messaging streams."""
        return _with_db(self.redis_url, _db_number(self.redis_url) + 1)


def _db_number(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    if path and not path.isdigit():
        raise ConfigError(f"Redis: database {path!r} is not a number (redis://host:port/N)")
    return int(path or 0)


def _with_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


def asyncpg_url(url: str) -> str:
    """Prefect's server speaks asyncpg: postgresql://... becomes postgresql+asyncpg://..."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgresql", "postgres") else url


def cluster_environment(config: ClusterConfig) -> dict[str, str]:
    """The environment of every server process (API and services): the same everywhere."""
    env = server_environment(config.home)
    env.update(REDIS_MODULES)
    env.update(EVENT_PUBLISHER)
    env.update({
        "PREFECT_API_DATABASE_CONNECTION_URL": asyncpg_url(config.database_url),
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_REDIS_MESSAGING_URL": config.redis_url,
        "PREFECT_SERVER_DOCKET_URL": config.docket_url,
    })
    return env


def migrate(config: ClusterConfig, *, timeout: float = 300.0) -> None:
    """Bring Prefect's database schema up to date, once, before any server process starts."""
    result = subprocess.run(
        [prefect_executable(), "server", "database", "upgrade", "-y"], env=cluster_environment(config),
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if result.returncode:
        last = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"])[-1]
        raise PpipeError(f"prefect server database upgrade failed (exit {result.returncode}): {last}")


@dataclass
class ServerProcess:
    """One Prefect server process, its role and the file its output goes to."""

    role: str  # api-<port> | services
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def problems(self) -> list[str]:
        return [f"{self.role}: {line}" for line in self.output().splitlines() if ERROR_LINE.search(line)]


@dataclass
class Cluster:
    """The running server processes; ``stop()`` ends them all."""

    config: ClusterConfig
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def api_urls(self) -> list[str]:
        return self.config.api_urls

    @property
    def pids(self) -> list[int]:
        return [p.process.pid for p in self.processes]

    def problems(self) -> list[str]:
        """ERROR lines and tracebacks from every server process."""
        return [line for p in self.processes for line in p.problems()]

    def stop(self, timeout: float = 20.0) -> None:
        stop_groups(self.pids, timeout=timeout)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_cluster(config: ClusterConfig, *, log_dir: Path, timeout: float = 120.0,
                  run_migrations: bool = True) -> Cluster:
    """Migrate once, start the API processes one after another, then the services process."""
    config.home.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    if run_migrations:
        migrate(config)
    cluster = Cluster(config)
    env = cluster_environment(config)
    try:
        for port, url in zip(config.api_ports, config.api_urls):
            command = ["server", "start", "--host", config.host, "--port", str(port), "--no-services"]
            started = _spawn(f"api-{port}", command, env, log_dir)
            cluster.processes.append(started)
            _wait_healthy(started, url, timeout)
        cluster.processes.append(_spawn("services", ["server", "services", "start"], env, log_dir))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _spawn(role: str, args: list[str], env: dict[str, str], log_dir: Path) -> ServerProcess:
    log = log_dir / f"prefect-{role}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [prefect_executable(), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return ServerProcess(role, process, log)


def _wait_healthy(started: ServerProcess, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if started.process.poll() is not None:
            raise PpipeError(f"prefect {started.role} exited with code {started.process.returncode}: see {started.log}")
        if time.monotonic() > deadline:
            raise PpipeError(f"prefect {started.role} did not answer on {url} within {timeout:g}s: see {started.log}")
        time.sleep(0.5)


def stop_groups(pids: list[int], *, timeout: float = 20.0) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# --- a standing cluster for `ppipe server start --database ... --redis ...` ----------------


def _state_file() -> Path:
    from ppipe import settings

    return settings.home() / "prefect-cluster.json"


def start_standing(database_url: str, redis_url: str, *, processes: int, port: int,
                   timeout: float = 180.0) -> Cluster:
    """Start the cluster in the background, to outlive this command; ``stop_standing()`` ends it.
    Its PREFECT_HOME and logs are under PPIPE_HOME."""
    from ppipe import settings

    if processes < 1:
        raise ConfigError(f"--api-processes: {processes}: at least one API process is needed")
    if _state_file().exists():
        raise ConflictError(f"a Prefect cluster started by ppipe is recorded in {_state_file()}: "
                            "'ppipe server stop' first")
    config = ClusterConfig(database_url, redis_url, tuple(range(port, port + processes)),
                           settings.home() / "prefect-cluster")
    cluster = start_cluster(config, log_dir=settings.home() / "prefect-cluster" / "logs", timeout=timeout)
    write_json(_state_file(), {"pids": cluster.pids, "api_urls": cluster.api_urls})
    return cluster


def stop_standing(timeout: float = 20.0) -> bool:
    """Stop the cluster ``start_standing`` recorded; False when none is recorded."""
    try:
        recorded = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return False
    stop_groups([pid for pid in recorded.get("pids", []) if alive(pid)], timeout=timeout)
    _state_file().unlink(missing_ok=True)
    return True
