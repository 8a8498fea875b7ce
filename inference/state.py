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


# A worker's claim, in one step: owner (unless someone else has it), lease, and out of the
# queue set. Idempotent: a worker that claimed it already (a reply lost in transit) gets 1.
_CLAIM = """
local owner = redis.call('get', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('zrem', KEYS[3], ARGV[4])
return 1
"""


def claim_for_worker(
    client: redis.Redis,
    generation_id: str,
    model: str,
    worker: str,
    owner_ttl_s: int,
    lease_ttl_s: float,
) -> bool:
    """A worker takes a queued generation: owner, lease and queue position in one step."""
    return bool(
        client.eval(
            _CLAIM,
            3,
            owner_key(generation_id),
            lease_key(generation_id),
            queue_key(model),
            worker,
            owner_ttl_s,
            int(lease_ttl_s * 1000),
            generation_id,
        )
    )


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


# Renew a lease only while the generation is still this worker's: a Redis restarted without
# its data has lost the owner key (set it again), but an owner that is someone else means the
# Django side closed the generation meanwhile. Returns 1 when it is no longer ours.
_RENEW = """
local owner = redis.call('get', KEYS[1])
if owner and owner ~= ARGV[1] then return 1 end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 0
"""

# Close a generation from the Django side only if no lease is alive and the owner is still
# what was seen (a dead worker's id, or nobody): a worker that comes back finds it taken.
_TAKE_OVER = """
if redis.call('exists', KEYS[2]) == 1 then return 0 end
local owner = redis.call('get', KEYS[1])
if (ARGV[1] == '' and not owner) or owner == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

CLOSED = "closed"


def renew_leases(
    client: redis.Redis,
    worker: str,
    generation_ids: list[str],
    lease_ttl_s: float,
    owner_ttl_s: int,
) -> list[str]:
    """Refresh a worker's leases; return the generations that are no longer its own."""
    if not generation_ids:
        return []
    with client.pipeline(transaction=False) as pipe:
        for generation_id in generation_ids:
            pipe.eval(
                _RENEW,
                2,
                owner_key(generation_id),
                lease_key(generation_id),
                worker,
                int(lease_ttl_s * 1000),
                owner_ttl_s,
            )
        lost = pipe.execute()
    return [g for g, gone in zip(generation_ids, lost, strict=True) if gone]


def take_over(client: redis.Redis, generation_id: str, seen_owner: str | None, ttl_s: int) -> bool:
    """Become the generation's owner (to close it) if its lease is gone and its owner is
    still ``seen_owner``; False if a worker holds it after all."""
    return bool(
        client.eval(
            _TAKE_OVER,
            2,
            owner_key(generation_id),
            lease_key(generation_id),
            seen_owner or "",
            CLOSED,
            ttl_s,
        )
    )


def release(client: redis.Redis, generation_id: str, worker: str) -> None:
    """Give a claim back (only if it is still ``worker``'s)."""
    client.eval(_RELEASE, 1, owner_key(generation_id), worker)


def lease_holder(client: redis.Redis, generation_id: str) -> str | None:
    value = client.get(lease_key(generation_id))
    return str(value) if value is not None else None
