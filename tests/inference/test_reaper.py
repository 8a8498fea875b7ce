"""A reply whose worker dies mid-generation is closed as an error, with its text so far."""

from __future__ import annotations

import time

import pytest

from inference.state import lease_key
from playground.chat.models import Message
from playground.dashboard.models import UsageRecord
from playground.generations.reaper import LOST_CODE, reap_lost_generations
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, WorkerPool

pytestmark = pytest.mark.slow


def test_a_reply_whose_worker_dies_is_closed_and_the_client_is_told(
    stack, alice, service_env, redis_client, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    pool = WorkerPool(service_env, tmp_path, redis_client)
    pool.start("fake-doomed")
    try:
        pool.wait_online(("fake-doomed",), timeout=120)
        doomed = create_conversation(alice, "fake-doomed")
        healthy = create_conversation(alice, "fake-rate")
        with ChatSocket(stack, alice) as ws:
            lost = ws.generate(doomed.id, "count", params={"max_tokens": 100_000})["generation_id"]
            alive = ws.generate(healthy.id, "count", params={"max_tokens": 100_000})[
                "generation_id"
            ]
            streamed = ""
            while len(streamed) < 30:
                event = ws.recv()
                if event.get("generation_id") == lost and event["type"] == "delta":
                    streamed += event["text"]
        # Nobody watches now: the reaper alone must find it.
        pool.procs["fake-doomed"].kill()  # no goodbye: its heartbeat and lease just stop
        deadline = time.monotonic() + 10
        while redis_client.exists(lease_key(lost)) and time.monotonic() < deadline:
            time.sleep(0.1)  # the lease outlives the worker by at most its TTL

        assert reap_lost_generations(grace_s=0) == [lost]  # not the healthy one
        with ChatSocket(stack, alice) as ws:
            ws.send({"type": "resume", "generation_id": lost, "after_seq": 0})
            tail = ws.events_until_done(lost, timeout=10)
            errors = [e for e in tail if e["type"] == "error"]
            assert errors and errors[-1]["code"] == LOST_CODE
            assert tail[-1]["type"] == "done" and tail[-1]["finish_reason"] == "error"
            ws.send({"type": "resume", "generation_id": alive, "after_seq": 0})
            ws.send({"type": "stop", "generation_id": alive})
            ws.events_until_done(alive, timeout=20)

        reply = Message.objects.get(pk=lost)
        assert (reply.status, reply.finish_reason, reply.error_code) == (
            "error",
            "error",
            LOST_CODE,
        )
        assert reply.content.startswith(streamed) and reply.finished_at is not None
        # True token counts, from the frames the worker logged before it died.
        assert reply.output_tokens == len(reply.content.split()) > 0
        usage = UsageRecord.objects.get(message_id=lost)
        assert (usage.finish_reason, usage.error_code) == ("error", LOST_CODE)
        assert Message.objects.get(pk=alive).status == "cancelled"
        assert reap_lost_generations(grace_s=0) == []  # nothing twice
    finally:
        pool.stop()
