"""The event log's writers against a real Redis: a worker writes only while the reply is its
own, and the Django side's closing events never collide with it or follow a `done`."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from inference import events, state


def _append(gid: str, owner: str, n: int) -> list[object]:
    async def run() -> list[object]:
        client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        writer = events.AsyncEventLogWriter(client, gid, 60, owner)
        results: list[object] = []
        try:
            for i in range(n):
                try:
                    results.append(await writer.append("content", {"text": f"w{i} "}))
                except events.LogTakenOver:
                    results.append("taken")
        finally:
            await client.aclose()
        return results

    return asyncio.run(run())


def test_a_worker_stops_writing_once_the_reply_is_closed_elsewhere(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    assert state.claim_for_worker(redis_client, gid, "m", "worker-a", 60, 5)
    assert _append(gid, "worker-a", 1) == [False]
    redis_client.delete(state.lease_key(gid))  # the worker looks dead...
    assert state.take_over(redis_client, gid, "worker-a", 60)  # ...and is closed
    events.append_closing_sync(
        redis_client, gid, [("error", {"code": "worker_lost"}), ("done", {"content": "w0 "})], 60
    )
    assert _append(gid, "worker-a", 3) == ["taken"] * 3  # it was alive after all: refused
    kinds = [e.kind for e in events.read_all_sync(redis_client, gid)]
    assert kinds == ["content", "error", "done"]  # nothing after `done`, no id collisions
    # A second closer changes nothing.
    assert events.append_closing_sync(redis_client, gid, [("done", {})], 60) == 0
    assert [e.seq for e in events.read_all_sync(redis_client, gid)] == [1, 2, 3]


def test_a_worker_sets_its_owner_again_after_redis_forgot_it(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    assert _append(gid, "worker-a", 2) == [False, False]  # no owner key: it is re-asserted
    assert state.owner(redis_client, gid) == "worker-a"
    redis_client.set(events.cancel_key(gid), "1")
    assert _append(gid, "worker-a", 1) == [True]  # the Stop is seen in the same round trip


@pytest.mark.parametrize("owner", [state.STOPPED, "worker-b"])
def test_someone_elses_reply_is_never_written(redis_client, owner) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    state.claim(redis_client, gid, owner, 60)
    assert _append(gid, "worker-a", 1) == ["taken"]
    assert events.read_all_sync(redis_client, gid) == []
