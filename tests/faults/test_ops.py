"""What an operator sees, on a private stack whose servers and workers the tests kill:
``/healthz`` and ``/readyz``, the alerting series of ``/metrics``, and the processes' logs
(one line at start; one line per Redis outage and recovery, not one per retry)."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from inference import counters
from playground.devservers import beat_command, worker_command
from tests.faults.stack import FaultStack

pytestmark = pytest.mark.slow
MODEL = "fake-rate"
SINGLE = "fake-single"  # one batch slot: a second reply really waits in the queue
TOKEN = "ops-metrics-token"
STUCK_AFTER_S = 2.0


class OpsStack(FaultStack):
    @property
    def env(self) -> dict[str, str]:
        return {
            **super().env,
            "PLAYGROUND_SERVED_MODELS": ",".join(self.models),
            "PLAYGROUND_METRICS_TOKEN": TOKEN,
            "PLAYGROUND_STUCK_REPLY_S": str(STUCK_AFTER_S),
        }

    def lines(self, name: str) -> list[str]:
        path = self.workdir / f"{name}.log"
        return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]

    def readyz(self) -> tuple[int, dict[str, Any], float]:
        started = time.monotonic()
        response = requests.get(f"{self.url}/readyz", timeout=10)
        return response.status_code, response.json(), time.monotonic() - started

    def wait_ready(self, status: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            code, body, _ = self.readyz()
            if code == status or time.monotonic() > deadline:
                assert code == status, f"{body}\n{self.logs()}"
                return body
            time.sleep(0.2)

    def metrics(self) -> dict[str, float]:
        response = requests.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return parse_metrics(response.text)

    def counter(self, name: str) -> int:
        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        return sum(counters.by_name(counters.read(client), name).values())


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` → value, from Prometheus text format."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    stack = OpsStack(tmp_path_factory.mktemp("ops"), models=(MODEL, SINGLE)).start()
    try:
        yield stack
    finally:
        stack.stop()


def _wait_for(check: Any, timeout: float, what: str, stack: OpsStack) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s\n{stack.logs()}")


def test_each_process_logs_one_line_at_start(ops: OpsStack) -> None:
    ops.spawn("beat", beat_command(ops.workdir / "celerybeat-schedule"))
    _wait_for(lambda: ops.lines("beat"), 60, "beat's start line", ops)
    _wait_for(lambda: ops.lines("app"), 60, "the app worker's start line", ops)
    time.sleep(3)  # beat sends its first jobs; nothing more may appear
    for name, start in (
        (MODEL, rf"INFO inference\.process: model worker {MODEL} started: pid \d+, "
                rf"concurrency 64 threads, backend fake-rate, queues model\.{MODEL}, broker redis://"),
        (SINGLE, rf"model worker {SINGLE} started: pid \d+, concurrency 1 threads"),
        ("app", r"INFO inference\.process: app worker started: pid \d+, concurrency 4, "
                r"queues media,records, broker redis://"),
        ("beat", r"INFO playground\.beat: beat started: pid \d+, schedule .*celerybeat-schedule, "
                 r"broker redis://.*, sends .*reap-lost-generations every 30 s"),
    ):  # fmt: skip
        lines = ops.lines(name)
        assert len(lines) == 1, f"{name}:\n" + "\n".join(lines)
        assert re.search(start, lines[0]), lines[0]
    for name in (MODEL, "app", "beat"):
        text = (ops.workdir / f"{name}.log").read_text()
        for noise in ("superuser", "SecurityWarning", "[queues]", "celery beat v", " ready."):
            assert noise not in text, f"{name}: {noise!r} in\n{text}"


def test_healthz_and_readyz_when_everything_is_up(ops: OpsStack) -> None:
    response = requests.get(f"{ops.url}/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    code, body, took = ops.readyz()
    assert code == 200, body
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"postgres", "redis", "broker", "workers"}
    assert body["checks"]["workers"]["models"] == {MODEL: 1, SINGLE: 1}
    assert all(check["ok"] for check in body["checks"].values())
    assert took < 1.0
    # A probe naming the container by address is not a disallowed host; no session needed.
    for path in ("/healthz", "/readyz"):
        response = requests.get(f"{ops.url}{path}", headers={"Host": "10.1.2.3:8000"}, timeout=5)
        assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_redis_outage_logs_one_line_per_change_and_readyz_names_it(ops: OpsStack) -> None:
    before = {name: len(ops.lines(name)) for name in (MODEL, "app", "beat")}
    ops.redis.kill()
    ops.broker.kill()
    try:
        code, body, took = ops.readyz()
        assert code == 503, body
        assert took < 3.0
        assert set(body["failed"]) == {"redis", "broker", "workers"}, body
        assert "cannot read heartbeats" in body["checks"]["workers"]["error"]
        assert body["checks"]["postgres"]["ok"]
        assert ops.metrics()["playground_redis_up"] == 0  # the scrape still answers
        assert (
            requests.get(f"{ops.url}/healthz", timeout=5).status_code == 200
        )  # alive all the same
        time.sleep(10)  # ten seconds of outage: one line per lost server, not one per retry
        for name in (MODEL, "app", "beat"):
            outage = ops.lines(name)[before[name] :]
            assert len(outage) == 2, f"{name}:\n" + "\n".join(outage)
            assert any(re.search(r"lost Redis at redis://127\.0\.0\.1:\d+/0 \(", x) for x in outage)
            assert any("lost broker at redis://" in x for x in outage), outage
    finally:
        ops.redis.restart()
        ops.broker.restart()
    body = ops.wait_ready(200, timeout=60)
    assert body["checks"]["workers"]["models"] == {MODEL: 1, SINGLE: 1}
    for name in (MODEL, "app", "beat"):
        _wait_for(
            lambda name=name: len([x for x in ops.lines(name) if "back after" in x]) == 2,
            30,
            f"{name}'s 'back after' lines",
            ops,
        )
        assert len(ops.lines(name)) == before[name] + 4, "\n".join(ops.lines(name))
    samples = ops.metrics()
    for process, model in (("model worker", MODEL), ("app worker", ""), ("beat", "")):
        for connection in ("redis", "broker"):
            series = (
                "playground_broker_disconnects_total"
                f'{{connection="{connection}",model="{model}",process="{process}"}}'
            )
            assert samples.get(series) == 1, (series, samples)
    # The workers serve again.
    cookie, conversation = ops.user_with_conversation("rosa", MODEL)
    with ops.socket(cookie) as ws:
        gid = ws.generate(conversation, "again", params={"max_tokens": 3})["generation_id"]
        assert ws.events_until_done(gid, timeout=60)[-1]["finish_reason"] == "length"


def test_readyz_answers_within_two_seconds_when_redis_hangs(ops: OpsStack) -> None:
    assert ops.redis._proc is not None
    os.kill(ops.redis._proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        code, body, took = ops.readyz()
    finally:
        os.kill(ops.redis._proc.pid, signal.SIGCONT)
    assert code == 503 and "redis" in body["failed"], body
    assert body["checks"]["redis"]["error"] == "no answer within 2 s"
    assert took < 3.0
    ops.wait_ready(200, timeout=30)


def test_postgres_outage_fails_readyz_and_counts_recorder_and_reaper_failures(
    ops: OpsStack,
) -> None:
    from celery import Celery

    cookie, conversation = ops.user_with_conversation("petra", MODEL)
    recorder_before = ops.counter("recorder_failures")
    with ops.socket(cookie) as ws:
        gid = ws.generate(conversation, "count", params={"max_tokens": 100})["generation_id"]
        ops.pg.kill()
        try:
            code, body, took = ops.readyz()
            assert code == 503 and body["failed"] == ["postgres"], body
            assert took < 3.0
            assert body["checks"]["postgres"]["error"].startswith("OperationalError")
            # The reply ends (the stream needs no database); storing it fails until PG is back.
            assert ws.events_until_done(gid, timeout=60)[-1]["finish_reason"] == "length"
            _wait_for(
                lambda: ops.counter("recorder_failures") > recorder_before,
                30,
                "a recorder failure",
                ops,
            )
            reaper_before = ops.counter("reaper_failures")
            sender = Celery(broker=ops.broker.url)
            sender.send_task("generations.reap", queue="media")
            _wait_for(
                lambda: ops.counter("reaper_failures") > reaper_before,
                30,
                "a reaper failure",
                ops,
            )
        finally:
            ops.pg.restart()
    ops.wait_ready(200, timeout=60)
    assert ops.wait_reply(gid, timeout=90, status="done")["output_tokens"] == 100
    samples = ops.metrics()
    assert samples["playground_recorder_failures_total"] >= 1
    assert samples["playground_reaper_failures_total"] >= 1


def test_stuck_replies_and_a_killed_worker(ops: OpsStack) -> None:
    cookie, conversation = ops.user_with_conversation("stella", SINGLE)
    with ops.socket(cookie) as ws:
        ws.generate(conversation, "occupy", params={"max_tokens": 100_000})
        queued = ws.generate(conversation, "then me", params={"max_tokens": 3})
        assert queued["queue_position"] == 0
    time.sleep(STUCK_AFTER_S + 0.5)
    samples = ops.metrics()
    assert samples[f'playground_replies_stuck{{model="{SINGLE}",state="running"}}'] == 1
    assert samples[f'playground_replies_stuck{{model="{SINGLE}",state="queued"}}'] == 1
    assert samples[f'playground_replies_stuck{{model="{MODEL}",state="queued"}}'] == 0
    assert samples[f'playground_model_up{{model="{SINGLE}"}}'] == 1
    lost_series = f'playground_worker_heartbeats_lost_total{{model="{SINGLE}"}}'
    lost_before = samples[lost_series]

    ops.signal(SINGLE, signal.SIGKILL)
    ops.procs[SINGLE].wait(10)
    body = ops.wait_ready(503, timeout=10)
    assert body["failed"] == ["workers"], body
    assert body["checks"]["workers"]["models"] == {MODEL: 1, SINGLE: 0}
    assert body["checks"]["workers"]["error"] == f"no live worker for {SINGLE}"
    samples = _wait_for(
        lambda: (m := ops.metrics())[lost_series] > lost_before and m,
        30,
        "the lost heartbeat counted",
        ops,
    )
    assert samples[lost_series] == lost_before + 1
    assert samples[f'playground_model_up{{model="{SINGLE}"}}'] == 0
    assert samples[f'playground_model_up{{model="{MODEL}"}}'] == 1
    # Stuck with no worker at all: still counted, by where each reply was.
    assert samples[f'playground_replies_stuck{{model="{SINGLE}",state="queued"}}'] == 1
    assert samples[f'playground_replies_stuck{{model="{SINGLE}",state="running"}}'] == 1
    assert ops.metrics()[lost_series] == lost_before + 1  # counted once, not per scrape

    ops.spawn(SINGLE, worker_command(SINGLE, "--loglevel", "INFO"))
    ops.wait_online(SINGLE)
    ops.wait_ready(200, timeout=30)
    assert ops.metrics()[f'playground_model_up{{model="{SINGLE}"}}'] == 1


def test_a_worker_stopped_cleanly_is_not_a_lost_heartbeat(ops: OpsStack) -> None:
    series = f'playground_worker_heartbeats_lost_total{{model="{MODEL}"}}'
    before = ops.metrics()[series]
    ops.signal(MODEL, signal.SIGTERM)
    assert ops.procs[MODEL].wait(30) == 0
    body = ops.wait_ready(503, timeout=5)  # gone at once, not three beats later
    assert body["checks"]["workers"]["models"][MODEL] == 0
    time.sleep(3)
    assert ops.metrics()[series] == before
    ops.spawn(MODEL, worker_command(MODEL, "--loglevel", "INFO"))
    ops.wait_online(MODEL)
    ops.wait_ready(200, timeout=30)
