"""Worker heartbeats in Redis: which workers are online, per model, and what they are doing."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import redis.asyncio as aioredis

PREFIX = "worker:"


async def publish_heartbeat(
    client: aioredis.Redis, worker_id: str, data: dict[str, Any], interval_s: float
) -> None:
    payload = json.dumps({**data, "worker_id": worker_id, "last_seen": time.time()})
    # A worker that stops beating disappears after three missed beats.
    await client.set(PREFIX + worker_id, payload, px=int(interval_s * 3000))


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=200))
    if not keys:
        return []
    return [json.loads(raw) for raw in client.mget(keys) if raw]
