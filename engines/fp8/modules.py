"""FP8 layers for the torch engine: weights stay e4m3 in memory, with their block scales.

On a CUDA device of compute capability 8.9 or newer they run our Triton kernels
(``engines.fp8.kernels``); elsewhere (CPU, older GPUs) each weight is dequantised per
128×128 block at the moment it is used, so memory holds FP8 either way.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engines.fp8.format import dequantise_blocks, scale_shape


def _kernels_for(tensor: torch.Tensor) -> Any:
    """The Triton kernels module when ``tensor`` lives where they run, else None.

    ``ENGINES_FP8_KERNELS=interpret`` with ``TRITON_INTERPRET=1`` runs them on CPU tensors
    in Triton's interpreter (slow): how the tests check the GPU path's numbers without one.
    """
    on_cpu_by_request = os.environ.get("ENGINES_FP8_KERNELS") == "interpret"
    if tensor.device.type != "cuda" and not on_cpu_by_request:
        return None
    from engines.fp8 import kernels

    if tensor.device.type != "cuda":
        return kernels if kernels.INTERPRETED else None
    return kernels if kernels.supported(tensor.device) else None


def _frozen(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape, dtype=dtype, device=device), requires_grad=False)


class Fp8Linear(nn.Module):
    """``nn.Linear`` with an e4m3 weight and a float32 ``weight_scale_inv`` per 128×128 block."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _frozen((out_features, in_features), torch.float8_e4m3fn, device)
        self.weight_scale_inv = _frozen(
            scale_shape(out_features, in_features), torch.float32, device
        )
        self.bias = _frozen((out_features,), dtype, device) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels = _kernels_for(x)
        if kernels is not None:
            out = kernels.fp8_linear(x, self.weight, self.weight_scale_inv)
            return out if self.bias is None else out + self.bias
        weight = dequantise_blocks(self.weight, self.weight_scale_inv, x.dtype)
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp8 128x128"


class Fp8Experts(nn.Module):
    """Routed experts in FP8, a drop-in for transformers' ``Qwen3_5MoeExperts``.

    Gate and up stay two tensors (``[E, I, H]`` each, as the checkpoint stores them) so their
    block scales never straddle the gate/up boundary when I is not a multiple of 128.
    """

    def __init__(
        self,
        num_experts: int,
        hidden: int,
        intermediate: int,
        device: torch.device | str,
        act_fn: nn.Module,
    ) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.hidden_dim = hidden
        self.intermediate_dim = intermediate
        self.act_fn = act_fn
        fp8 = torch.float8_e4m3fn
        self.gate_proj = _frozen((num_experts, intermediate, hidden), fp8, device)
        self.up_proj = _frozen((num_experts, intermediate, hidden), fp8, device)
        self.down_proj = _frozen((num_experts, hidden, intermediate), fp8, device)
        up_scale = (num_experts, *scale_shape(intermediate, hidden))
        self.gate_proj_scale_inv = _frozen(up_scale, torch.float32, device)
        self.up_proj_scale_inv = _frozen(up_scale, torch.float32, device)
        self.down_proj_scale_inv = _frozen(
            (num_experts, *scale_shape(hidden, intermediate)), torch.float32, device
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        top_k_index: torch.Tensor,
        top_k_weights: torch.Tensor,
    ) -> torch.Tensor:
        kernels = _kernels_for(hidden_states)
        if kernels is not None:
            return kernels.fused_moe_fp8(
                hidden_states,
                self.gate_proj,
                self.gate_proj_scale_inv,
                self.up_proj,
                self.up_proj_scale_inv,
                self.down_proj,
                self.down_proj_scale_inv,
                top_k_weights,
                top_k_index,
            )
        return self._dequantised_loop(hidden_states, top_k_index, top_k_weights)

    def _dequantised_loop(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        """The reference path: each expert that has tokens, dequantised when it is used."""
        dtype = hidden_states.dtype
        out = torch.zeros_like(hidden_states)
        for expert in torch.unique(top_k_index).tolist():
            token_idx, k_pos = torch.where(top_k_index == expert)
            x = hidden_states[token_idx]
            gate = F.linear(
                x,
                dequantise_blocks(self.gate_proj[expert], self.gate_proj_scale_inv[expert], dtype),
            )
            up = F.linear(
                x, dequantise_blocks(self.up_proj[expert], self.up_proj_scale_inv[expert], dtype)
            )
            y = F.linear(
                self.act_fn(gate) * up,
                dequantise_blocks(self.down_proj[expert], self.down_proj_scale_inv[expert], dtype),
            )
            out.index_add_(0, token_idx, (y * top_k_weights[token_idx, k_pos, None]).to(dtype))
        return out

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, hidden={self.hidden_dim}, "
            f"intermediate={self.intermediate_dim}, fp8 128x128"
        )
