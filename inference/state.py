"""Who owns a generation, whether it is alive, and where it stands in its model's queue.

Redis keys, shared by the web side and the workers (no Django):

- ``gen:<id>:owner`` — set once (``SET NX``) by whoever takes the generation out
  of ``queued``: a worker's id when it claims the job, or ``stopped`` when the
  user stops it first. Exactly one of the two wins.
- ``gen:<id>:lease`` — the claiming worker's id, with a short TTL that the worker
  refreshes on every heartbeat. A generation that was claimed and has neither a
  lease nor a ``done`` event is lost (its worker died); the Django side closes it.
- ``queue:<model>`` — a sorted set of queued generation ids by enqueue time, so
  a client learns its true position while its job waits in the broker.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis

STOPPED = "stopped"


def owner_key(generation_id: str) -> str:
    return f"gen:{generation_id}:owner"


def lease_key(generation_id: str) -> str:
    return f"gen:{generation_id}:lease"


def queue_key(model: str) -> str:
    return f"queue:{model}"


def claim(client: redis.Redis, generation_id: str, owner: str, ttl_s: int) -> bool:
    """Take the generation out of ``queued``; False if someone (a Stop, a worker) already did."""
    return bool(client.set(owner_key(generation_id), owner, nx=True, ex=ttl_s))


def owner(client: redis.Redis, generation_id: str) -> str | None:
    value = client.get(owner_key(generation_id))
    return str(value) if value is not None else None


def mark_queued(client: redis.Redis, model: str, generation_id: str, ttl_s: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        pipe.zadd(queue_key(model), {generation_id: time.time()})
        pipe.expire(queue_key(model), ttl_s)
        pipe.execute()


def unqueue(client: redis.Redis, model: str, generation_id: str) -> None:
    client.zrem(queue_key(model), generation_id)


def queue_position(client: redis.Redis, model: str, generation_id: str) -> int | None:
    """Generations of ``model`` queued ahead of this one; None once it has left the queue."""
    rank: Any = client.zrank(queue_key(model), generation_id)
    return int(rank) if rank is not None else None


async def queue_position_async(
    client: aioredis.Redis, model: str, generation_id: str
) -> int | None:
    rank: Any = await client.zrank(queue_key(model), generation_id)
    return int(rank) if rank is not None else None


def queue_depth(client: redis.Redis, model: str) -> int:
    return int(client.zcard(queue_key(model)))


async def renew_leases(
    client: aioredis.Redis, owners: dict[str, str], lease_ttl_s: float, owner_ttl_s: int
) -> None:
    """Refresh the leases of a worker's in-flight generations (and their owner keys, which
    a Redis that was restarted without its data has lost)."""
    if not owners:
        return
    async with client.pipeline(transaction=False) as pipe:
        for generation_id, worker in owners.items():
            pipe.set(lease_key(generation_id), worker, px=int(lease_ttl_s * 1000))
            pipe.set(owner_key(generation_id), worker, ex=owner_ttl_s)
        await pipe.execute()


def lease_holder(client: redis.Redis, generation_id: str) -> str | None:
    value = client.get(lease_key(generation_id))
    return str(value) if value is not None else None


async def lease_holder_async(client: aioredis.Redis, generation_id: str) -> str | None:
    value = await client.get(lease_key(generation_id))
    return str(value) if value is not None else None
