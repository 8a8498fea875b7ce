"""Worker heartbeats in Redis: which workers are online, per model, and what they are doing."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

PREFIX = "worker:"


def publish_heartbeat(
    client: redis.Redis, worker_id: str, data: dict[str, Any], interval_s: float
) -> None:
    payload = json.dumps({**data, "worker_id": worker_id, "last_seen": time.time()})
    # A worker that stops beating disappears after three missed beats.
    client.set(PREFIX + worker_id, payload, px=int(interval_s * 3000))


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=200))
    if not keys:
        return []
    return [json.loads(raw) for raw in client.mget(keys) if raw]


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
