"""Our fused FP8 mixture-of-experts kernels (Triton), and the routing sort they read.

Design (ARCHITECTURE.md, "FP8 MoE kernel", has the why):

1. ``align_routing``: the (token, k) pairs are sorted by expert and each expert's run is
   padded to a multiple of BLOCK_M with a sentinel, so every M-block of the sorted list
   belongs to one expert. Pure torch on the device, no host sync (CUDA-graph safe): the
   sorted list has its worst-case length and blocks past the real end return at once.
2. ``quantise_rows``: activations → e4m3 per token and per group of 128 (dynamic scale
   = group amax / 448), the scheme of the checkpoints' ``activation_scheme: dynamic``.
3. ``_gate_up_kernel``: grouped GEMM over the experts' gate and up projections at once
   (two fp32 accumulators; 128×128 weight blocks, so one weight scale per K step), then
   ``silu(gate) * up`` in the epilogue, then that output quantised per token per 128
   group in the same epilogue (BLOCK_N = 128 = the group), written in FP8 for step 4.
4. ``_grouped_gemm_kernel``: the down projection, rows scaled by their routing weight;
   the k copies of a token are summed after. The same kernel with one expert and no
   routing is the dense FP8 linear layer (``fp8_linear``).

Rounding to e4m3 goes through ``_round_e4m3`` (exact round-to-nearest-even in fp32
integer arithmetic) before the cast, so the cast itself never rounds, and the scale
divisions are correctly rounded (``div_rn``; Triton's ``/`` is approximate on a GPU): the
result is the same on a GPU, in torch, and in Triton's CPU interpreter (TRITON_INTERPRET=1),
whose own float→e4m3 cast drops the carry when the mantissa rounds up. The CPU tests run
these kernels there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from engines.fp8.format import BLOCK

GROUP = BLOCK  # activation quantisation group = weight block = K step
# Kernels defined while TRITON_INTERPRET=1 run on CPU tensors, in Triton's interpreter.
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
EPS = 1e-10


@dataclass(frozen=True)
class Routing:
    sorted_ids: torch.Tensor  # [padded_len] int32: pair index (token * top_k + k) or sentinel
    expert_ids: torch.Tensor  # [padded_len // block_m] int32
    total: torch.Tensor  # [1] int32: padded length actually used
    block_m: int
    pairs: int  # tokens * top_k: the sentinel value


def align_routing(topk_ids: torch.Tensor, num_experts: int, block_m: int) -> Routing:
    """Sort (token, k) pairs by expert, each expert's run padded to a multiple of ``block_m``."""
    device = topk_ids.device
    flat = topk_ids.reshape(-1).to(torch.int64)
    pairs = flat.numel()
    counts = torch.zeros(num_experts, dtype=torch.int64, device=device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + block_m - 1) // block_m * block_m
    ends = padded.cumsum(0)
    starts = ends - padded
    order = torch.argsort(flat, stable=True)
    experts_sorted = flat[order]
    first = counts.cumsum(0) - counts
    rank = torch.arange(pairs, device=device) - first[experts_sorted]
    destination = starts[experts_sorted] + rank
    # Worst case: every expert that appears wastes block_m - 1 slots (at most `pairs` experts).
    length = min(pairs + min(num_experts, pairs) * (block_m - 1), pairs * block_m)
    length = -(-length // block_m) * block_m
    sorted_ids = torch.full((length,), pairs, dtype=torch.int32, device=device)
    sorted_ids[destination] = order.to(torch.int32)
    block_starts = torch.arange(0, length, block_m, device=device)
    expert_ids = torch.searchsorted(ends, block_starts, right=True).clamp_(max=num_experts - 1)
    return Routing(
        sorted_ids=sorted_ids,
        expert_ids=expert_ids.to(torch.int32),
        total=ends[-1:].to(torch.int32),
        block_m=block_m,
        pairs=pairs,
    )


@triton.jit
def _round_e4m3(v):
    """Round fp32 ``v`` (|v| ≤ 448) to the nearest e4m3fn value, ties to even, in fp32."""
    bits = v.to(tl.uint32, bitcast=True)
    # Normal range: keep 3 mantissa bits (23 - 3 = 20 dropped), carrying into the exponent.
    lsb = (bits >> 20) & 1
    normal = ((bits + 0x7FFFF + lsb) & 0xFFF00000).to(tl.float32, bitcast=True)
    # Subnormal range (below 2^-6): multiples of 2^-9; 1.5 * 2^23 makes the fp32 add round.
    subnormal = ((v * 512.0 + 12582912.0) - 12582912.0) * 0.001953125
    return tl.where(tl.abs(v) < 0.015625, subnormal, normal)


@triton.jit
def _quantise_rows_kernel(
    x_ptr, q_ptr, s_ptr, K, stride_xm, stride_qm, stride_sm, GROUP_K: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)  # rows × K can pass 2^31 in a long prefill
    group = tl.program_id(1)
    offs = group * GROUP_K + tl.arange(0, GROUP_K)
    mask = offs < K
    x = tl.load(x_ptr + row * stride_xm + offs, mask=mask, other=0.0).to(tl.float32)
    scale = tl.math.div_rn(tl.maximum(tl.max(tl.abs(x)), 1e-10), 448.0)
    q = _round_e4m3(tl.clamp(tl.math.div_rn(x, scale), -448.0, 448.0))
    tl.store(q_ptr + row * stride_qm + offs, q.to(q_ptr.dtype.element_ty), mask=mask)
    tl.store(s_ptr + row * stride_sm + group, scale)


def quantise_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[M, K]`` → (e4m3 ``[M, K]``, float32 scales ``[M, ceil(K/128)]``), per token per group."""
    x = x.contiguous()
    rows, k = x.shape
    groups = triton.cdiv(k, GROUP)
    q = torch.empty((rows, k), dtype=torch.float8_e4m3fn, device=x.device)
    s = torch.empty((rows, groups), dtype=torch.float32, device=x.device)
    if rows:
        _quantise_rows_kernel[(rows, groups)](
            x, q, s, k, x.stride(0), q.stride(0), s.stride(0), GROUP_K=GROUP
        )
    return q, s


@triton.jit
def _block_coordinates(pid, num_m_blocks, num_n_blocks, GROUP_M: tl.constexpr):
    """Grouped launch order: GROUP_M row blocks share each weight column block in L2."""
    per_group = GROUP_M * num_n_blocks
    group = pid // per_group
    first_m = group * GROUP_M
    size_m = tl.minimum(num_m_blocks - first_m, GROUP_M)
    pid_m = first_m + ((pid % per_group) % size_m)
    pid_n = (pid % per_group) // size_m
    return pid_m, pid_n


@triton.jit
def _tile_rows(
    pid_m,
    pid_n,
    sorted_ids_ptr,
    expert_ids_ptr,
    num_pairs,
    N,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """A tile's sorted pair indices (0 where padding), which are real, its expert, its columns."""
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    pair = tl.load(sorted_ids_ptr + offs_m)
    valid = pair < num_pairs
    pair = tl.where(valid, pair, 0).to(tl.int64)
    expert = tl.load(expert_ids_ptr + pid_m).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    return pair, valid, expert, offs_n, offs_n < N, tl.arange(0, BLOCK_K)


@triton.jit
def _activation_step(a_ptrs, a_scale_ptrs, kb, valid, k_mask):
    """One K step of the FP8 activations (rows ``valid``) and their per-row group scale."""
    a = tl.load(a_ptrs, mask=valid[:, None] & k_mask[None, :], other=0.0)
    return a, tl.load(a_scale_ptrs + kb, mask=valid, other=0.0)


@triton.jit
def _scaled_dot(a, a_s, w_ptr, w_off, s_ptr, s_off, kb, k_mask, n_mask):
    """One K step: FP8 dot in fp32, times the activation scale and the weight block scale."""
    w = tl.load(w_ptr + w_off, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
    return tl.dot(a, w) * (a_s[:, None] * tl.load(s_ptr + s_off + kb))


@triton.jit
def _gate_up_kernel(
    a_ptr,
    a_scale_ptr,
    wg_ptr,
    wu_ptr,
    sg_ptr,
    su_ptr,
    o_ptr,
    o_scale_ptr,
    sorted_ids_ptr,
    expert_ids_ptr,
    total_ptr,
    N,
    K,
    num_pairs,
    top_k,
    num_m_blocks,
    stride_am,
    stride_asm,
    stride_we,
    stride_wn,
    stride_se,
    stride_sn,
    stride_om,
    stride_osm,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid_m, pid_n = _block_coordinates(tl.program_id(0), num_m_blocks, tl.cdiv(N, BLOCK_N), GROUP_M)
    if pid_m * BLOCK_M >= tl.load(total_ptr):
        return
    pair, valid, expert, offs_n, n_mask, offs_k = _tile_rows(
        pid_m, pid_n, sorted_ids_ptr, expert_ids_ptr, num_pairs, N, BLOCK_M, BLOCK_N, BLOCK_K
    )
    token = pair // top_k  # activations are per token; outputs per (token, k) pair
    a_ptrs = a_ptr + token[:, None] * stride_am + offs_k[None, :]
    w_off = expert * stride_we + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None]
    a_scale_ptrs = a_scale_ptr + token * stride_asm
    s_off = expert * stride_se + pid_n * stride_sn  # BLOCK_N == 128: one scale row per tile

    acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb in range(0, tl.cdiv(K, BLOCK_K)):
        k_mask = offs_k < K - kb * BLOCK_K
        a, a_s = _activation_step(a_ptrs, a_scale_ptrs, kb, valid, k_mask)
        acc_gate += _scaled_dot(a, a_s, wg_ptr, w_off, sg_ptr, s_off, kb, k_mask, n_mask)
        acc_up += _scaled_dot(a, a_s, wu_ptr, w_off, su_ptr, s_off, kb, k_mask, n_mask)
        a_ptrs += BLOCK_K
        w_off += BLOCK_K

    # silu(gate) * up, then this row's 128-wide group quantised for the down projection.
    hidden = acc_gate / (1.0 + tl.exp(-acc_gate)) * acc_up
    hidden = tl.where(n_mask[None, :], hidden, 0.0)
    scale = tl.math.div_rn(tl.maximum(tl.max(tl.abs(hidden), axis=1), 1e-10), 448.0)
    q = _round_e4m3(tl.clamp(tl.math.div_rn(hidden, scale[:, None]), -448.0, 448.0))
    o_ptrs = o_ptr + pair[:, None] * stride_om + offs_n[None, :]
    tl.store(o_ptrs, q.to(o_ptr.dtype.element_ty), mask=valid[:, None] & n_mask[None, :])
    tl.store(o_scale_ptr + pair * stride_osm + pid_n, scale, mask=valid)


@triton.jit
def _grouped_gemm_kernel(
    a_ptr,
    a_scale_ptr,
    w_ptr,
    s_ptr,
    o_ptr,
    weights_ptr,
    sorted_ids_ptr,
    expert_ids_ptr,
    total_ptr,
    N,
    K,
    num_pairs,
    num_m_blocks,
    stride_am,
    stride_asm,
    stride_we,
    stride_wn,
    stride_se,
    stride_sn,
    stride_om,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    ROUTED: tl.constexpr,
):
    pid_m, pid_n = _block_coordinates(tl.program_id(0), num_m_blocks, tl.cdiv(N, BLOCK_N), GROUP_M)
    if pid_m * BLOCK_M >= tl.load(total_ptr):
        return
    row, valid, expert, offs_n, n_mask, offs_k = _tile_rows(
        pid_m, pid_n, sorted_ids_ptr, expert_ids_ptr, num_pairs, N, BLOCK_M, BLOCK_N, BLOCK_K
    )
    a_ptrs = a_ptr + row[:, None] * stride_am + offs_k[None, :]
    w_off = expert * stride_we + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None]
    a_scale_ptrs = a_scale_ptr + row * stride_asm
    s_off = expert * stride_se + pid_n * stride_sn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb in range(0, tl.cdiv(K, BLOCK_K)):
        k_mask = offs_k < K - kb * BLOCK_K
        a, a_s = _activation_step(a_ptrs, a_scale_ptrs, kb, valid, k_mask)
        acc += _scaled_dot(a, a_s, w_ptr, w_off, s_ptr, s_off, kb, k_mask, n_mask)
        a_ptrs += BLOCK_K
        w_off += BLOCK_K
    if ROUTED:
        acc = acc * tl.load(weights_ptr + row, mask=valid, other=0.0)[:, None]
    o_ptrs = o_ptr + row[:, None] * stride_om + offs_n[None, :]
    tl.store(o_ptrs, acc.to(o_ptr.dtype.element_ty), mask=valid[:, None] & n_mask[None, :])


def block_m_for(pairs: int, num_experts: int) -> int:
    """Rows per tile: 16 while experts see few tokens each (decode), larger when they fill up."""
    per_expert = pairs / max(1, num_experts)
    if per_expert <= 16:
        return 16
    if per_expert <= 64:
        return 32
    return 64


def _launch_config(block_m: int, device: torch.device) -> dict[str, int]:
    # Three stages of two 128×128 FP8 weight tiles and an activation tile need ~100-120 KB
    # of shared memory: Hopper and Blackwell have it, Ada (sm_89, ~99 KB) gets two.
    stages = 3 if device.type != "cuda" or torch.cuda.get_device_capability(device) >= (9, 0) else 2
    return {"num_warps": 4 if block_m <= 32 else 8, "num_stages": stages}


def fused_moe_fp8(
    x: torch.Tensor,
    w_gate: torch.Tensor,
    s_gate: torch.Tensor,
    w_up: torch.Tensor,
    s_up: torch.Tensor,
    w_down: torch.Tensor,
    s_down: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
) -> torch.Tensor:
    """Routed experts in FP8: ``sum_k w_k · down_e(silu(gate_e(x)) · up_e(x))``.

    x ``[M, H]``; w_gate / w_up ``[E, I, H]`` e4m3 with scales ``[E, ceil(I/128), ceil(H/128)]``;
    w_down ``[E, H, I]`` with ``[E, ceil(H/128), ceil(I/128)]``; topk ``[M, k]``.
    Returns ``[M, H]`` in x's dtype.
    """
    tokens, hidden = x.shape
    num_experts, inter, _ = w_gate.shape
    top_k = topk_ids.shape[1]
    if tokens == 0:
        return torch.zeros_like(x)
    pairs = tokens * top_k
    block_m = block_m_for(pairs, num_experts)
    routing = align_routing(topk_ids, num_experts, block_m)
    num_m_blocks = routing.sorted_ids.numel() // block_m
    launch = _launch_config(block_m, x.device)

    a, a_scale = quantise_rows(x)
    h = torch.empty((pairs, inter), dtype=torch.float8_e4m3fn, device=x.device)
    h_scale = torch.empty((pairs, triton.cdiv(inter, GROUP)), dtype=torch.float32, device=x.device)
    grid = (num_m_blocks * triton.cdiv(inter, BLOCK),)
    _gate_up_kernel[grid](
        a,
        a_scale,
        w_gate,
        w_up,
        s_gate,
        s_up,
        h,
        h_scale,
        routing.sorted_ids,
        routing.expert_ids,
        routing.total,
        inter,
        hidden,
        pairs,
        top_k,
        num_m_blocks,
        a.stride(0),
        a_scale.stride(0),
        w_gate.stride(0),
        w_gate.stride(1),
        s_gate.stride(0),
        s_gate.stride(1),
        h.stride(0),
        h_scale.stride(0),
        BLOCK_M=block_m,
        BLOCK_N=BLOCK,
        BLOCK_K=BLOCK,
        GROUP_M=8,
        **launch,
    )
    out = torch.empty((pairs, hidden), dtype=torch.float32, device=x.device)
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()
    _launch_grouped(h, h_scale, w_down, s_down, out, weights, routing, routed=True)
    return out.view(tokens, top_k, hidden).sum(dim=1).to(x.dtype)


def _launch_grouped(
    a: torch.Tensor,
    a_scale: torch.Tensor,
    w: torch.Tensor,
    s: torch.Tensor,
    out: torch.Tensor,
    weights: torch.Tensor | None,
    routing: Routing,
    *,
    routed: bool,
) -> None:
    n, k = w.shape[1], w.shape[2]
    num_m_blocks = routing.sorted_ids.numel() // routing.block_m
    grid = (num_m_blocks * triton.cdiv(n, BLOCK),)
    _grouped_gemm_kernel[grid](
        a,
        a_scale,
        w,
        s,
        out,
        weights if weights is not None else a_scale,
        routing.sorted_ids,
        routing.expert_ids,
        routing.total,
        n,
        k,
        routing.pairs,
        num_m_blocks,
        a.stride(0),
        a_scale.stride(0),
        w.stride(0),
        w.stride(1),
        s.stride(0),
        s.stride(1),
        out.stride(0),
        BLOCK_M=routing.block_m,
        BLOCK_N=BLOCK,
        BLOCK_K=BLOCK,
        GROUP_M=8,
        ROUTED=routed,
        **_launch_config(routing.block_m, a.device),
    )


def _dense_routing(tokens: int, block_m: int, device: torch.device) -> Routing:
    """Every row to the one expert, in order: what ``align_routing`` gives, without sorting."""
    length = -(-tokens // block_m) * block_m
    rows = torch.arange(length, dtype=torch.int32, device=device)
    return Routing(
        sorted_ids=rows.masked_fill_(rows >= tokens, tokens),
        expert_ids=torch.zeros(length // block_m, dtype=torch.int32, device=device),
        total=torch.full((1,), length, dtype=torch.int32, device=device),
        block_m=block_m,
        pairs=tokens,
    )


def fp8_linear(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A dense block-FP8 linear layer: the grouped GEMM with one expert and no routing."""
    shape = x.shape
    rows = x.reshape(-1, shape[-1])
    tokens = rows.shape[0]
    out_features = weight.shape[0]
    out = torch.empty((tokens, out_features), dtype=torch.float32, device=x.device)
    if tokens:
        a, a_scale = quantise_rows(rows)
        block_m = 16 if tokens <= 16 else 64
        routing = _dense_routing(tokens, block_m, x.device)
        _launch_grouped(a, a_scale, weight[None], scale[None], out, None, routing, routed=False)
    return out.to(x.dtype).view(*shape[:-1], out_features)


def supported(device: torch.device) -> bool:
    """e4m3fn tensor-core dot products: NVIDIA compute capability 8.9 (Ada) or newer.

    ROCm devices also answer to "cuda" but use the e4m3fnuz variant on MI300: not these.
    """
    if device.type != "cuda" or torch.version.hip is not None:
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)
