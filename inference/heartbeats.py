"""Worker heartbeats in Redis: which workers are online, per model, and what they are doing.

``worker:<id>`` is a worker's heartbeat (it expires three missed beats after the last
one). ``workers:seen`` remembers every worker that beat and has not stopped cleanly, so
a heartbeat that went stale (the process was killed, hung, or cut off from Redis) is
noticed once and counted (``worker_heartbeats_lost{model}``, read by ``/metrics``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from inference import counters

PREFIX = "worker:"
SEEN = "workers:seen"
LOST_COUNTER = "worker_heartbeats_lost"


def publish_heartbeat(
    client: redis.Redis, worker_id: str, data: dict[str, Any], interval_s: float
) -> None:
    now = time.time()
    payload = json.dumps({**data, "worker_id": worker_id, "last_seen": now})
    seen = json.dumps({"model": data.get("model", ""), "last_seen": now, "interval_s": interval_s})
    pipe = client.pipeline(transaction=True)
    # A worker that stops beating disappears after three missed beats.
    pipe.set(PREFIX + worker_id, payload, px=int(interval_s * 3000))
    pipe.hset(SEEN, worker_id, seen)
    pipe.execute()


def register(client: redis.Redis, worker_id: str) -> bool:
    """Called once by a starting worker, before its first beat. A ``workers:seen`` entry
    under its own id is an earlier process of the same name (a container restarted with
    the same hostname and pid) that never stopped cleanly: counted lost. True if so."""
    raw = client.hget(SEEN, worker_id)
    if raw is None or not client.hdel(SEEN, worker_id):
        return False
    counters.incr(client, LOST_COUNTER, model=_model_of(raw))
    return True


def retire(client: redis.Redis, worker_id: str) -> None:
    """A clean stop: the heartbeat goes now, and the worker is not counted as lost."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(PREFIX + worker_id)
    pipe.hdel(SEEN, worker_id)
    pipe.execute()


def sweep_lost(client: redis.Redis) -> list[str]:
    """Forget (and count, exactly once whoever sweeps) workers whose heartbeat went stale
    without a clean stop; return their ids.

    Right after a Redis restart every heartbeat is missing until the workers beat
    again, so nothing is swept while Redis has been up for less than three beats and
    a few seconds.
    """
    entries = {_str(k): v for k, v in client.hgetall(SEEN).items()}
    if not entries:
        return []
    ids = list(entries)
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.exists(PREFIX + worker_id)
    alive = pipe.execute()
    uptime = float(client.info("server").get("uptime_in_seconds", 0))
    lost = []
    for worker_id, beating in zip(ids, alive, strict=True):
        if beating:
            continue
        try:
            interval = float(json.loads(entries[worker_id]).get("interval_s", 2.0))
        except (ValueError, TypeError, AttributeError):
            interval = 2.0
        if uptime < 3 * interval + 5:
            continue
        if client.hdel(SEEN, worker_id):
            counters.incr(client, LOST_COUNTER, model=_model_of(entries[worker_id]))
            lost.append(worker_id)
    return lost


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _model_of(raw: str | bytes) -> str:
    try:
        return str(json.loads(raw).get("model", ""))
    except (ValueError, TypeError, AttributeError):
        return ""


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=200))
    if not keys:
        return []
    return [json.loads(raw) for raw in client.mget(keys) if raw]


async def list_workers_async(client: aioredis.Redis) -> list[dict[str, Any]]:
    keys = sorted([key async for key in client.scan_iter(match=PREFIX + "*", count=200)])
    if not keys:
        return []
    return [json.loads(raw) for raw in await client.mget(keys) if raw]


def live_models(
    client: redis.Redis, beats: list[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Models with at least one live worker: the spec its workers announce, and their load.

    ``workers``, ``capacity`` (free slots) and ``in_flight`` are summed over the
    model's workers; the other fields come from the most recent heartbeat.
    """
    models: dict[str, dict[str, Any]] = {}
    if beats is None:
        beats = list_workers(client)
    for beat in sorted(beats, key=lambda b: b.get("last_seen", 0)):
        name = beat.get("model")
        if not name:
            continue
        entry = models.setdefault(name, {"workers": 0, "capacity": 0, "in_flight": 0})
        totals = {
            "workers": entry["workers"] + 1,
            "capacity": entry["capacity"] + int(beat.get("capacity", 0)),
            "in_flight": entry["in_flight"] + int(beat.get("in_flight", 0)),
        }
        entry.update(beat.get("spec", {}))
        entry.update(totals)
    return models
