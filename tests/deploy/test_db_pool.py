"""The web process's PostgreSQL connections stay bounded under ASGI: Django's psycopg pool
(settings.base), no persistent per-thread connections. A server of its own, marked in
pg_stat_activity by its application_name (libpq's PGAPPNAME), takes 500 requests, many at
once, while the test counts its connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.db import connection

from playground.api.models import ApiKey
from playground.devservers import free_port
from tests.helpers import LiveServer, session_cookie

APP_NAME = "playground-pool-test"
POOL_MAX = 4


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        )
        return int(cursor.fetchone()[0])


@pytest.fixture
def pooled_server(service_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "asgi.log"
    env = {**service_env, "PGAPPNAME": APP_NAME, "DATABASE_POOL_MAX_SIZE": str(POOL_MAX)}
    server = LiveServer.start(port, env, log)
    try:
        yield server.url
    finally:
        server.stop()


def test_500_requests_hold_no_more_connections_than_the_pool(
    pooled_server: str, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    _, key = ApiKey.issue(alice, "pool")
    session = {"sessionid": session_cookie(alice)}
    requests = [
        ("GET", "/", session, {}),  # the chat page: session, user, conversations
        ("GET", "/settings/keys/", session, {}),
        ("GET", "/v1/models", {}, {"Authorization": f"Bearer {key}"}),
        ("GET", "/accounts/login/", {}, {}),
        ("POST", "/media/", {}, {}),  # refused at the edge: no session
    ]
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        try:
            while not stop.is_set():
                peak = max(peak, _connections())
                time.sleep(0.02)
        finally:
            connection.close()  # back to this process's pool, before the thread ends

    def call(i: int) -> int:
        method, path, cookies, headers = requests[i % len(requests)]
        with httpx.Client(base_url=pooled_server, cookies=cookies, timeout=60) as client:
            return client.request(method, path, headers=headers).status_code

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(call, range(500)))
    finally:
        stop.set()
        watcher.join()
    expected = [200, 200, 200, 200, 401]
    assert statuses == [expected[i % len(expected)] for i in range(500)]
    assert 1 <= peak <= POOL_MAX + 1, peak  # +1: a connection being replaced
    # Idle again, the pool keeps what it holds, and no more.
    time.sleep(1)
    assert _connections() <= POOL_MAX
