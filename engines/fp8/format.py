"""The block-scale FP8 checkpoint format of Qwen's own ``-FP8`` releases.

- A quantised linear weight ``X.weight`` ``[out, in]`` is ``float8_e4m3fn``; beside it,
  ``X.weight_scale_inv`` ``[ceil(out/128), ceil(in/128)]`` holds one multiplier per
  128×128 block: ``dequantised = fp8 × weight_scale_inv``, with
  ``weight_scale_inv = block amax / 448`` (448 is e4m3fn's largest finite value).
- ``config.json`` (top level, beside ``text_config`` for vision-language checkpoints)
  carries ``quantization_config``: ``quant_method: fp8``, ``fmt: e4m3``,
  ``activation_scheme: dynamic`` (activations are quantised at run time, per token and
  per group of 128), ``weight_block_size: [128, 128]`` and ``modules_to_not_convert``,
  every high-precision module by its full name, layer by layer, as the published lists are.
- Routed experts are stored one expert per tensor,
  ``…mlp.experts.E.{gate,up,down}_proj.weight``, as the published FP8 checkpoints are
  (Qwen's bf16 uploads fuse them into ``experts.gate_up_proj [E, 2I, H]`` and
  ``experts.down_proj [E, H, I]``; transformers re-saves them one per expert).

What is quantised is an allow-list of projection names (below); everything else stays in
the source precision: embeddings, ``lm_head``, every norm, the router (``mlp.gate``), the
shared-expert gate, the Gated DeltaNet pieces ``in_proj_a``/``in_proj_b``/``conv1d``/
``A_log``/``dt_bias``, the whole vision encoder and the MTP ``fc``. That is the split of
Qwen3.5/3.6 ``-FP8`` and Qwen3-Next ``-FP8`` (see ARCHITECTURE.md, "FP8").

Readers accept scales in any float dtype (Qwen writes bf16 scales; we write float32).
"""

from __future__ import annotations

import re
from typing import Any

BLOCK = 128
E4M3_MAX = 448.0
SCALE_SUFFIX = "_scale_inv"  # appended to "weight"

# Layers whose projections are FP8: the language model's decoder layers and the MTP layers.
_LAYER = r"(?:model\.language_model\.layers|model\.layers|mtp\.layers)\.\d+\."
QUANTISED = re.compile(
    _LAYER
    + r"(?:"
    + r"self_attn\.(?:q|k|v|o)_proj"
    + r"|linear_attn\.(?:in_proj_qkvz|in_proj_qkv|in_proj_z|out_proj)"
    + r"|mlp\.(?:gate|up|down)_proj"  # dense MLP
    + r"|mlp\.shared_expert\.(?:gate|up|down)_proj"
    + r"|mlp\.experts\.\d+\.(?:gate|up|down)_proj"
    + r")\.weight$"
)
# Qwen's bf16 uploads: routed experts fused into 3-D tensors (no ".weight" suffix).
FUSED_EXPERTS = re.compile(r"^(?P<prefix>.+\.mlp\.experts)\.(?P<kind>gate_up_proj|down_proj)$")

SUPPORTED_MODEL_TYPES = {"qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text"}


def is_quantised_weight(name: str) -> bool:
    return bool(QUANTISED.search(name))


def scale_name(weight_name: str) -> str:
    return weight_name + SCALE_SUFFIX


def module_name(tensor_name: str) -> str:
    """``a.b.weight`` → ``a.b``; parameters without a module suffix (``A_log``) stay whole."""
    for suffix in (".weight", ".bias"):
        if tensor_name.endswith(suffix):
            return tensor_name[: -len(suffix)]
    return tensor_name


def scale_shape(out_features: int, in_features: int) -> tuple[int, int]:
    return (-(-out_features // BLOCK), -(-in_features // BLOCK))


def quantization_config(modules_to_not_convert: list[str]) -> dict[str, Any]:
    return {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [BLOCK, BLOCK],
        "modules_to_not_convert": modules_to_not_convert,
    }


def is_fp8_config(config: dict[str, Any]) -> bool:
    quant = config.get("quantization_config") or {}
    return quant.get("quant_method") == "fp8"


def check_fp8_config(config: dict[str, Any]) -> None:
    """Refuse FP8 checkpoints in a layout we do not run (per-tensor scales, other blocks)."""
    quant = config["quantization_config"]
    if quant.get("fmt", "e4m3") != "e4m3":
        raise ValueError(f"only e4m3 FP8 checkpoints are supported; this one is {quant['fmt']!r}")
    if list(quant.get("weight_block_size") or []) != [BLOCK, BLOCK]:
        raise ValueError(
            f"only 128×128 block-scale FP8 checkpoints are supported; this one has "
            f"weight_block_size={quant.get('weight_block_size')!r}"
        )
    if quant.get("activation_scheme", "dynamic") != "dynamic":
        raise ValueError("only activation_scheme 'dynamic' FP8 checkpoints are supported")


def quantise_blocks(weight: Any) -> tuple[Any, Any]:
    """``[out, in]`` float weight → (``float8_e4m3fn`` weight, float32 scale per 128×128 block)."""
    import torch
    import torch.nn.functional as F

    out_features, in_features = weight.shape
    rows, cols = scale_shape(out_features, in_features)
    w = weight.to(torch.float32)
    padded = F.pad(w, (0, cols * BLOCK - in_features, 0, rows * BLOCK - out_features))
    blocks = padded.view(rows, BLOCK, cols, BLOCK)
    amax = blocks.abs().amax(dim=(1, 3))
    if not torch.isfinite(amax).all():
        raise ValueError("the weight holds inf or NaN values")
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    q = (blocks / scale[:, None, :, None]).clamp(-E4M3_MAX, E4M3_MAX)
    q = q.view(rows * BLOCK, cols * BLOCK)[:out_features, :in_features]
    return q.to(torch.float8_e4m3fn).contiguous(), scale.contiguous()


def expand_scale(scale: Any, out_features: int, in_features: int) -> Any:
    """Per-block scale → per-element multiplier ``[out, in]``."""
    return scale.repeat_interleave(BLOCK, 0)[:out_features].repeat_interleave(BLOCK, 1)[
        :, :in_features
    ]


def dequantise_blocks(weight: Any, scale: Any, dtype: Any) -> Any:
    import torch

    out_features, in_features = weight.shape[-2:]
    multiplier = expand_scale(scale.to(torch.float32), out_features, in_features)
    return (weight.to(torch.float32) * multiplier).to(dtype)
