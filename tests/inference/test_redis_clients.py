"""The shared Redis clients open connections safely on a busy event loop, on real Redis."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis
from django.conf import settings

from inference import redis_clients


def test_a_connection_opened_while_the_loop_is_slow_works() -> None:
    """redis-py pipelines CLIENT SETINFO when it connects, and its health check PINGs before
    the next command once ``health_check_interval`` has passed: on a loop busy for that long
    (100 streams in one worker, bench/load.py) the PING read the SETINFO reply, and the first
    event-log write of a reply failed. A tiny interval makes every command that late."""
    options = {**redis_clients._options(), "health_check_interval": 1e-9}

    async def use() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, **options)
        try:
            assert await client.ping()
            await client.set("redis-clients-test", "1", ex=5)
            assert await client.get("redis-clients-test") == "1"
        finally:
            await client.aclose()

    asyncio.run(use())
    client = redis.Redis.from_url(settings.REDIS_URL, **options)
    assert client.ping() and client.get("redis-clients-test") == "1"
    client.close()
