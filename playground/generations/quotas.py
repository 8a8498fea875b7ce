"""Per-user quotas and rate limits, in Redis, checked by the generation service.

Every front end (the chat socket, the API, later Gradio) starts generations through
``service.start_generation``, which calls ``check_generation`` before it stores anything,
so the limits hold for all of them alike:

- requests per minute: a token bucket (capacity = the limit, refilled at limit/60 per
  second), taken atomically by a Lua script;
- concurrent generations: a sorted set of the user's unfinished generations (scored by
  when they would be given up on, so a lost one cannot hold a slot forever), left when the
  recorder stores the reply;
- tokens per day (prompt + output, UTC days): a counter the recorder adds to; a request
  is refused once the day's count reaches the limit;
- upload bytes per day: a counter the media upload adds to.

A refusal names the limit and when to retry (``RateLimited.retry_after``): the socket's
``rate_limited`` error carries it, the API answers 429 with ``Retry-After``. Each refusal
is counted per day and limit (``throttled_counts``) for the staff dashboard.

Limits come from ``settings.PLAYGROUND_QUOTAS``, overridden per group and then per user
(``QuotaOverride`` in the admin); 0 means unlimited. Redis unreachable: the check is
skipped (a quota is not worth refusing every user while the broker restarts).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db.models import Q

from inference.redis_clients import get_redis
from playground.generations.errors import ServiceError

log = logging.getLogger(__name__)
PREFIX = "quota:"
LOST_AFTER_S = 3600  # a generation still unfinished after this no longer holds a slot
THROTTLED_TTL_S = 40 * 86400

_TAKE = """
local key, capacity, rate, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
return tostring(wait)
"""
_ENTER = """
local key, now, deadline, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if limit > 0 and redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, deadline, member)
redis.call('EXPIRE', key, ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 0
    concurrent: int = 0
    tokens_per_day: int = 0
    upload_bytes_per_day: int = 0


class RateLimited(ServiceError):
    def __init__(self, limit: str, message: str, retry_after: float) -> None:
        super().__init__("rate_limited", message)
        self.limit = limit
        self.retry_after = max(1, math.ceil(retry_after))


def limits_for(user: Any) -> Limits:
    """Settings, then the most generous override of the user's groups, then the user's own."""
    from playground.generations.models import QuotaOverride

    values = {f.name: int(settings.PLAYGROUND_QUOTAS.get(f.name, 0)) for f in fields(Limits)}
    found = (
        list(QuotaOverride.objects.filter(Q(user_id=user.pk) | Q(group__user=user)).distinct())
        if user.pk
        else []
    )
    groups = [o for o in found if o.user_id is None]
    for name in values:
        group_values = [getattr(o, name) for o in groups if getattr(o, name) is not None]
        if group_values:
            values[name] = 0 if 0 in group_values else max(group_values)
    own = next((o for o in found if o.user_id is not None), None)
    if own is not None:
        for name in values:
            if getattr(own, name) is not None:
                values[name] = getattr(own, name)
    return Limits(**values)


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")


def _until_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


def _refuse(client: redis.Redis, limit: str, message: str, retry_after: float) -> RateLimited:
    try:
        key = PREFIX + "throttled:" + _day(time.time())
        client.hincrby(key, limit, 1)
        client.expire(key, THROTTLED_TTL_S)
    except redis.RedisError:
        pass
    return RateLimited(limit, message, retry_after)


def check_generation(user: Any, generation_id: str) -> None:
    """Take a request and a concurrency slot for ``generation_id``, or raise ``RateLimited``."""
    limits = limits_for(user)
    if not (limits.requests_per_minute or limits.concurrent or limits.tokens_per_day):
        return
    client = get_redis()
    now = time.time()
    uid = str(user.pk)
    try:
        if limits.tokens_per_day:
            used = int(client.get(f"{PREFIX}tokens:{uid}:{_day(now)}") or 0)
            if used >= limits.tokens_per_day:
                raise _refuse(
                    client,
                    "tokens_per_day",
                    f"You have used {used} of your {limits.tokens_per_day} tokens today "
                    "(UTC); the quota resets at midnight.",
                    _until_midnight(now),
                )
        if limits.concurrent:
            entered = client.eval(
                _ENTER,
                1,
                f"{PREFIX}active:{uid}",
                now,
                now + LOST_AFTER_S,
                limits.concurrent,
                generation_id,
                LOST_AFTER_S,
            )
            if not entered:
                raise _refuse(
                    client,
                    "concurrent",
                    f"You already have {limits.concurrent} replies in progress; wait for one "
                    "to finish.",
                    5,
                )
        if limits.requests_per_minute:
            rate = limits.requests_per_minute / 60.0
            wait = float(
                client.eval(_TAKE, 1, f"{PREFIX}rpm:{uid}", limits.requests_per_minute, rate, now)
            )
            if wait > 0:
                if limits.concurrent:  # the slot just taken goes back
                    client.zrem(f"{PREFIX}active:{uid}", generation_id)
                raise _refuse(
                    client,
                    "requests_per_minute",
                    f"Too many requests: at most {limits.requests_per_minute} a minute.",
                    wait,
                )
    except redis.RedisError as exc:
        log.warning("quota check skipped, Redis unreachable: %s", exc)


def generation_finished(user_id: Any, generation_id: str, tokens: int) -> None:
    """Free the concurrency slot and count the day's tokens (the recorder, exactly once)."""
    if user_id is None:
        return
    uid = str(user_id)
    try:
        client = get_redis()
        pipe = client.pipeline()
        pipe.zrem(f"{PREFIX}active:{uid}", generation_id)
        if tokens:
            key = f"{PREFIX}tokens:{uid}:{_day(time.time())}"
            pipe.incrby(key, tokens)
            pipe.expire(key, 2 * 86400)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("quota bookkeeping for %s skipped, Redis unreachable: %s", generation_id, exc)


def release(user_id: Any, generation_id: str) -> None:
    """Give back the slot of a generation that was refused before it was stored."""
    generation_finished(user_id, generation_id, 0)


def refund_upload(user: Any, size: int) -> None:
    """Give back bytes counted for an upload that was then not stored."""
    with contextlib.suppress(redis.RedisError):
        get_redis().decrby(f"{PREFIX}upload:{user.pk}:{_day(time.time())}", size)


def check_upload(user: Any, size: int) -> None:
    """Count ``size`` upload bytes against today's quota, or raise ``RateLimited``."""
    limit = limits_for(user).upload_bytes_per_day
    if not limit:
        return
    now = time.time()
    key = f"{PREFIX}upload:{user.pk}:{_day(now)}"
    try:
        client = get_redis()
        total = int(client.incrby(key, size))
        client.expire(key, 2 * 86400)
        if total > limit:
            client.decrby(key, size)
            raise _refuse(
                client,
                "upload_bytes_per_day",
                f"This upload would pass your {limit}-byte upload quota for today (UTC); "
                "it resets at midnight.",
                _until_midnight(now),
            )
    except redis.RedisError as exc:
        log.warning("upload quota check skipped, Redis unreachable: %s", exc)


def throttled_counts(days: int = 7) -> dict[str, int]:
    """Refusals per limit over the last ``days`` UTC days (for the staff dashboard)."""
    totals: dict[str, int] = {f.name: 0 for f in fields(Limits)}
    now = time.time()
    try:
        client = get_redis()
        for back in range(days):
            for name, count in client.hgetall(
                PREFIX + "throttled:" + _day(now - back * 86400)
            ).items():
                key = name.decode() if isinstance(name, bytes) else name
                totals[key] = totals.get(key, 0) + int(count)
    except redis.RedisError:
        pass
    return totals
