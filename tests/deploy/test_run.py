"""`make run` for real: `python -m playground.devservers run` as a subprocess, then `kill -9` of
a model worker and of the web server (both back and serving within 30 s), `make manage`
against it, and Ctrl-C (SIGINT) stopping everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import requests

from playground.devservers import free_port
from tests.faults.servers import PrivateRedis
from tests.helpers import ROOT, ChatSocket, text_of

pytestmark = pytest.mark.slow
MODEL = "fake-rate"


class Run:
    """`python -m playground.devservers run` on a port and data folder of its own."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.with_name("run.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "playground.devservers", "run", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # signals from the test reach only the launcher
            )
        self.redis = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self, needle: str = "") -> list[psutil.Process]:
        procs = psutil.Process(self.proc.pid).children()
        return [p for p in procs if needle in " ".join(p.cmdline())]

    def worker_pid(self) -> int | None:
        """The pid of the fake-rate worker whose heartbeat is in Redis, if any."""
        for key in self.redis.scan_iter(match=f"worker:{MODEL}@*"):
            return int(key.rsplit(":", 1)[1])
        return None

    def wait(self, what: str, ready: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"make run exited:\n{self.log()[-6000:]}"
            value = ready()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"{what} not within {timeout} s:\n{self.log()[-6000:]}")

    def web_answers(self) -> bool:
        try:
            return requests.get(self.url + "/accounts/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def _chat(run: Run, user: Any, conversation: Any) -> str:
    with ChatSocket(run.url, user) as ws:
        accepted = ws.generate(conversation.id, "count", params={"max_tokens": 5})
        events = ws.events_until_done(accepted["generation_id"], timeout=30)
    assert not [e for e in events if e["type"] == "error"], events
    return text_of(events)


def test_make_run_restarts_what_dies_serves_again_and_stops_on_ctrl_c(
    service_env: dict[str, str], transactional_db: None, tmp_path: Path
) -> None:
    from django.contrib.auth.models import User

    from playground.chat.models import Conversation

    broker = PrivateRedis(tmp_path / "redis")  # heartbeats and queues of this run only
    broker.start()
    data_dir = tmp_path / ".data"  # does not exist: `make run` on a fresh clone
    env = {
        **service_env,  # DATABASE_URL: the test database (migrated already), test settings
        "REDIS_URL": broker.url,
        "PLAYGROUND_TEST_REDIS_DB": "0",
        "PLAYGROUND_DATA_DIR": str(data_dir),
        "PLAYGROUND_SERVED_MODELS": MODEL,
    }
    env.pop("CELERY_BROKER_URL", None)
    run = Run(env, data_dir)
    try:
        run.wait("the worker's heartbeat", run.worker_pid, timeout=120)
        run.wait("the web server", run.web_answers, timeout=60)
        log = run.log()
        assert f"Playground: {run.url}/" in log
        assert f"Redis:      {broker.url}" in log
        assert "PostgreSQL: postgres://" in log
        info = json.loads((data_dir / "run.json").read_text())
        assert info["REDIS_URL"] == broker.url and info["pid"] == run.proc.pid

        # `make manage` (no URLs given) reaches the database the running `make run` uses.
        manage_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        manage_env["DJANGO_SUPERUSER_PASSWORD"] = "a-long-password-1"
        subprocess.run(
            [sys.executable, "-m", "playground.devservers", "manage", "createsuperuser"]
            + ["--noinput", "--username", "root", "--email", "root@example.com"],
            cwd=ROOT,
            env=manage_env,
            check=True,
            timeout=120,
        )
        assert User.objects.get(username="root").is_superuser

        user = User.objects.create_user("runner", password="pw-for-run-1")
        conversation = Conversation.objects.create(user=user, model=MODEL)
        assert _chat(run, user, conversation).split() == ["t0", "t1", "t2", "t3", "t4"]

        # kill -9 of the model worker: a new one serves within 30 s, nobody lifts a finger.
        old = run.worker_pid()
        assert old is not None
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        run.wait("a new worker", lambda: run.worker_pid() not in (None, old), timeout=30)
        assert _chat(run, user, conversation).split() == ["t0", "t1", "t2", "t3", "t4"]
        assert time.monotonic() - killed < 30

        # kill -9 of the web server: it answers again, and chats work through it.
        (web,) = run.children("uvicorn")
        killed = time.monotonic()
        web.kill()
        web.wait(10)
        run.wait("the web server back", run.web_answers, timeout=30)
        assert _chat(run, user, conversation).split() == ["t0", "t1", "t2", "t3", "t4"]
        assert time.monotonic() - killed < 30

        log = run.log()
        assert f"worker {MODEL} (pid {old}) was killed by SIGKILL" in log
        assert f"web (pid {web.pid}) was killed by SIGKILL" in log
        assert "worker fake-rate restarted" in log and "web restarted" in log
        assert "beat (pid" not in log, "celery beat died (its schedule lives in the data folder)"
        assert list(data_dir.glob("celerybeat-schedule*"))

        # Ctrl-C: everything stops (workers drain first), and nothing is left behind.
        children = run.children()
        assert len(children) == 4  # web, worker, app worker, beat
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(60) == 0
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, alive
        assert not (data_dir / "run.json").exists()
        assert "stopped" in run.log().splitlines()[-1]
    finally:
        if run.proc.poll() is None:
            for child in run.children():
                child.kill()
            run.proc.kill()
        broker.stop()
