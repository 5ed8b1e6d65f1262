"""Scale-out smoke test: Prefect on PostgreSQL + Redis with two API processes and one
services process, one worker in a folder of its own (own PPIPE_HOME, no checkout), one tiny
challenge deployed by module path and delivered. benchmarks/scale.py is the full proof.

Skips, saying why, where PostgreSQL or Redis does not answer.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.fixtures_ledger import POSTGRES_URL

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("PPIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


def _require_servers() -> None:
    import psycopg
    import redis

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server here
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__}); set PPIPE_TEST_POSTGRES_URL")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Redis at {REDIS_URL} ({type(exc).__name__}); set PPIPE_TEST_REDIS_URL")


def test_two_api_processes_on_postgres_and_redis_deliver_a_challenge(tmp_path, monkeypatch):
    _require_servers()
    from benchmarks.scale import flushed_redis, scratch_database
    from prefect.deployments import run_deployment

    from ppipe import api
    from ppipe.challenge.spec import Challenge
    from ppipe.orchestration import server
    from tests.support.servers import free_port

    source = tmp_path / "source.csv"
    source.write_text("id,value\n" + "".join(f"{i},{i * i}\n" for i in range(30)))
    out = tmp_path / "out"
    with scratch_database(POSTGRES_URL, "ppipe_prefect") as prefect_db, \
            scratch_database(POSTGRES_URL, "ppipe_ledger") as ledger_db, flushed_redis(REDIS_URL) as redis_url:
        # What `ppipe server start --database ... --redis ... --api-processes 2` does.
        cluster = api.cluster_start(prefect_db, redis_url, processes=2, port=free_port())
        try:
            monkeypatch.setenv("PPIPE_DATABASE_URL", ledger_db)
            monkeypatch.setenv("PREFECT_API_URL", cluster.api_urls[0])
            with server.connect():  # Prefect's settings, not only the environment
                challenge = Challenge.model_validate({
                    "name": "smoke-scale", "source": str(source), "releases": 1,
                    "schedule": {"start": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat(), "every": "60s"},
                    "destinations": [{"kind": "local", "path": str(out)}],
                })
                api.create(challenge)
                api.deploy(challenge.name, work_pool="ppipe-smoke")
                # The release is already due: Prefect schedules no run for a past time, so ask for one.
                run_deployment(api.deployment_name(challenge.name), timeout=0)

                machine = tmp_path / "machine"
                (machine / "cwd").mkdir(parents=True)
                worker = server.start_worker(
                    "ppipe-smoke", cwd=machine / "cwd", log=machine / "worker.log", poll_seconds=5,
                    env={**os.environ, "PREFECT_API_URL": cluster.api_urls[1], "PPIPE_HOME": str(machine / "home")})
                try:
                    deadline = time.monotonic() + 120
                    while api.show(challenge.name)[1][0].status != "delivered" and time.monotonic() < deadline:
                        time.sleep(1)
                finally:
                    worker.stop()
                statuses = [release.status for release in api.show(challenge.name)[1]]
                assert statuses == ["delivered"], worker.output()[-3000:]
                assert [p.name for p in (out / "smoke-scale").glob("release_0.*")] == ["release_0.csv"]
                assert api.verify(challenge.name).ok
                # The flow ran on the worker's machine: its staging cache is in that PPIPE_HOME.
                assert (machine / "home" / "staged").exists()
                assert not worker.problems() and not cluster.problems(), (worker.problems(), cluster.problems())
        finally:
            assert api.server_stop()  # `ppipe server stop`: every process of the cluster
        assert not any(process.process.poll() is None for process in cluster.processes)
