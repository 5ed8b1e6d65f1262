"""Events through prefect-redis, as an API process publishes them: with the publisher settings
ppipe gives every server process (``cluster.EVENT_PUBLISHER``) none is lost, even with a
periodic flush far more frequent than Prefect's; with Prefect's default batch the flush drops
events that arrive while it awaits Redis (prefect-redis 0.3.0). Real Redis; skips without it."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest

from ppipe.orchestration import cluster

REDIS_URL = os.environ.get("PPIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
EVENTS = 3000
FLUSH_EVERY = timedelta(milliseconds=2)  # Prefect's default is 10 s: the race, 5,000 times as often


@pytest.fixture
def redis_db(monkeypatch):
    """prefect-redis pointed at a scratch Redis database, flushed before and after."""
    import redis

    try:
        scratch = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        scratch.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server here
        pytest.skip(f"no Redis at {REDIS_URL} ({type(exc).__name__}); set PPIPE_TEST_REDIS_URL")
    monkeypatch.setenv("PREFECT_REDIS_MESSAGING_URL", REDIS_URL)
    scratch.flushdb()
    yield scratch
    scratch.flushdb()


def _published(redis_db, batch_size: int, publish_every: timedelta = FLUSH_EVERY) -> int:
    """Events that reach the stream out of ``EVENTS`` sent one by one, as a websocket delivers them."""
    from prefect_redis.messaging import Cache, Publisher

    topic = f"ppipe-test-{uuid.uuid4().hex}"
    publisher = Publisher(topic, Cache(topic=topic), deduplicate_by="id", batch_size=batch_size,
                          publish_every=publish_every)

    async def send() -> None:
        async with publisher:
            for _ in range(EVENTS):
                await publisher.publish_data(b"{}", {"id": str(uuid.uuid4())})
                await asyncio.sleep(0.0005)  # the next websocket message

    asyncio.run(send())
    return redis_db.xlen(publisher.stream)


def test_no_event_is_lost_with_the_publisher_settings_of_ppipes_server_processes(redis_db):
    """Each event published as it arrives, and no periodic flush left to race with. (A batch of
    one beside a 2 ms flush still lost an event in one run of several: the flush's clear can
    take one arriving while it awaits Redis.)"""
    batch_size = int(cluster.EVENT_PUBLISHER["PREFECT_REDIS_MESSAGING_PUBLISHER_BATCH_SIZE"])
    every = timedelta(seconds=int(cluster.EVENT_PUBLISHER["PREFECT_REDIS_MESSAGING_PUBLISHER_PUBLISH_EVERY"]))
    assert _published(redis_db, batch_size, every) == EVENTS


def test_prefects_default_batch_loses_events_to_the_periodic_flush(redis_db):
    """Why the setting exists; when a prefect-redis release fixes the race this fails, and
    ``EVENT_PUBLISHER`` can go."""
    from prefect_redis.messaging import RedisMessagingPublisherSettings

    default = RedisMessagingPublisherSettings.model_fields["batch_size"].default
    assert _published(redis_db, default) < EVENTS
