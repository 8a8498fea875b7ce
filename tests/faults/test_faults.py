"""Fault drills on a private stack: processes and servers die mid-stream, and every reply
still ends with ``done``, keeps its text and is stored (issue: every failure path closes)."""

from __future__ import annotations

import signal
import time

import pytest

from playground.devservers import worker_command
from tests.faults.stack import FaultStack
from tests.helpers import ChatSocket, text_of

pytestmark = pytest.mark.slow
MODEL = "fake-rate"  # 100 tokens/s: "t0 t1 t2 …", one token per word
SINGLE = "fake-single"  # the same, one request at a time


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    stack = FaultStack(tmp_path_factory.mktemp("faults"), models=(MODEL, SINGLE)).start()
    try:
        yield stack
    finally:
        stack.stop()


def _respawn_worker(faults: FaultStack) -> None:
    proc = faults.procs[MODEL]
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    time.sleep(1.0)  # let the dead worker's heartbeat expire
    faults.spawn(MODEL, worker_command(MODEL, "--loglevel", "INFO"))
    faults.wait_online(MODEL)


def _stream_some(ws: ChatSocket, generation_id: str, chars: int) -> str:
    streamed = ""
    while len(streamed) < chars:
        event = ws.recv(timeout=30)
        if event.get("generation_id") == generation_id and event["type"] == "delta":
            streamed += event["text"]
    return streamed


