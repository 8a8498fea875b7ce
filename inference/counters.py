"""Operational counters shared by every process: one Redis hash that ``/metrics`` reads.

The events counted happen in processes without an HTTP port (the app worker's
recorder and reaper, model workers losing Redis), often on other hosts, while
``/metrics`` is served by the web process. A counter is therefore a field of
the hash ``metrics:counters`` (``HINCRBY``), keyed by name and labels: every
process adds to it, the web side reads it. An increment made while Redis is
unreachable is kept in the process and added with the next one that gets
through. Counters restart from zero with an empty Redis, which Prometheus
treats as an ordinary counter reset.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter

import redis

log = logging.getLogger(__name__)
KEY = "metrics:counters"
_pending: Counter[str] = Counter()
_lock = threading.Lock()


def _field(name: str, labels: dict[str, str]) -> str:
    return json.dumps([name, dict(sorted(labels.items()))], separators=(",", ":"))


def incr(client: redis.Redis, name: str, amount: int = 1, **labels: str) -> None:
    """Add ``amount`` to counter ``name{labels}``; never raises (kept for later if Redis is down)."""
    with _lock:
        _pending[_field(name, labels)] += amount
        pending = dict(_pending)
        _pending.clear()
    try:
        pipe = client.pipeline(transaction=False)
        for field, value in pending.items():
            pipe.hincrby(KEY, field, value)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 (counted later; the caller's work goes on)
        log.debug("counter %s kept for later: %s", name, exc)
        with _lock:
            _pending.update(pending)


def read(client: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """Every counter: (name, sorted label pairs) → value."""
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for field, value in client.hgetall(KEY).items():
        try:
            name, labels = json.loads(field)
        except (ValueError, TypeError):
            continue
        counters[(str(name), tuple((str(k), str(v)) for k, v in labels.items()))] = int(value)
    return counters


def by_name(
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], int], name: str
) -> dict[tuple[tuple[str, str], ...], int]:
    return {labels: value for (counter, labels), value in counters.items() if counter == name}
