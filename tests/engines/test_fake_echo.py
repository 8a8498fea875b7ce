"""FakeEchoEngine mode (``echo`` option): it repeats the last user message, spacing and all."""

from __future__ import annotations

import asyncio

from engines.base import ChatMessage, Delta, GenerationRequest, SamplingParams
from engines.catalogue import ModelSpec
from engines.fake import FakeRateEngine


def _stream(messages: list[ChatMessage], max_tokens: int = 100) -> list[Delta]:
    engine = FakeRateEngine(
        ModelSpec("echo", "fake-rate", "-", "q", 4096, options={"rate": 10000, "echo": True})
    )
    request = GenerationRequest("r", messages, SamplingParams(max_tokens=max_tokens))

    async def run() -> list[Delta]:
        return [delta async for delta in engine.stream(request)]

    return asyncio.run(run())


def test_it_repeats_the_last_user_message_word_by_word() -> None:
    text = "  # Title\n\n<script>x</script> `code`\n"
    deltas = _stream(
        [ChatMessage("user", "earlier"), ChatMessage("assistant", "no"), ChatMessage("user", text)]
    )
    assert "".join(d.text for d in deltas) == text
    assert [d.text for d in deltas][:2] == ["  #", " Title"]
    assert len(deltas) == 5 and deltas[-1].finish_reason == "stop"


def test_it_reads_the_text_parts_of_a_message_with_media_and_stops_at_max_tokens() -> None:
    parts = [{"type": "image", "path": "x.png"}, {"type": "text", "text": "one two three"}]
    deltas = _stream([ChatMessage("user", parts)], max_tokens=2)
    assert "".join(d.text for d in deltas) == "one two"
    assert deltas[-1].finish_reason == "length"


def test_an_empty_message_gives_an_empty_reply() -> None:
    deltas = _stream([ChatMessage("user", [{"type": "image", "path": "x.png"}])])
    assert [(d.text, d.finish_reason) for d in deltas] == [("", "stop")]
