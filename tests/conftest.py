"""Shared fixtures: real PostgreSQL, real Redis, a live ASGI server and real Celery workers.

The server and the workers are separate processes started once per session
against the test database, so tests that use them need ``transactional_db``
(data must be committed to be seen by another process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings

from playground.devservers import app_worker_command, free_port
from tests.helpers import LiveServer, WorkerPool

ROOT = Path(__file__).resolve().parent.parent
SERVED_IN_TESTS = ("fake-rate", "fake-single", "fake-echo", "smollm2", "qwen3.5-tiny")


def _test_database_url() -> str:
    """DATABASE_URL rewritten to the database pytest-django created."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def service_env(
    django_db_setup: None, django_db_blocker: object, redis_client: redis.Redis
) -> dict[str, str]:
    return {
        **os.environ,
        **settings.WORKER_ENV,
        "DJANGO_SETTINGS_MODULE": "playground.settings.test",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PLAYGROUND_INTERNAL_URL": f"http://127.0.0.1:{LIVE_PORT}",
        "PYTHONUNBUFFERED": "1",
    }


# The live server's port is chosen up front: jobs carry media URLs on it, whichever
# process (the server, or a test calling the service directly) makes them.
LIVE_PORT = free_port()


@pytest.fixture(scope="session", autouse=True)
def _internal_url() -> None:
    settings.PLAYGROUND_INTERNAL_URL = f"http://127.0.0.1:{LIVE_PORT}"


@pytest.fixture(scope="session")
def live_server_url(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = LIVE_PORT
    log = tmp_path_factory.mktemp("logs") / "asgi.log"
    _SERVICE_LOGS.append(log)
    server = LiveServer.start(port, service_env, log)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def workers(
    service_env: dict[str, str], redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    log_dir = tmp_path_factory.mktemp("workers")
    _SERVICE_LOGS.extend(log_dir / f"{name}.log" for name in (*SERVED_IN_TESTS, "app"))
    pool = WorkerPool(service_env, log_dir, redis_client)
    try:
        for model in SERVED_IN_TESTS:
            pool.start(model)
        pool.start("app", app_worker_command("--loglevel", "WARNING"))
        pool.wait_online(SERVED_IN_TESTS, timeout=240)
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def stack(
    transactional_db: None, live_server_url: str, workers: WorkerPool, redis_client: redis.Redis
) -> Iterator[str]:
    """The whole path is up: live ASGI server + workers on the test database.

    Afterwards it waits for the background work a test set off (generations still
    streaming, records not yet stored) so that none of it writes while the test
    database is flushed: a write racing the flush can deadlock it.
    """
    yield live_server_url
    _settle(redis_client)


def _settle(client: redis.Redis, timeout: float = 20) -> None:
    from inference.events import last_event_sync
    from inference.heartbeats import list_workers
    from playground.chat.models import Message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = client.llen("records") > 0 or any(
            int(w.get("in_flight", 0)) for w in list_workers(client)
        )
        if not busy:
            open_ids = Message.objects.filter(
                role=Message.Role.ASSISTANT, status__in=("queued", "running")
            ).values_list("id", flat=True)
            unrecorded = [
                gid
                for gid in open_ids
                if (last := last_event_sync(client, str(gid))) is not None and last.kind == "done"
            ]
            if not unrecorded:
                time.sleep(0.3)  # a record task taken off the queue may still be writing
                return
        time.sleep(0.1)


@pytest.fixture
def busy_single(stack: str, transactional_db: None) -> Iterator[str]:
    """``fake-single`` (a real worker whose engine admits one request) kept busy by a long
    generation, so the next generation for it really waits in the queue. Stopped after."""
    from django.contrib.auth.models import User

    from playground.generations.service import create_conversation, request_stop
    from tests.helpers import ChatSocket

    owner = User.objects.create_user("blocker", password="blocker-password-1")
    conversation = create_conversation(owner, "fake-single")
    with ChatSocket(stack, owner) as ws:
        gid = ws.generate(conversation.id, "occupy", params={"max_tokens": 100_000})[
            "generation_id"
        ]
        while ws.recv()["type"] != "delta":
            pass
    try:
        yield "fake-single"
    finally:
        request_stop(owner, gid)


@pytest.fixture
def alice(transactional_db: None):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    return User.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(transactional_db: None):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    return User.objects.create_user("bob", password="bob-password-1")


_SERVICE_LOGS: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the tails of the server's and workers' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for log in _SERVICE_LOGS:
            if log.exists():
                report.sections.append((f"log {log.name}", log.read_text(errors="replace")[-4000:]))
