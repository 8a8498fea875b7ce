"""How close an FP8 checkpoint runs to its source: ``python -m engines fp8-compare SRC FP8``.

Both models are loaded by the torch engine's loader on one device (FP8 on our kernels on
a GPU, dequantised per block on CPU) and measured on the same prompts:

- every decoder layer's output (cosine against the source model's);
- every MoE block on the same input (so both route alike: the router stays high
  precision, and a token whose top experts are near-tied would otherwise switch);
- greedy next-token agreement over the source model's own continuation (teacher-forced:
  after the first near-tie a free-running comparison counts every later token as a miss;
  the free-running figure is printed too);
- routed-expert weight bytes against bf16.

The tests hold the tiny synthesised MoE to the targets below; ``bench/gpu_check.sh``
runs the same comparison on a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engines.fp8.modules import Fp8Experts

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
TARGETS = {
    "worst_layer_cosine": 0.99,
    "worst_moe_cosine": 0.99,
    "greedy_agreement": 0.90,
}
EXPERT_BYTES_TARGET = 0.52


@dataclass
class Report:
    worst_layer_cosine: float
    worst_moe_cosine: float | None  # None for dense models
    greedy_agreement: float  # teacher-forced
    free_running_agreement: float
    positions: int
    expert_bytes_ratio: float | None  # None for dense models

    def misses(self) -> list[str]:
        found = [
            f"{name} {getattr(self, name):.4f} < {target}"
            for name, target in TARGETS.items()
            if getattr(self, name) is not None and getattr(self, name) < target
        ]
        if self.expert_bytes_ratio is not None and self.expert_bytes_ratio > EXPERT_BYTES_TARGET:
            found.append(
                f"expert_bytes_ratio {self.expert_bytes_ratio:.3f} > {EXPERT_BYTES_TARGET}"
            )
        return found


def _layers(model: Any) -> Any:
    inner = model.model
    return getattr(inner, "language_model", inner).layers


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float().flatten(), b.float().flatten()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def _capture(model: Any, ids: torch.Tensor, block_inputs: bool) -> list[torch.Tensor]:
    captured: list[torch.Tensor] = []
    hooks = []
    for layer in _layers(model):
        if block_inputs:
            hook = layer.mlp.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        else:
            hook = layer.register_forward_hook(
                lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out)
            )
        hooks.append(hook)
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def _is_moe(model: Any) -> bool:
    return any(type(m).__name__.endswith("Experts") for m in model.modules())


def expert_bytes_ratio(reference: Any, fp8: Any) -> float:
    fp8_bytes = sum(
        p.numel() * p.element_size()
        for m in fp8.modules()
        if isinstance(m, Fp8Experts)
        for p in m.parameters()
    )
    bf16_bytes = sum(
        p.numel() * 2
        for m in reference.modules()
        if type(m).__name__.endswith("Experts") and not isinstance(m, Fp8Experts)
        for p in m.parameters()
    )
    return fp8_bytes / bf16_bytes


def compare_models(
    reference: Any, fp8: Any, tokenizer: Any, prompts: list[str] = PROMPTS, tokens: int = 64
) -> Report:
    device = next(fp8.parameters()).device
    moe = _is_moe(reference)
    worst_layer = worst_moe = 1.0
    agree = free_agree = positions = 0
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
        pairs = zip(_capture(reference, ids, False), _capture(fp8, ids, False), strict=True)
        worst_layer = min(worst_layer, *(_cosine(a, b) for a, b in pairs))
        if moe:
            inputs = _capture(reference, ids, True)
            with torch.no_grad():
                for want, got, x in zip(_layers(reference), _layers(fp8), inputs, strict=True):
                    worst_moe = min(worst_moe, _cosine(want.mlp(x), got.mlp(x)))
        greedy = {"do_sample": False, "top_p": None, "top_k": None}
        with torch.no_grad():
            want = reference.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **greedy)
            picked = fp8(input_ids=want).logits[0, ids.shape[1] - 1 : -1].argmax(-1)
            free = fp8.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **greedy)
        continuation = want[0, ids.shape[1] :]
        agree += int((picked == continuation).sum())
        free_agree += int((free[0, ids.shape[1] :] == continuation).sum())
        positions += continuation.numel()
    return Report(
        worst_layer_cosine=worst_layer,
        worst_moe_cosine=worst_moe if moe else None,
        greedy_agreement=agree / positions,
        free_running_agreement=free_agree / positions,
        positions=positions,
        expert_bytes_ratio=expert_bytes_ratio(reference, fp8) if moe else None,
    )


def compare_checkpoints(
    source: Path, quantised: Path, device: str = "cpu", tokens: int = 64, prompts: int = 8
) -> Report:
    from engines.checkpoints import DEFAULT_CACHE_DIR, load_causal_lm

    reference, tokenizer = load_causal_lm(source, DEFAULT_CACHE_DIR, "bfloat16", device)
    fp8, _ = load_causal_lm(quantised, DEFAULT_CACHE_DIR, "bfloat16", device)
    return compare_models(reference, fp8, tokenizer, PROMPTS[:prompts], tokens=tokens)


def format_report(report: Report) -> str:
    lines = [
        f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}"
        for key, value in asdict(report).items()
    ]
    return "\n".join(lines)
