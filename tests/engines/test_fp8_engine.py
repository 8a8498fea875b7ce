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
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engines.base import ChatMessage, GenerationRequest, SamplingParams
from engines.catalogue import load_catalogue
from engines.checkpoints import load_causal_lm
from engines.fp8.compare import PROMPTS, Report, compare_models, expert_bytes_ratio, format_report
from engines.fp8.modules import Fp8Experts, Fp8Linear
from engines.qwen35.synth import ensure_synthesised
from engines.torch_engine import TorchEngine
from tests.engines.test_qwen35_engine import _image_file

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".data" / "models"
TINY_MOE_VL = MODELS / "qwen3.5-tiny-moe-vl"  # shared with `make run`
TINY_MOE_VL_FP8 = MODELS / "qwen3.5-tiny-moe-vl-fp8"
DEVICE = os.environ.get("FP8_TEST_DEVICE", "cpu")  # gpu_check.sh sets cuda


@pytest.fixture(scope="module")
def models():  # type: ignore[no-untyped-def]
    bf16_path = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    fp8_path = ensure_synthesised(TINY_MOE_VL_FP8, moe=True, vision=True, fp8=True)
    cache = MODELS
    reference, tokenizer = load_causal_lm(bf16_path, cache, "bfloat16", DEVICE)
    fp8, _ = load_causal_lm(fp8_path, cache, "bfloat16", DEVICE)
    return reference, fp8, tokenizer


def test_the_fp8_checkpoint_keeps_fp8_in_memory(models) -> None:  # type: ignore[no-untyped-def]
    reference, fp8, _ = models
    experts = [m for m in fp8.modules() if isinstance(m, Fp8Experts)]
    linears = [m for m in fp8.modules() if isinstance(m, Fp8Linear)]
    # 4 MoE blocks; 4 × 3 shared-expert + 3 × 3 DeltaNet + 1 × 4 attention projections.
    assert len(experts) == 4 and len(linears) == 25
    assert all(m.gate_proj.dtype == torch.float8_e4m3fn for m in experts)
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in linears)
    ratio = expert_bytes_ratio(reference, fp8)
    print(f"routed-expert weight bytes, FP8 / bf16: {ratio:.3f}")
    assert ratio <= 0.52


@pytest.fixture(scope="module")
def report(models) -> Report:  # type: ignore[no-untyped-def]
    reference, fp8, tokenizer = models
    measured = compare_models(reference, fp8, tokenizer, PROMPTS, tokens=64)
    print(format_report(measured))
    return measured


def test_every_decoder_layer_output_matches_bf16(report: Report) -> None:
    assert report.worst_layer_cosine >= 0.99


def test_every_moe_block_matches_bf16_on_the_same_input(report: Report) -> None:
    assert report.worst_moe_cosine is not None and report.worst_moe_cosine >= 0.99


# On CPU the engine runs FP8 weight-only (each block dequantised when used); on a GPU it
# runs our W8A8 kernels, whose activation quantisation flips more of this random model's
# near-ties (see test_the_gpu_path_on_cpu_matches_bf16): the same bar as that test there.
W8A8 = DEVICE == "cuda"
GREEDY_TARGET = 0.8 if W8A8 else 0.9


def test_greedy_tokens_agree_with_bf16(report: Report) -> None:
    """8 prompts × 64 greedy tokens: the FP8 model, given the bf16 model's prefix, picks
    the same next token at ≥ 90% of positions (why teacher-forced: engines.fp8.compare)."""
    assert report.positions == 8 * 64
    assert report.greedy_agreement >= GREEDY_TARGET


def test_the_gpu_path_on_cpu_matches_bf16(models) -> None:  # type: ignore[no-untyped-def]
    """The W8A8 path (our Triton kernels, activations quantised per token and per group of
    128) run on CPU in Triton's interpreter: 3 prompts × 32 tokens (the interpreter is slow).

    Layer and MoE-block cosines meet the 0.99 targets. Greedy agreement measured 0.854 on
    these 96 positions, where bf16 itself agrees with float32 at only 0.906: this random
    model's top two logits are a median 0.02 apart, and activation quantisation in the
    dense projections flips more of those ties than weight quantisation does (0.948 with
    W8A8 experts and weight-only projections). Trained checkpoints' margins are far wider.
    """
    env = {
        **os.environ,
        "ENGINES_FP8_KERNELS": "interpret",
        "TRITON_INTERPRET": "1",
        "PYTHONWARNINGS": "ignore",
    }
    result = subprocess.run(
        [sys.executable, "-m", "engines", "fp8-compare", str(TINY_MOE_VL), str(TINY_MOE_VL_FP8)]
        + ["--tokens", "32", "--prompts", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = dict(re.findall(r"^(\w+): ([\d.]+)$", result.stdout, re.MULTILINE))
    print(result.stdout)
    assert float(figures["positions"]) == 96
    assert float(figures["worst_layer_cosine"]) >= 0.99
    assert float(figures["worst_moe_cosine"]) >= 0.99
    assert float(figures["greedy_agreement"]) >= 0.8


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
                        {"type": "image", "path": str(_image_file(tmp_path))},
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


def test_a_dense_text_only_checkpoint_quantises_and_runs(tmp_path: Path) -> None:
    """The dense models (Qwen3.5-27B down to 0.8B) take the same path without experts."""
    from engines.fp8.quantize import quantise_checkpoint
    from engines.qwen35.synth import synthesise

    source = synthesise(tmp_path / "dense", moe=False, vision=False)
    quantise_checkpoint(source, tmp_path / "dense-fp8")
    reference, tokenizer = load_causal_lm(source, MODELS, "bfloat16", DEVICE)
    fp8, _ = load_causal_lm(tmp_path / "dense-fp8", MODELS, "bfloat16", DEVICE)
    linears = [name for name, m in fp8.named_modules() if isinstance(m, Fp8Linear)]
    # 4 layers: dense MLP gate/up/down everywhere, 3 DeltaNet + 1 attention layer.
    assert len(linears) == 4 * 3 + 3 * 3 + 4
    assert not any(isinstance(m, Fp8Experts) for m in fp8.modules())
    measured = compare_models(reference, fp8, tokenizer, PROMPTS[:4], tokens=16)
    print(format_report(measured))
    assert measured.worst_moe_cosine is None and measured.expert_bytes_ratio is None
    assert measured.worst_layer_cosine >= 0.99
    assert measured.greedy_agreement >= 0.9
