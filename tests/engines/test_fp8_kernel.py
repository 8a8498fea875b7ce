"""Our fused FP8 MoE kernels against a plain torch reference.

On a CUDA machine the kernels are compiled by Triton and run on the GPU; without one they
run in Triton's CPU interpreter (``TRITON_INTERPRET=1``, set before the kernels are
defined), the same kernel code, element by element. The reference dequantises the FP8
weights per block and simulates the dynamic activation quantisation (per token, per
group of 128), so the kernel must agree to float32 rounding, and each case scales its
weight blocks by factors from 1e-3 to 1e3 so that a block scale read from the wrong
place shows as a large error.

``bench/gpu_check.sh`` runs this file as a script on a GPU machine with no pytest:
``python3 tests/engines/test_fp8_kernel.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engines.fp8 import kernels  # noqa: E402
from engines.fp8.format import BLOCK, dequantise_blocks, quantise_blocks  # noqa: E402
from engines.fp8.modules import Fp8Experts  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
assert DEVICE.type == "cuda" or kernels.INTERPRETED, (
    "engines.fp8.kernels was imported before TRITON_INTERPRET=1 was set: on CPU its "
    "kernels would be compiled for a GPU"
)

# (tokens, hidden, intermediate, experts, top_k, routing): the shapes a user's model and
# batch produce, kept small enough for the interpreter.
CASES = [
    ("decode, one token, top-1", 1, 256, 128, 8, 1, "uniform"),
    ("non-multiple-of-128 shapes", 5, 200, 160, 6, 3, "uniform"),
    ("top-10 of 16 experts", 7, 384, 256, 16, 10, "uniform"),
    ("ragged: most tokens on one expert, most experts empty", 40, 256, 128, 32, 2, "skewed"),
    ("tiny model shapes (hidden 64, intermediate 32)", 9, 64, 32, 8, 2, "uniform"),
    ("more tokens than a tile on one expert", 70, 128, 128, 4, 1, "skewed"),
    ("prefill: 32-row tiles", 100, 128, 128, 4, 1, "uniform"),
    ("prefill: 64-row tiles, 8 warps", 300, 128, 128, 4, 1, "uniform"),
]


def _weights(rows: int, cols: int, generator: torch.Generator, spread: bool = True) -> torch.Tensor:
    """Random weights whose 128×128 blocks differ in magnitude by up to 10^±3."""
    w = torch.randn(rows, cols, generator=generator) * 0.05
    if not spread:
        return w
    blocks = (-(-rows // BLOCK), -(-cols // BLOCK))
    factors = 10 ** (torch.rand(blocks, generator=generator) * 6 - 3)
    return w * factors.repeat_interleave(BLOCK, 0)[:rows].repeat_interleave(BLOCK, 1)[:, :cols]


def _quantised_experts(
    experts: int, rows: int, cols: int, generator: torch.Generator, spread: bool = True
):  # type: ignore[no-untyped-def]
    pairs = [quantise_blocks(_weights(rows, cols, generator, spread)) for _ in range(experts)]
    return torch.stack([q for q, _ in pairs]), torch.stack([s for _, s in pairs])


def _routing(tokens: int, experts: int, top_k: int, kind: str, generator: torch.Generator):  # type: ignore[no-untyped-def]
    logits = torch.randn(tokens, experts, generator=generator)
    if kind == "skewed":
        logits[:, 0] += 8.0  # nearly every token picks expert 0 first
        logits[:, experts // 2 :] -= 20.0  # the upper half of the experts get nothing
    weights, ids = logits.softmax(-1).topk(top_k, dim=-1)
    return weights / weights.sum(-1, keepdim=True), ids


def quantise_rows_reference(x: torch.Tensor) -> torch.Tensor:
    """Per token, per group of 128: e4m3 with scale amax/448, returned dequantised."""
    rows, cols = x.shape
    groups = -(-cols // BLOCK)
    padded = torch.nn.functional.pad(x.float(), (0, groups * BLOCK - cols)).view(
        rows, groups, BLOCK
    )
    scale = padded.abs().amax(-1).clamp(min=1e-10) / 448.0
    q = (padded / scale[..., None]).clamp(-448, 448).to(torch.float8_e4m3fn)
    return (q.float() * scale[..., None]).view(rows, groups * BLOCK)[:, :cols]


def moe_reference(x, w_gate, s_gate, w_up, s_up, w_down, s_down, topk_weights, topk_ids):  # type: ignore[no-untyped-def]
    xq = quantise_rows_reference(x)
    out = torch.zeros(x.shape[0], w_down.shape[1])
    for token in range(x.shape[0]):
        for slot in range(topk_ids.shape[1]):
            e = int(topk_ids[token, slot])
            gate = xq[token] @ dequantise_blocks(w_gate[e], s_gate[e], torch.float32).T
            up = xq[token] @ dequantise_blocks(w_up[e], s_up[e], torch.float32).T
            h = quantise_rows_reference((torch.nn.functional.silu(gate) * up)[None])[0]
            down = h @ dequantise_blocks(w_down[e], s_down[e], torch.float32).T
            out[token] += float(topk_weights[token, slot]) * down
    return out


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float().cpu() - want).norm() / want.norm().clamp(min=1e-30))


def _case_tensors(tokens, hidden, inter, experts, top_k, kind, seed=0, spread=True):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    w_gate, s_gate = _quantised_experts(experts, inter, hidden, g, spread)
    w_up, s_up = _quantised_experts(experts, inter, hidden, g, spread)
    w_down, s_down = _quantised_experts(experts, hidden, inter, g, spread)
    x = torch.randn(tokens, hidden, generator=g)
    topk_weights, topk_ids = _routing(tokens, experts, top_k, kind, g)
    return x, w_gate, s_gate, w_up, s_up, w_down, s_down, topk_weights, topk_ids


def check_fused_moe(case: tuple) -> None:  # type: ignore[type-arg]
    _, tokens, hidden, inter, experts, top_k, kind = case
    tensors = _case_tensors(tokens, hidden, inter, experts, top_k, kind)
    want = moe_reference(*tensors)
    on_device = [t.to(DEVICE) for t in tensors]
    got = kernels.fused_moe_fp8(*on_device)
    assert got.shape == (tokens, hidden) and got.dtype == tensors[0].dtype
    error = _relative_error(got, want)
    assert error < 2e-3, f"{case[0]}: relative error {error:.2e}"


def check_bf16_activations(case: tuple) -> None:  # type: ignore[type-arg]
    """A bf16 model's activations go in as bf16 and come out bf16, still matching."""
    _, tokens, hidden, inter, experts, top_k, kind = case
    tensors = list(_case_tensors(tokens, hidden, inter, experts, top_k, kind, seed=1))
    tensors[0] = tensors[0].to(torch.bfloat16)
    want = moe_reference(*tensors)
    got = kernels.fused_moe_fp8(*[t.to(DEVICE) for t in tensors])
    assert got.dtype == torch.bfloat16
    assert _relative_error(got, want) < 1e-2


