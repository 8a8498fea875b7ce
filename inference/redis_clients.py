"""Shared Redis clients: one sync client per process, one async client per event loop.

The URL comes from ``configure`` (the Django side passes its settings' URL) or
else from the environment (``REDIS_URL``, the worker's only required setting).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis

from inference.config import get_config

# A pooled connection idle this long is pinged before use: after a Redis restart, stale
# connections are replaced instead of failing the first command that draws them.
HEALTH_CHECK_S = 1
_url: str | None = None
_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def configure(url: str) -> None:
    """Use ``url`` from now on (clients already made for another URL are dropped)."""
    global _url, _sync_client
    if url != _url:
        _url, _sync_client = url, None
        _async_clients.clear()


def redis_url() -> str:
    return _url or get_config().redis_url


def _options() -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": get_config().redis_socket_timeout_s,
        "socket_connect_timeout": 5,
        "health_check_interval": HEALTH_CHECK_S,
        # No CLIENT SETINFO on connect. The asyncio client pipelines it, and when the loop
        # is busy for longer than the health-check interval (a worker streaming 100
        # replies), the health check's PING reads its reply instead of PONG, so the new
        # connection's first command failed (bench/load.py; tests/inference).
        "driver_info": None,
    }


def get_redis() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(redis_url(), **_options())
    return _sync_client


def get_async_redis() -> aioredis.Redis:
    """An asyncio client bound to the running loop (asyncio connections cannot cross loops)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(redis_url(), **_options())
        _async_clients[loop] = client
    return client
