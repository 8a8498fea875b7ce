"""The torch engine on synthesised Qwen 3.5 checkpoints (real architecture and tokenizer)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engines.base import ChatMessage, GenerationRequest, SamplingParams
from engines.catalogue import load_catalogue
from engines.qwen35.synth import ensure_synthesised, synthesise
from engines.torch_engine import TorchEngine

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY_MOE_VL = ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl"  # shared with `make run`


def _engine(path: Path) -> TorchEngine:
    spec = load_catalogue(
        [
            {
                "name": "q",
                "backend": "torch",
                "path": str(path),
                "context_length": 4096,
                "options": {"max_batch": 8},
            }
        ]
    )["q"]
    return TorchEngine(spec)


@pytest.fixture(scope="module")
def moe_engine():  # type: ignore[no-untyped-def]
    engine = _engine(ensure_synthesised(TINY_MOE_VL, moe=True, vision=True))
    yield engine
    engine.close()


async def _run(engine: TorchEngine, rid: str, prompt: str, n: int = 10, **chat):  # type: ignore[no-untyped-def]
    request = GenerationRequest(
        rid,
        [ChatMessage("user", prompt)],
        SamplingParams(temperature=0.0, max_tokens=n),
        chat_options=chat,
    )
    deltas = [d async for d in engine.stream(request)]
    return "".join(d.text for d in deltas), deltas[-1]


def test_the_checkpoint_is_laid_out_like_the_real_ones() -> None:
    path = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "qwen3_5_moe"
    assert config["architectures"] == ["Qwen3_5MoeForConditionalGeneration"]
    text = config["text_config"]
    assert text["layer_types"] == ["linear_attention"] * 3 + ["full_attention"]
    assert text["num_experts"] == 8 and text["shared_expert_intermediate_size"] > 0
    assert config["vision_config"]["depth"] == 2
    for name in (
        "tokenizer.json",
        "chat_template.jinja",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "generation_config.json",
        "model.safetensors",
    ):
        assert (path / name).exists(), name
    assert json.loads((path / "video_preprocessor_config.json").read_text())["fps"] == 2


def test_the_moe_vision_model_generates_and_batches_exactly(moe_engine) -> None:  # type: ignore[no-untyped-def]
    prompts = ["Hello", "Tell me about the sea " * 5, "数一数：一，二，"]

    async def alone():  # type: ignore[no-untyped-def]
        return [await _run(moe_engine, f"a{i}", p) for i, p in enumerate(prompts)]

    async def together():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*[_run(moe_engine, f"b{i}", p) for i, p in enumerate(prompts)])

    solo = asyncio.run(alone())
    batched = asyncio.run(together())
    assert [t for t, _ in batched] == [t for t, _ in solo]
    assert all(last.finish_reason == "length" and last.output_tokens == 10 for _, last in solo)
    assert all(text for text, _ in solo)


def test_thinking_on_and_off_change_the_prompt(moe_engine) -> None:  # type: ignore[no-untyped-def]
    on = moe_engine.scheduler._encode(GenerationRequest("x", [ChatMessage("user", "Hi")]))
    off = moe_engine.scheduler._encode(
        GenerationRequest("y", [ChatMessage("user", "Hi")], chat_options={"enable_thinking": False})
    )
    think, end = 248_068, 248_069
    assert on[-2:] == [think, 198]  # "<think>\n"
    assert off[-4:] == [think, 271, end, 271]  # "<think>\n\n</think>\n\n"


def test_a_dense_text_only_checkpoint_loads_too(tmp_path: Path) -> None:
    path = synthesise(tmp_path / "dense", moe=False, vision=False)
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen3_5_text"
    engine = _engine(path)
    try:
        text, last = asyncio.run(_run(engine, "d", "Hello", n=5))
        assert last.output_tokens == 5 and text
    finally:
        engine.close()
