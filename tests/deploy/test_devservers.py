"""The pieces of `make run`: the supervisor's back-off, the embedded Redis's append-only file
across a crash, and each CPU worker's share of the cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
from celery import Celery

from engines.cpu import _cgroup_quota, available_cpus, thread_share
from inference.events import append_closing_sync, read_all_sync
from playground.devservers import EmbeddedRedis, Supervisor, _cpu_workers, redis_server_binary
from tests.helpers import ROOT


def _restart_delays(capsys: pytest.CaptureFixture[str], supervisor: Supervisor, seconds: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.02)
    lines = capsys.readouterr().err.splitlines()
    return lines, [
        float(line.split(" in ")[-1].split()[0]) for line in lines if "restarting" in line
    ]


def test_a_crash_loop_backs_off_and_every_restart_is_logged_with_a_timestamp(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    supervisor = Supervisor(
        dict(os.environ), cwd=tmp_path, backoff_s=0.1, backoff_max_s=0.8, stable_s=30
    )
    supervisor.start("crasher", ["sh", "-c", "exit 3"])
    try:
        lines, delays = _restart_delays(capsys, supervisor, 2.8)
    finally:
        supervisor.stop()
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 0.8], lines
    exits = [line for line in lines if "restarting" in line]
    assert all("crasher (pid" in line and "exited with status 3" in line for line in exits)
    assert sum("crasher restarted" in line for line in lines) >= 4
    assert all(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S") for line in lines)


def test_the_back_off_starts_again_once_a_process_stayed_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    supervisor = Supervisor(
        dict(os.environ), cwd=tmp_path, backoff_s=0.1, backoff_max_s=5, stable_s=0.3
    )
    supervisor.start("flaky", ["sh", "-c", "sleep 0.4; exit 0"])  # exit 0 is restarted too
    try:
        lines, delays = _restart_delays(capsys, supervisor, 2.5)
    finally:
        supervisor.stop()
    assert len(delays) >= 3, lines
    assert set(delays) == {0.1}, lines  # each run outlived stable_s: never 0.2, 0.4…


def test_a_killed_process_is_restarted_and_a_stopped_one_is_not(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    supervisor = Supervisor(dict(os.environ), cwd=tmp_path, backoff_s=0.05)
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"])
    first = supervisor.procs["sleeper"]
    try:
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not supervisor.check() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = supervisor.procs["sleeper"]
        assert second.pid != first.pid and second.poll() is None
        assert f"sleeper (pid {first.pid}) was killed by SIGKILL" in capsys.readouterr().err
    finally:
        supervisor.stop()
    assert second.poll() is not None
    assert supervisor.check() == []  # stopped on purpose: stays stopped


def test_a_command_that_cannot_start_is_retried_not_fatal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    supervisor = Supervisor(dict(os.environ), cwd=tmp_path, backoff_s=0.05, backoff_max_s=0.1)
    attempts: list[int] = []

    def command() -> list[str]:
        attempts.append(1)
        if len(attempts) == 1:
            return ["sh", "-c", "exit 1"]
        if len(attempts) < 4:
            return [str(tmp_path / "missing-binary")]
        return [sys.executable, "-c", "import time; time.sleep(120)"]

    supervisor.start("stubborn", command)
    try:
        deadline = time.monotonic() + 10
        while len(attempts) < 4 and time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.02)
        assert supervisor.procs["stubborn"].poll() is None
        assert "could not restart stubborn" in capsys.readouterr().err
    finally:
        supervisor.stop()


def _redis_up(tmp_path: Path, supervisor: Supervisor, server: EmbeddedRedis) -> redis.Redis:
    supervisor.start("redis", server.command)
    server.wait_ready(supervisor.procs["redis"])
    return redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)


def test_the_embedded_redis_keeps_jobs_and_events_across_a_crash(tmp_path: Path) -> None:
    supervisor = Supervisor(dict(os.environ), cwd=tmp_path, backoff_s=0.05)
    server = EmbeddedRedis(tmp_path)
    try:
        client = _redis_up(tmp_path, supervisor, server)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        # A job queued for a model worker, and a reply's event log.
        Celery(broker=server.url).send_task("inference.generate", args=["g1"], queue="smollm2")
        append_closing_sync(client, "g1", [("done", {"status": "complete"})], ttl_s=600)
        time.sleep(1.5)  # appendfsync everysec: at most the last second is at risk
        pid = supervisor.procs["redis"].pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while "redis" not in supervisor.check():  # restarted on the same port and folder
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.wait_ready(supervisor.procs["redis"])
        assert supervisor.procs["redis"].pid != pid
        assert client.llen("smollm2") == 1
        assert [e.kind for e in read_all_sync(client, "g1")] == ["done"]
        client.close()
    finally:
        supervisor.stop()


def test_a_snapshot_only_redis_folder_is_loaded_then_switched_to_the_append_only_file(
    tmp_path: Path,
) -> None:
    port = EmbeddedRedis(tmp_path).port
    old = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--dir", str(tmp_path)]
        + ["--dbfilename", "redis.rdb", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.set("kept", "1")
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        client.shutdown(save=True)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection
    old.wait(10)
    assert not (tmp_path / "redis.aof").exists()
    supervisor = Supervisor(dict(os.environ), cwd=tmp_path)
    try:
        client = _redis_up(tmp_path, supervisor, EmbeddedRedis(tmp_path))
        assert client.get("kept") == "1"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        supervisor.stop()


def test_cpu_workers_share_the_cores_they_really_have(tmp_path: Path) -> None:
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
    assert thread_share(2, cpus=2) == 1
    assert thread_share(2, cpus=8) == 4
    assert thread_share(3, cpus=2) == 1  # never 0
    assert thread_share(0, cpus=4) == 4
    env = {**os.environ, "PLAYGROUND_CATALOGUE": str(ROOT / "tests" / "catalogue.json")}
    served = ["smollm2", "qwen3.5-tiny", "fake-rate"]
    assert _cpu_workers(served, env) == ["smollm2", "qwen3.5-tiny"]


def test_a_cgroup_cpu_quota_caps_the_threads(tmp_path: Path) -> None:
    # cgroup v2: the smallest quota on the way up counts.
    (tmp_path / "v2" / "app" / "worker").mkdir(parents=True)
    (tmp_path / "v2" / "app" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "v2" / "app" / "worker" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "self-v2").write_text("0::/app/worker\n")
    assert _cgroup_quota(tmp_path / "v2", tmp_path / "self-v2") == 1.5
    # cgroup v1: the CFS quota of the cpu controller.
    folder = tmp_path / "v1" / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("300000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self-v1").write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")
    assert _cgroup_quota(tmp_path / "v1", tmp_path / "self-v1") == 3.0
    (tmp_path / "none").write_text("0::/\n")
    assert _cgroup_quota(tmp_path / "empty", tmp_path / "none") == float("inf")


def test_a_worker_sizes_torch_to_its_share_and_idle_threads_sleep() -> None:
    probe = (
        "import os\n"
        "from engines.cpu import configure_threads\n"
        "configure_threads()\n"
        "import torch\n"
        "print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "PLAYGROUND_CPU_THREADS": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["1", "PASSIVE"]


@pytest.mark.slow
def test_make_manage_starts_the_embedded_servers_or_shares_them(tmp_path: Path) -> None:
    """Without URLs and without a running `make run`: manage.py runs against embedded servers
    it starts in the data folder (and stops after); a second command while the first still
    holds them uses the same ones."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["PLAYGROUND_DATA_DIR"] = str(tmp_path)
    show = (
        "import os; print('URLS', os.environ['DATABASE_URL'], os.environ['REDIS_URL'], flush=True)"
    )
    hold = show + "; import sys; sys.stdin.readline()"  # holds the servers until told
    manage = [sys.executable, "-m", "playground.devservers", "manage", "shell", "-c"]
    owner = subprocess.Popen(
        [*manage, hold],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdin is not None
        urls = next(line for line in owner.stdout if line.startswith("URLS")).split()[1:]
        assert urls[0].startswith("postgres://postgres@/playground?host=")
        assert urls[1].startswith("redis://127.0.0.1:")
        shared = subprocess.run(
            [*manage, show], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert shared.returncode == 0, shared.stderr
        assert shared.stdout.split("URLS")[-1].split() == urls
        assert f"using the embedded servers of process {owner.pid}" in shared.stderr
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(60) == 0
    finally:
        if owner.poll() is None:
            owner.kill()
    assert not (tmp_path / "services.json").exists()
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []  # PostgreSQL and Redis stopped with their owner
    # A migration-level command works the same way on its own (servers started and stopped).
    done = subprocess.run(
        [sys.executable, "-m", "playground.devservers", "manage", "migrate", "--plan"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "chat.0001_initial" in done.stdout
