"""Test helpers: process control for the live server and workers, and a real WebSocket client."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from playground.devservers import asgi_command, worker_command

ROOT = Path(__file__).resolve().parent.parent


class LiveServer:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, port: int, env: dict[str, str], log: Path) -> LiveServer:
        """The ASGI server as `make run` starts it, answering requests (or stopped again)."""
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                asgi_command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = cls(proc, port, log)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ASGI server exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"ASGI server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class WorkerPool:
    """Real Celery worker processes, one per model, as `make run` starts them."""

    def __init__(self, env: dict[str, str], log_dir: Path, client: redis.Redis) -> None:
        self.env, self.log_dir, self.redis = env, log_dir, client
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, model: str, command: list[str] | None = None) -> None:
        """Start the worker for ``model`` (or any worker ``command`` under that name)."""
        log = open(self.log_dir / f"{model}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.procs[model] = subprocess.Popen(
            command or worker_command(model, "--loglevel", "WARNING"),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def heartbeat(self, model: str) -> dict[str, Any] | None:
        from inference.heartbeats import list_workers

        beats = [w for w in list_workers(self.redis) if w["model"] == model]
        return beats[0] if beats else None

    def wait_online(self, models: tuple[str, ...], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for model, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {model} exited:\n{self.logs(model)}")
            if all(self.heartbeat(m) for m in models):
                return
            time.sleep(0.2)
        raise RuntimeError(
            "workers did not come online:\n" + "\n".join(self.logs(m) for m in models)
        )

    def logs(self, model: str) -> str:
        return (self.log_dir / f"{model}.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def logged_in_session(base_url: str, user: Any) -> requests.Session:
    """A real HTTP client (requests) holding ``user``'s session cookie for ``base_url``."""
    session = requests.Session()
    session.cookies.set("sessionid", session_cookie(user), domain=urlsplit(base_url).hostname)
    return session


class ChatSocket:
    """A real WebSocket client speaking docs/protocol.md."""

    def __init__(
        self,
        base_url: str,
        user: Any | None,
        origin: str | None = None,
        cookie: str = "",
        path: str = "/ws/chat/",
    ) -> None:
        """``user`` logs in on this process's database; ``cookie`` is a session made elsewhere;
        ``path`` is the socket (the arena's speaks the same protocol)."""
        if user is not None:
            cookie = session_cookie(user)
        headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
        self.backlog: list[dict[str, Any]] = []  # events read while waiting for `accepted`
        self.conn: ClientConnection = connect(
            base_url.replace("http://", "ws://") + path,
            additional_headers=headers,
            origin=origin or base_url,  # type: ignore[arg-type]
            open_timeout=10,
        ).__enter__()  # closed by close() / __exit__

    def send(self, frame: Any) -> None:
        self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        return json.loads(self.conn.recv(timeout=timeout))

    def generate(self, conversation_id: Any, content: str, **extra: Any) -> dict[str, Any]:
        self.send(
            {
                "type": "generate",
                "conversation_id": str(conversation_id),
                "content": content,
                **extra,
            }
        )
        while True:  # events of generations already followed may come first
            event = json.loads(self.conn.recv(timeout=30))
            if event["type"] == "accepted" or "generation_id" not in event:
                break
            self.backlog.append(event)
        assert event["type"] == "accepted", event
        return event

    def events_until_done(self, generation_id: str, timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.recv(timeout=max(0.1, deadline - time.monotonic()))
            if event.get("generation_id") != generation_id:
                continue
            events.append(event)
            if event["type"] == "done":
                return events

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ChatSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deltas(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "delta"]


def text_of(events: list[dict[str, Any]], kind: str = "content") -> str:
    return "".join(e["text"] for e in deltas(events) if e["kind"] == kind)