def _error_codes(events: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [e["code"] for e in events if e["type"] == "error"]


def test_kill_9_of_a_model_worker_mid_stream(faults: FaultStack) -> None:
    cookie, conversation = faults.user_with_conversation("kim", MODEL)
    with faults.socket(cookie) as ws:
        gid = ws.generate(conversation, "count", params={"max_tokens": 100_000})["generation_id"]
        streamed = _stream_some(ws, gid, 40)
        faults.signal(MODEL, signal.SIGKILL)
        rest = ws.events_until_done(gid, timeout=90)  # error + done within 90 s
    assert "worker_lost" in _error_codes(rest)
    done = rest[-1]
    assert done["finish_reason"] == "error" and done["content"].startswith(streamed)
    row = faults.wait_reply(gid, status="error")
    assert row["error_code"] == "worker_lost"
    assert row["content"] == done["content"] and row["content"].startswith(streamed)
    assert row["output_tokens"] == len(row["content"].split()) > 0  # true token counts
    _respawn_worker(faults)


def test_redis_killed_mid_stream_then_restarted(faults: FaultStack) -> None:
    cookie, conversation = faults.user_with_conversation("rita", MODEL)
    with faults.socket(cookie) as ws:
        gid = ws.generate(conversation, "count", params={"max_tokens": 100_000})["generation_id"]
        streamed = _stream_some(ws, gid, 40)
        faults.redis.kill()
        faults.broker.kill()
        seen = []
        while not any(e.get("code") == "stream_unavailable" for e in seen):
            seen.append(ws.recv(timeout=20))  # the socket answers with an error, not a drop
        time.sleep(2)
        faults.redis.restart()
        faults.broker.restart()
        rest = ws.events_until_done(gid, timeout=90)
    done = rest[-1]
    assert done["finish_reason"] == "error"
    assert done["error"]["code"] == "event_log_unavailable"
    assert done["content"].startswith(streamed + text_of(seen))  # nothing streamed is lost
    row = faults.wait_reply(gid, status="error")
    assert row["content"] == done["content"] and row["output_tokens"] == len(row["content"].split())

    # Sockets and workers recover: a new reply streams and is stored.
    faults.wait_online(MODEL)
    with faults.socket(cookie) as ws:
        again = ws.generate(conversation, "again", params={"max_tokens": 5})["generation_id"]
        assert ws.events_until_done(again, timeout=60)[-1]["finish_reason"] == "length"
    assert faults.wait_reply(again, status="done")["content"] == "t0 t1 t2 t3 t4 "


def test_a_reply_queued_when_redis_restarts_ends_once(faults: FaultStack) -> None:
    """Redis (events, leases, queue positions) restarts empty while a job waits in the broker
    (a Redis of its own). Whether the worker runs it or the reaper gives it up first, the
    reply ends exactly once, and what is stored is what was streamed."""
    cookie, conversation = faults.user_with_conversation("quinn", SINGLE)
    with faults.socket(cookie) as ws:
        blocker = ws.generate(conversation, "occupy", params={"max_tokens": 100_000})
        _stream_some(ws, blocker["generation_id"], 10)
        waiting = ws.generate(conversation, "then me", params={"max_tokens": 5})
        assert waiting["queue_position"] == 0
    faults.redis.kill()
    faults.redis.restart()
    gid = waiting["generation_id"]
    with faults.socket(cookie) as ws:
        ws.send({"type": "resume", "generation_id": gid, "after_seq": 0})
        events = ws.events_until_done(gid, timeout=60)  # never hangs
    done = events[-1]
    # The running reply survived the blip (its worker's writes retried); stop it now, which
    # frees the only slot, so the worker takes the waiting job from the broker.
    with faults.socket(cookie) as ws:
        ws.send({"type": "resume", "generation_id": blocker["generation_id"], "after_seq": 0})
        ws.send({"type": "stop", "generation_id": blocker["generation_id"]})
        ws.events_until_done(blocker["generation_id"], timeout=60)
    time.sleep(3)
    row = faults.wait_reply(gid, status="done" if done["finish_reason"] == "length" else "error")
    assert row["content"] == done["content"]
    kinds = [e["kind"] for e in faults.events(gid)]
    assert kinds.count("done") == 1
    if done["finish_reason"] == "length":  # a worker took it before it was given up
        assert done["content"] == "t0 t1 t2 t3 t4 "
    else:  # given up first: the worker that later took the job did not run it
        assert row["error_code"] == "queue_lost" and "started" not in kinds


def test_postgres_killed_mid_stream_then_restarted(faults: FaultStack) -> None:
    cookie, conversation = faults.user_with_conversation("pat", MODEL)
    with faults.socket(cookie) as ws:
        gid = ws.generate(conversation, "count", params={"max_tokens": 300})["generation_id"]
        _stream_some(ws, gid, 20)
        faults.pg.kill()
        try:
            events = ws.events_until_done(gid, timeout=60)  # the stream needs no database
            time.sleep(2)
        finally:
            faults.pg.restart()
    expected = "".join(f"t{i} " for i in range(300))
    assert events[-1]["finish_reason"] == "length", events[-2:]
    assert events[-1]["content"] == expected
    row = faults.wait_reply(gid, timeout=90, status="done")  # the recorder retried
    assert row["content"] == expected and row["output_tokens"] == 300


def test_broker_down_at_enqueue_closes_the_reply_with_a_clear_error(faults: FaultStack) -> None:
    cookie, conversation = faults.user_with_conversation("bea", MODEL)
    faults.broker.kill()
    try:
        with faults.socket(cookie) as ws:
            ws.send(
                {
                    "type": "generate",
                    "conversation_id": conversation,
                    "content": "anyone?",
                    "client_ref": "b-1",
                }
            )
            event = ws.recv(timeout=60)
    finally:
        faults.broker.restart()
    assert event["type"] == "error" and event["code"] == "queue_unavailable", event
    assert event["client_ref"] == "b-1" and "generation_id" not in event
    status = faults.manage(
        "from playground.chat.models import Message\n"
        f"print(sorted(Message.objects.filter(conversation_id={conversation!r},"
        " role='assistant').values_list('status', 'error_code')))"
    )
    assert status == "[('error', 'queue_unavailable')]"  # closed, not queued forever
    faults.wait_online(MODEL)
    with faults.socket(cookie) as ws:
        gid = ws.generate(conversation, "now?", params={"max_tokens": 3})["generation_id"]
        assert ws.events_until_done(gid, timeout=60)[-1]["finish_reason"] == "length"


def test_sigterm_drains_a_model_worker(faults: FaultStack) -> None:
    cookie, conversation = faults.user_with_conversation("sam", MODEL)
    with faults.socket(cookie) as ws:
        long = ws.generate(conversation, "long", params={"max_tokens": 100_000})["generation_id"]
        short = ws.generate(conversation, "short", params={"max_tokens": 150})["generation_id"]
        streamed = _stream_some(ws, long, 30)
        faults.signal(MODEL, signal.SIGTERM)
        stopped_at = time.monotonic()
        ends = {}
        while len(ends) < 2:
            event = ws.recv(timeout=60)
            if event["type"] == "done":
                ends[event["generation_id"]] = event
    # The short one finished within the drain; the long one was closed with its text.
    assert ends[short]["finish_reason"] == "length"
    assert ends[long]["finish_reason"] == "error"
    assert ends[long]["error"]["code"] == "worker_stopped"
    assert ends[long]["content"].startswith(streamed)
    assert faults.procs[MODEL].wait(30) == 0  # and the worker exited cleanly
    assert time.monotonic() - stopped_at < 30
    row = faults.wait_reply(long, status="error")
    assert row["error_code"] == "worker_stopped" and row["content"] == ends[long]["content"]
    assert faults.wait_reply(short, status="done")["output_tokens"] == 150
    _respawn_worker(faults)
