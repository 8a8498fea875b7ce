"""The per-generation event log: an ordered, resumable Redis Stream.

Each generation has one stream, ``gen:<id>:events``. Entry ``seq`` is stored
under the stream id ``0-<seq>``, so "everything after seq N" is a plain
``XREAD`` from ``0-N`` and a reconnecting client gets exactly what it
missed. Events: ``{"seq", "kind", ...payload}`` with kind one of
``started``, ``content``, ``reasoning`` (text deltas), ``error`` and ``done``
(last, carrying the final record).
Only the generation's owner writes (``inference.state``: the worker that
claimed it, or the Django side once it took the generation over to close it),
so seq numbers are assigned by that writer without coordination.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from inference.state import owner_key

TAKEN_OVER = "taken_over"


class LogTakenOver(Exception):
    """The generation was closed by someone else (the Django side): stop writing."""

    code = TAKEN_OVER
    message = "this reply was closed elsewhere"


# A worker's append: only while the generation is its own (a Redis restarted without data
# lost the owner key: it is set again), the write and the cancel flag in one round trip.
# Returns -1 when someone else owns it. An XADD refused for its id can only be this
# writer's own earlier attempt that landed (nobody else writes while it owns the log).
_OWNED_APPEND = """
local owner = redis.call('get', KEYS[2])
if owner and owner ~= ARGV[1] then return -1 end
if not owner then redis.call('set', KEYS[2], ARGV[1], 'EX', ARGV[6]) end
redis.pcall('xadd', KEYS[1], ARGV[2], 'kind', ARGV[3], 'data', ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return redis.call('exists', KEYS[3])
"""

# The Django side's closing events: after the log's last entry, unless it already ends
# with `done`. ARGV: kind, data, kind, data, ..., ttl. Returns the last seq written (0: none).
_CLOSE = """
local last = redis.call('xrevrange', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then
  seq = tonumber(string.match(last[1][1], '%-(%d+)$'))
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'kind' and fields[i + 1] == 'done' then return 0 end
  end
end
for i = 1, #ARGV - 1, 2 do
  seq = seq + 1
  redis.call('xadd', KEYS[1], '0-' .. seq, 'kind', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('expire', KEYS[1], ARGV[#ARGV])
return seq
"""

TEXT_KINDS = ("content", "reasoning")
STARTED_KIND = "started"  # a worker claimed the generation (first event)
TERMINAL_KIND = "done"  # the last event; its payload is the reply's final record


def log_key(generation_id: str) -> str:
    return f"gen:{generation_id}:events"


def cancel_key(generation_id: str) -> str:
    return f"gen:{generation_id}:cancel"


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    payload: dict[str, Any]


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _parse(entries: list[Any]) -> list[Event]:
    events = []
    for entry_id, fields in entries:
        seq = int(entry_id.split("-", 1)[1])
        events.append(Event(seq=seq, kind=fields["kind"], payload=json.loads(fields["data"])))
    return events


class AsyncEventLogWriter:
    """Appends events for one generation; used by the worker that owns it, on its loop."""

    def __init__(self, client: aioredis.Redis, generation_id: str, ttl_s: int, owner: str) -> None:
        self.client = client
        self.generation_id = generation_id
        self.ttl_s = ttl_s
        self.seq = 0  # the last seq written
        # It writes only while it owns the generation (inference.state's owner key).
        self.owner = owner

    async def append(self, kind: str, payload: dict[str, Any]) -> bool:
        """Append one event; return whether the generation was asked to stop.

        Checking the cancel flag in the same round trip as the write is what
        lets Stop take effect within one frame at no extra latency.
        """
        seq = self.seq + 1
        keys = (log_key(self.generation_id), owner_key(self.generation_id))
        args = (self.owner, f"0-{seq}", kind, _dumps(payload), self.ttl_s, self.ttl_s)
        try:
            flag = await self.client.eval(
                _OWNED_APPEND, 3, *keys, cancel_key(self.generation_id), *args
            )
        except (redis.ConnectionError, redis.TimeoutError):
            # A pooled connection can predate a Redis restart: once more on a new one
            # (idempotent: an id already written was this writer's own attempt).
            flag = await self.client.eval(
                _OWNED_APPEND, 3, *keys, cancel_key(self.generation_id), *args
            )
        if int(flag) < 0:
            raise LogTakenOver()
        self.seq = seq
        return bool(int(flag))

    async def cancel_requested(self) -> bool:
        return bool(await self.client.exists(cancel_key(self.generation_id)))


def closing_events(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events that end a reply's log: ``error`` if it failed, then ``done`` (the record)."""
    error = record.get("error")
    return [*([("error", dict(error))] if error else []), (TERMINAL_KIND, record)]


def append_closing_sync(
    client: redis.Redis, generation_id: str, closing: list[tuple[str, dict[str, Any]]], ttl_s: int
) -> int:
    """Append ``closing`` after the log's last event, atomically, unless it already ends
    with ``done``; return the last seq written (0 if nothing was)."""
    args: list[Any] = []
    for kind, payload in closing:
        args += [kind, _dumps(payload)]
    return int(client.eval(_CLOSE, 1, log_key(generation_id), *args, ttl_s))


def last_event_sync(client: redis.Redis, generation_id: str) -> Event | None:
    """The log's latest event, if any."""
    entries = _parse(client.xrevrange(log_key(generation_id), count=1) or [])
    return entries[0] if entries else None


def read_all_sync(client: redis.Redis, generation_id: str) -> list[Event]:
    """Every event logged so far (synchronous code: the reaper)."""
    return _parse(client.xrange(log_key(generation_id)) or [])


async def read_events(
    client: aioredis.Redis, generation_id: str, after_seq: int, block_ms: int
) -> list[Event]:
    """Events with seq > ``after_seq``, waiting up to ``block_ms`` for the first one."""
    response: Any = await client.xread({log_key(generation_id): f"0-{after_seq}"}, block=block_ms)
    if not response:
        return []
    # RESP2 answers [[key, entries]]; RESP3 answers {key: [entries]}.
    entries = response[0][1] if isinstance(response, list) else next(iter(response.values()))[0]
    return _parse(entries)


def request_cancel_sync(client: redis.Redis, generation_id: str, ttl_s: int) -> None:
    client.set(cancel_key(generation_id), "1", ex=ttl_s)
