"""``GET /healthz`` and ``GET /readyz``: for container health checks, the proxy and orchestrators.

- ``/healthz``: 200 ``{"status": "ok"}`` whenever the web process answers. It touches
  nothing else (a database or Redis outage must not get the web process restarted).
- ``/readyz``: 200 when PostgreSQL answers, Redis answers (and the Celery broker, when
  it is a Redis of its own), and every model in ``PLAYGROUND_SERVED_MODELS`` has at least
  one live worker (a fresh heartbeat, not draining); otherwise 503. Either way the body
  lists every check: ``{"status": "ok" | "unavailable", "failed": [...], "checks":
  {"postgres": {"ok": true, "ms": 1.2}, "redis": {...}, "workers": {"ok": false,
  "models": {"smollm2": 0, ...}, "error": "no live worker for smollm2"}}}``.

Both are answered by a middleware placed first: unauthenticated, before the host check
(a probe may name the container by address), sessions and CSRF. The checks run
concurrently, each with its own connection and a ``CHECK_TIMEOUT_S`` limit, so a server
that hangs instead of refusing costs a probe at most that long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import redis.asyncio as aioredis
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from inference.heartbeats import list_workers_async

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0
PATHS = ("/healthz", "/readyz")
NO_STORE = {"Cache-Control": "no-store"}


class HealthCheckMiddleware:
    """Answers ``/healthz`` and ``/readyz`` before any other middleware."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path not in PATHS:
            return await self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"error": "use GET"}, status=405, headers={"Allow": "GET, HEAD"})
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"}, headers=NO_STORE)
        checks = await readiness()
        failed = [name for name, check in checks.items() if not check["ok"]]
        _log_change(failed, checks)
        response = JsonResponse(
            {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks},
            status=503 if failed else 200,
            headers=NO_STORE,
        )
        # Not Django's "Service Unavailable: /readyz" error line on every probe of an
        # outage: _log_change logs one line when readiness changes.
        response._has_been_logged = True
        return response


_last_failed: list[str] | None = None


def _log_change(failed: list[str], checks: dict[str, dict[str, Any]]) -> None:
    """One line when this process's answer changes (not ready, which checks, and why)."""
    global _last_failed
    if failed == _last_failed:
        return
    if failed:
        log.warning(
            "not ready: %s", "; ".join(f"{name}: {checks[name].get('error')}" for name in failed)
        )
    elif _last_failed:
        log.warning("ready again")
    _last_failed = failed


async def readiness() -> dict[str, dict[str, Any]]:
    """Every check's result: ``{"ok": bool, "ms": float, ...}`` with ``error`` when failed."""
    redis_url = settings.REDIS_URL
    broker_url = settings.CELERY_BROKER_URL
    checks: dict[str, dict[str, Any]] = {}
    jobs = [_postgres(checks), _redis_and_workers(checks, redis_url)]
    if broker_url != redis_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        jobs.append(_broker(checks, broker_url))
    await asyncio.gather(*jobs)
    return dict(sorted(checks.items()))


async def _postgres(checks: dict[str, dict[str, Any]]) -> None:
    started = time.perf_counter()
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    params["connect_timeout"] = max(1, int(CHECK_TIMEOUT_S))
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
            async with conn:
                await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 (every failure is a failed check, with its reason)
        checks["postgres"] = _failed(exc, started)
    else:
        checks["postgres"] = {"ok": True, "ms": _ms(started)}


async def _redis_and_workers(checks: dict[str, dict[str, Any]], url: str) -> None:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), _client(url) as client:
            await client.ping()
            checks["redis"] = {"ok": True, "ms": _ms(started)}
            beats = await list_workers_async(client)
    except Exception as exc:  # noqa: BLE001
        failure = _failed(exc, started)
        checks.setdefault("redis", failure)
        checks["workers"] = {**failure, "error": "cannot read heartbeats: " + failure["error"]}
        return
    models = {name: 0 for name in settings.PLAYGROUND_SERVED_MODELS}
    for beat in beats:
        if beat.get("model") in models and not beat.get("draining"):
            models[beat["model"]] += 1
    missing = [name for name, count in models.items() if count == 0]
    checks["workers"] = {"ok": not missing, "models": models, "ms": _ms(started)}
    if missing:
        checks["workers"]["error"] = "no live worker for " + ", ".join(missing)


async def _broker(checks: dict[str, dict[str, Any]], url: str) -> None:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), _client(url) as client:
            await client.ping()
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = _failed(exc, started)
    else:
        checks["broker"] = {"ok": True, "ms": _ms(started)}


def _client(url: str) -> aioredis.Redis:
    """A client of its own, with one connection and short timeouts."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=CHECK_TIMEOUT_S,
        socket_connect_timeout=CHECK_TIMEOUT_S,
        single_connection_client=True,
        decode_responses=True,
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _failed(exc: BaseException, started: float) -> dict[str, Any]:
    if isinstance(exc, TimeoutError):
        error = f"no answer within {CHECK_TIMEOUT_S:g} s"
    else:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'no details'}"
    return {"ok": False, "error": error, "ms": _ms(started)}
