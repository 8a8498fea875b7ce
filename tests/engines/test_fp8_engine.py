"""The torch engine on an FP8 checkpoint: the tiny synthesised Qwen 3.5 MoE + vision,
quantised by our quantiser, checked against the same model in bf16.

On CPU the FP8 weights stay FP8 in memory and are dequantised per 128×128 block when
used (``Fp8Linear`` / ``Fp8Experts``); on a GPU the same modules run our Triton kernels
(``bench/gpu_check.sh`` runs this comparison there).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import torch

from engines.base import ChatMessage, GenerationRequest, SamplingParams
from engines.catalogue import load_catalogue
from engines.checkpoints import load_causal_lm
from engines.fp8.modules import Fp8Experts, Fp8Linear
from engines.qwen35.synth import ensure_synthesised
from engines.torch_engine import TorchEngine

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".data" / "models"
TINY_MOE_VL = MODELS / "qwen3.5-tiny-moe-vl"  # shared with `make run`
TINY_MOE_VL_FP8 = MODELS / "qwen3.5-tiny-moe-vl-fp8"
DEVICE = os.environ.get("FP8_TEST_DEVICE", "cpu")  # gpu_check.sh sets cuda
PROMPTS = [
    "Hello",
    "Tell me about the sea",
    "数一数：一，二，",
    "def fib(n):",
    "The capital of France is",
    "Once upon a time",
    "Explain FP8 quantisation in one paragraph.",
    "1, 2, 3, 4,",
]


@pytest.fixture(scope="module")
def models():  # type: ignore[no-untyped-def]
    bf16_path = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    fp8_path = ensure_synthesised(TINY_MOE_VL_FP8, moe=True, vision=True, fp8=True)
    cache = MODELS
    reference, tokenizer = load_causal_lm(bf16_path, cache, "bfloat16", DEVICE)
    fp8, _ = load_causal_lm(fp8_path, cache, "bfloat16", DEVICE)
    return reference, fp8, tokenizer


def _ids(tokenizer, prompt: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return tokenizer(prompt, return_tensors="pt").input_ids.to(DEVICE)


def _captured(model, ids: torch.Tensor, inputs: bool = False) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    """Each decoder layer's output (or, with ``inputs``, each MoE block's input), by hooks."""
    captured: list[torch.Tensor] = []
    hooks = []
    for layer in model.model.language_model.layers:
        if inputs:
            hooks.append(
                layer.mlp.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
            )
        else:
            hooks.append(
                layer.register_forward_hook(
                    lambda _m, _i, out: captured.append(
                        (out[0] if isinstance(out, tuple) else out).float().cpu()
                    )
                )
            )
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float().cpu().flatten(), b.float().cpu().flatten()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_the_fp8_checkpoint_keeps_fp8_in_memory(models) -> None:  # type: ignore[no-untyped-def]
    reference, fp8, _ = models
    experts = [m for m in fp8.modules() if isinstance(m, Fp8Experts)]
    linears = [m for m in fp8.modules() if isinstance(m, Fp8Linear)]
    assert len(experts) == 4 and len(linears) == 25
    fp8_bytes = sum(p.numel() * p.element_size() for m in experts for p in m.parameters())
    bf16_bytes = sum(
        p.numel() * 2
        for m in reference.modules()
        if type(m).__name__.endswith("Experts")
        for p in m.parameters()
    )
    ratio = fp8_bytes / bf16_bytes
    print(f"expert weight bytes: FP8 {fp8_bytes} / bf16 {bf16_bytes} = {ratio:.3f}")
    assert ratio <= 0.52
    assert all(m.gate_proj.dtype == torch.float8_e4m3fn for m in experts)


def test_every_layer_output_matches_bf16(models) -> None:  # type: ignore[no-untyped-def]
    reference, fp8, tokenizer = models
    worst = 1.0
    for prompt in PROMPTS:
        ids = _ids(tokenizer, prompt)
        outputs = zip(_captured(reference, ids), _captured(fp8, ids), strict=True)
        worst = min(worst, *(_cosine(a, b) for a, b in outputs))
    print(f"worst decoder-layer output cosine over {len(PROMPTS)} prompts: {worst:.5f}")
    assert worst >= 0.99


def test_every_moe_block_matches_bf16_on_the_same_input(models) -> None:  # type: ignore[no-untyped-def]
    """Each MoE block (routed FP8 experts + FP8 shared expert) against its bf16 self.

    Both get the bf16 model's input to that block, so both route alike (the router stays
    bf16): what differs is FP8 alone. Fed each model's own input instead, a token whose
    top-2 experts are near-tied can switch expert; bf16 against float32 does the same.
    """
    reference, fp8, tokenizer = models
    worst = 1.0
    for prompt in PROMPTS:
        block_inputs = _captured(reference, _ids(tokenizer, prompt), inputs=True)
        pairs = zip(reference.model.language_model.layers, fp8.model.language_model.layers)
        with torch.no_grad():
            for (want_layer, got_layer), x in zip(pairs, block_inputs, strict=True):
                worst = min(worst, _cosine(want_layer.mlp(x), got_layer.mlp(x)))
    print(f"worst MoE block cosine over {len(PROMPTS)} prompts: {worst:.5f}")
    assert worst >= 0.99


def test_greedy_tokens_agree_with_bf16(models) -> None:  # type: ignore[no-untyped-def]
    """8 prompts × 64 greedy tokens from the bf16 model; the FP8 model, given the same
    prefix, picks the same next token at ≥ 90% of positions.

    Positions are compared on the bf16 model's sequence (teacher-forced): with random
    weights the top two logits are often within FP8 rounding of each other, and a free-
    running comparison would count every token after the first such tie as a miss.
    """
    reference, fp8, tokenizer = models
    agree = free_agree = total = 0
    for prompt in PROMPTS:
        ids = _ids(tokenizer, prompt)
        with torch.no_grad():
            want = reference.generate(
                ids, max_new_tokens=64, min_new_tokens=64, do_sample=False, top_p=None, top_k=None
            )
            got = fp8(input_ids=want).logits[0, ids.shape[1] - 1 : -1].argmax(-1)
            free = fp8.generate(
                ids, max_new_tokens=64, min_new_tokens=64, do_sample=False, top_p=None, top_k=None
            )
        continuation = want[0, ids.shape[1] :]
        agree += int((got == continuation).sum())
        free_agree += int((free[0, ids.shape[1] :] == continuation).sum())
        total += continuation.numel()
    print(f"greedy agreement: {agree}/{total} teacher-forced, {free_agree}/{total} free-running")
    assert total == 8 * 64
    assert agree / total >= 0.9


def _image(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (200, 20, 20)).save(path)
    return path


def test_a_catalogue_entry_serves_the_fp8_checkpoint(tmp_path: Path) -> None:
    spec = load_catalogue(
        [
            {
                "name": "tiny-fp8",
                "backend": "torch",
                "path": str(TINY_MOE_VL_FP8),
                "context_length": 4096,
                "options": {
                    "max_batch": 4,
                    "dtype": "bfloat16",
                    "device": DEVICE,
                    "synthesise": {"moe": True, "vision": True, "fp8": True},
                },
            }
        ]
    )["tiny-fp8"]
    engine = TorchEngine(spec)
    try:
        assert json.loads((TINY_MOE_VL_FP8 / "config.json").read_text())["quantization_config"]

        async def run(request_id: str, content):  # type: ignore[no-untyped-def]
            request = GenerationRequest(
                request_id,
                [ChatMessage("user", content)],
                SamplingParams(temperature=0.0, max_tokens=12),
                chat_options={"enable_thinking": False},
            )
            return [d async for d in engine.stream(request)]

        async def both():  # type: ignore[no-untyped-def]
            return await asyncio.gather(
                run("text", "Hello there"),
                run(
                    "image",
                    [
                        {"type": "image", "path": str(_image(tmp_path))},
                        {"type": "text", "text": "What colour is this?"},
                    ],
                ),
            )

        for deltas in asyncio.run(both()):
            assert "".join(d.text for d in deltas)
            assert deltas[-1].finish_reason == "length"
            assert deltas[-1].output_tokens == 12
        assert engine.info().extra["vision"] is True
    finally:
        engine.close()
