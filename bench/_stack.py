"""Bring up the full path for a benchmark: its own database, Redis db 14, server and workers.

Run through ``python -m playground.devservers exec --`` (``make bench``), which
provides DATABASE_URL / REDIS_URL. ``PLAYGROUND_BENCH_DATABASE`` (default
``playground_bench``) and ``PLAYGROUND_BENCH_REDIS_DB`` (default 14) move a run
elsewhere, so that two can share one PostgreSQL and Redis (a test runs a bench
while the suite's own stack is up).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database(fresh: bool = True) -> dict[str, str]:
    """Point Django at the bench database (recreated if ``fresh``), migrate, set Django up.

    Returns the environment for processes that should share it.
    """
    import psycopg
    from psycopg import sql

    name = os.environ.get("PLAYGROUND_BENCH_DATABASE", "playground_bench")
    base = urlsplit(os.environ["DATABASE_URL"])
    admin_url = urlunsplit(base._replace(path="/postgres"))
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if fresh or exists.fetchone() is None:
            database = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(base._replace(path=f"/{name}")),
        "PLAYGROUND_TEST_REDIS_DB": os.environ.get("PLAYGROUND_BENCH_REDIS_DB", "14"),
        "DJANGO_SETTINGS_MODULE": "playground.settings.bench",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    return env


@contextlib.contextmanager
def bench_stack(models: tuple[str, ...], fake_rate: float) -> Iterator[tuple[str, object]]:
    """Yield (base_url, worker_pool) with Django set up against the bench database."""
    os.environ["FAKE_RATE"] = str(fake_rate)
    env = bench_database()
    import redis
    from django.conf import settings

    from playground.devservers import app_worker_command, asgi_command, free_port
    from tests.helpers import LiveServer, WorkerPool

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    # Model workers read their catalogue and timings from the environment (no Django).
    env = {
        **env,
        **settings.WORKER_ENV,
        "REDIS_URL": settings.REDIS_URL,  # the bench's own Redis database, for every process
        "PLAYGROUND_INTERNAL_URL": f"http://127.0.0.1:{port}",
    }
    with open(logs / "asgi.log", "wb") as out:
        proc = subprocess.Popen(
            asgi_command(port, "--log-level", "warning"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(proc, port, logs / "asgi.log")
    pool = WorkerPool(env, logs, client)
    try:
        server.wait_ready()
        for model in models:
            pool.start(model)
        pool.start("app", app_worker_command("--loglevel", "WARNING"))
        pool.wait_online(models, timeout=300)
        yield server.url, pool
    finally:
        pool.stop()
        server.stop()


def asgi_process(url: str) -> psutil.Process:
    """The ASGI server process serving ``url`` (for its memory)."""
    port = url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "playground.asgi:application" in cmdline and port in cmdline:
            return proc
    raise RuntimeError("the ASGI server process was not found")


def _conninfo(url: str) -> str:
    import environ

    cfg = environ.Env.db_url_config(url)
    parts = {"dbname": cfg["NAME"], "user": cfg["USER"], "host": cfg["HOST"], "port": cfg["PORT"]}
    parts.update(cfg.get("OPTIONS", {}))
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)
