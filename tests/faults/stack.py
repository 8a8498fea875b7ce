"""A whole playground on private servers that a test may kill: its own PostgreSQL, its own
Redis for events and heartbeats, its own Redis as the Celery broker, the ASGI server, the
app worker (recorder) and a model worker. Nothing here touches the main test stack.

The test process reaches this stack's database with psycopg and ``manage.py shell``
(its own Django is connected to the main test database).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from playground.devservers import app_worker_command, asgi_command, worker_command
from tests.faults.servers import PrivatePostgres, PrivateRedis, free_port
from tests.helpers import ROOT, ChatSocket


class FaultStack:
    def __init__(self, workdir: Path, models: tuple[str, ...] = ("fake-rate",)) -> None:
        self.workdir = workdir
        self.models = models
        self.pg = PrivatePostgres(workdir / "pg")
        self.redis = PrivateRedis(workdir / "redis")
        self.broker = PrivateRedis(workdir / "broker")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **settings.WORKER_ENV,
            "DJANGO_SETTINGS_MODULE": "playground.settings.test",
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "PLAYGROUND_TEST_REDIS_DB": "0",
            "CELERY_BROKER_URL": self.broker.url,
            "PLAYGROUND_INTERNAL_URL": self.url,
            "PLAYGROUND_ENQUEUE_GRACE_S": "3",
            "PYTHONUNBUFFERED": "1",
        }

    # --- processes -------------------------------------------------------------------
    def start(self) -> FaultStack:
        for server in (self.pg, self.redis, self.broker):
            server.start()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True
        )
        self.spawn("web", asgi_command(self.port))
        self.spawn("app", app_worker_command("--loglevel", "INFO"))
        for model in self.models:
            self.spawn(model, worker_command(model, "--loglevel", "INFO"))
        self.wait_online(*self.models)
        return self

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (lives with the process)
        self.procs[name] = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def wait_online(self, *models: str, timeout: float = 120) -> None:
        import redis

        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)}")
            beats = [json.loads(v) for v in client.mget(client.keys("worker:*") or ["-"]) if v]
            if all(any(b["model"] == m for b in beats) for m in models):
                return
            time.sleep(0.2)
        raise RuntimeError("workers did not come online:\n" + self.logs())

    def signal(self, name: str, signum: int) -> None:
        self.procs[name].send_signal(signum)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)}" for name in self.procs)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in (self.broker, self.redis, self.pg):
            server.stop()

    # --- data ------------------------------------------------------------------------
    def manage(self, code: str) -> str:
        """Run Python in a Django shell on this stack's database; return its last line."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        return done.stdout.strip().splitlines()[-1]

    def user_with_conversation(self, username: str, model: str) -> tuple[str, str]:
        """A user, logged in (session key), with one conversation on ``model``."""
        out = self.manage(
            "from django.contrib.auth.models import User\n"
            "from django.test import Client\n"
            "from playground.chat.models import Conversation\n"
            f"u = User.objects.create_user({username!r}, password='pw-for-faults-1')\n"
            "c = Client(); c.force_login(u)\n"
            f"conv = Conversation.objects.create(user=u, model={model!r})\n"
            "print(c.cookies['sessionid'].value, conv.id)"
        )
        cookie, conversation = out.split()
        return cookie, conversation

    def socket(self, cookie: str) -> ChatSocket:
        return ChatSocket(self.url, None, cookie=cookie)

    def reply(self, generation_id: str) -> dict[str, Any]:
        with psycopg.connect(self.pg.url, row_factory=psycopg.rows.dict_row) as conn:
            row = conn.execute(
                "SELECT * FROM chat_message WHERE id = %s", (generation_id,)
            ).fetchone()
        return dict(row) if row else {}

    def events(self, generation_id: str) -> list[dict[str, Any]]:
        """The generation's event log as stored in this stack's Redis."""
        import redis

        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        return [
            {"id": entry_id, "kind": fields["kind"]}
            for entry_id, fields in client.xrange(f"gen:{generation_id}:events")
        ]

    def wait_reply(
        self, generation_id: str, timeout: float = 90, **expected: Any
    ) -> dict[str, Any]:
        """Poll the stored reply until its fields equal ``expected`` (PostgreSQL may be restarting)."""
        deadline = time.monotonic() + timeout
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                row = self.reply(generation_id)
            except psycopg.OperationalError:
                row = {}
            if row and all(row.get(k) == v for k, v in expected.items()):
                return row
            time.sleep(0.3)
        raise AssertionError(
            f"reply {generation_id} never reached {expected}: {row}\n{self.logs()}"
        )