def check_align_routing() -> None:
    g = torch.Generator().manual_seed(3)
    experts, block_m = 12, 16
    _, ids = _routing(37, experts, 4, "skewed", g)
    routing = kernels.align_routing(ids.to(DEVICE), experts, block_m)
    sorted_ids = routing.sorted_ids.cpu()
    total = int(routing.total.cpu()[0])
    pairs = ids.numel()
    flat = ids.reshape(-1)
    real = sorted_ids[:total]
    # Every (token, k) pair appears exactly once; the rest is the sentinel.
    assert sorted(real[real < pairs].tolist()) == list(range(pairs))
    assert bool((sorted_ids[total:] == pairs).all())
    # Each block belongs to one expert, and holds only that expert's pairs.
    counts = torch.bincount(flat, minlength=experts)
    for block in range(total // block_m):
        expert = int(routing.expert_ids[block])
        members = real[block * block_m : (block + 1) * block_m]
        members = members[members < pairs]
        assert len(members) and bool((flat[members.long()] == expert).all())
    # Padding per expert is less than a block; experts with no tokens take no block.
    used = routing.expert_ids.cpu()[: total // block_m]
    assert set(used.tolist()) == set(torch.nonzero(counts).flatten().tolist())
    assert total == int(((counts + block_m - 1) // block_m * block_m).sum())


def check_quantise_rows() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 300, generator=g) * torch.logspace(-4, 2, 6)[:, None]
    x[2, 128:256] = 0.0  # an all-zero group
    q, s = kernels.quantise_rows(x.to(DEVICE))
    assert q.dtype == torch.float8_e4m3fn and s.shape == (6, 3)
    got = (q.float() * s.repeat_interleave(BLOCK, 1)[:, :300]).cpu()
    assert torch.equal(got, quantise_rows_reference(x))  # bit for bit: same rounding


def check_fp8_linear() -> None:
    g = torch.Generator().manual_seed(5)
    w, s = quantise_blocks(_weights(300, 200, g))
    for tokens in (1, 3, 17, 65):
        x = torch.randn(2, tokens, 200, generator=g)
        want = (
            quantise_rows_reference(x.reshape(-1, 200)) @ dequantise_blocks(w, s, torch.float32).T
        )
        got = kernels.fp8_linear(x.to(DEVICE), w.to(DEVICE), s.to(DEVICE))
        assert got.shape == (2, tokens, 300)
        assert _relative_error(got.reshape(-1, 300), want) < 2e-3


def check_module_paths_agree() -> None:
    """The engine's two paths (kernel; dequantise-on-use loop) give the same layer output."""
    # Weights of one magnitude, as a trained layer's are: activation quantisation then
    # costs little, and the two paths must agree closely.
    tensors = _case_tensors(11, 192, 96, 8, 2, "uniform", seed=6, spread=False)
    x, w_gate, s_gate, w_up, s_up, w_down, s_down, topk_weights, topk_ids = tensors
    module = Fp8Experts(8, 192, 96, "cpu", torch.nn.SiLU())
    for name, value in (
        ("gate_proj", w_gate),
        ("gate_proj_scale_inv", s_gate),
        ("up_proj", w_up),
        ("up_proj_scale_inv", s_up),
        ("down_proj", w_down),
        ("down_proj_scale_inv", s_down),
    ):
        getattr(module, name).data.copy_(value)
    loop = module._dequantised_loop(x, topk_ids, topk_weights)
    fused = kernels.fused_moe_fp8(*[t.to(DEVICE) for t in tensors]).cpu()
    # The kernel also quantises activations (two e4m3 steps, ~2% each); the loop does not.
    cosine = torch.nn.functional.cosine_similarity(fused.flatten(), loop.flatten(), dim=0)
    assert float(cosine) > 0.995, float(cosine)


def check_no_tokens() -> None:
    tensors = list(_case_tensors(1, 128, 128, 4, 2, "uniform"))
    tensors[0] = tensors[0][:0]
    tensors[7] = tensors[7][:0]
    tensors[8] = tensors[8][:0]
    got = kernels.fused_moe_fp8(*[t.to(DEVICE) for t in tensors])
    assert got.shape == (0, 128)


# --- pytest (absent on a bare GPU machine: then this file runs as a script) -------------
try:
    import pytest

    each_case = pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
except ImportError:  # pragma: no cover

    def each_case(function):  # type: ignore[no-untyped-def]
        return function


@each_case
def test_fused_moe_matches_the_reference(case: tuple) -> None:  # type: ignore[type-arg]
    check_fused_moe(case)


def test_bf16_activations() -> None:
    check_bf16_activations(CASES[1])


def test_align_routing_sorts_and_pads_by_expert() -> None:
    check_align_routing()


def test_activation_quantisation_is_bit_exact() -> None:
    check_quantise_rows()


def test_dense_fp8_linear() -> None:
    check_fp8_linear()


def test_kernel_and_dequantised_loop_agree() -> None:
    check_module_paths_agree()


def test_no_tokens() -> None:
    check_no_tokens()


if __name__ == "__main__":  # bench/gpu_check.sh: no pytest needed
    checks = [
        *[(f"fused MoE: {case[0]}", lambda case=case: check_fused_moe(case)) for case in CASES],
        ("bf16 activations", lambda: check_bf16_activations(CASES[1])),
        ("routing sort", check_align_routing),
        ("activation quantisation", check_quantise_rows),
        ("dense FP8 linear", check_fp8_linear),
        ("kernel vs dequantised loop", check_module_paths_agree),
        ("no tokens", check_no_tokens),
    ]
    failed = 0
    for name, check in checks:
        try:
            check()
            print(f"PASS {name} [{DEVICE}]")
        except Exception as exc:  # report every check, then fail
            failed += 1
            print(f"FAIL {name} [{DEVICE}]: {type(exc).__name__}: {exc}")
    print(f"{len(checks) - failed}/{len(checks)} kernel checks passed on {DEVICE}")
    sys.exit(1 if failed else 0)
