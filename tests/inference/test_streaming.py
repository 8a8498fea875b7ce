"""stream_to_log against real Redis with the named fake engine."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from engines.base import ChatMessage, GenerationRequest, SamplingParams
from engines.catalogue import ModelSpec
from engines.fake import FakeRateEngine
from inference.events import AsyncEventLogWriter, log_key
from inference.streaming import stream_to_log


def _run(engine: FakeRateEngine, max_tokens: int, thinking: bool = False):  # type: ignore[no-untyped-def]
    async def scenario():  # type: ignore[no-untyped-def]
        client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        writer = AsyncEventLogWriter(client, "streaming-test", 60, "streaming-test-worker")
        await client.delete(log_key("streaming-test"))
        request = GenerationRequest(
            "streaming-test", [ChatMessage("user", "go")], SamplingParams(max_tokens=max_tokens)
        )
        outcome = await stream_to_log(
            engine, request, writer, 0.02, thinking=thinking, reasoning_parser="think-tags"
        )
        entries = await client.xrange(log_key("streaming-test"))
        await client.aclose()
        return outcome, entries

    return asyncio.run(scenario())


def _fake(**options) -> FakeRateEngine:  # type: ignore[no-untyped-def]
    return FakeRateEngine(
        ModelSpec("fake", "fake-rate", "-", "q", 4096, options={"rate": 2000, **options})
    )


def test_a_looping_stream_is_stopped_with_finish_reason_loop(redis_client) -> None:  # type: ignore[no-untyped-def]
    engine = _fake(pattern="Let me double-check that again carefully.")
    outcome, entries = _run(engine, max_tokens=5000)
    assert outcome.finish_reason == "loop"
    assert outcome.output_tokens < 400  # stopped early, not at max_tokens
    assert engine.info().active_requests == 0


def test_varied_output_is_not_mistaken_for_a_loop(redis_client) -> None:  # type: ignore[no-untyped-def]
    outcome, entries = _run(_fake(), max_tokens=600)
    assert outcome.finish_reason == "length" and outcome.output_tokens == 600
    assert len(entries) < 600  # coalesced


@pytest.mark.parametrize("thinking, kinds", [(True, {"reasoning"}), (False, {"content"})])
def test_frames_carry_the_kind(redis_client, thinking, kinds) -> None:  # type: ignore[no-untyped-def]
    _, entries = _run(_fake(), max_tokens=50, thinking=thinking)
    assert {fields["kind"] for _, fields in entries} == kinds
