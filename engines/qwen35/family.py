"""The Qwen 3.5 family as published, and the sampling presets from the model cards.

Catalogue entries for real checkpoints are built from this table; an operator
points ``path`` at a downloaded checkpoint (or an engine directory) to serve one.
"""

from __future__ import annotations

from typing import Any

NATIVE_CONTEXT = 262_144

# Sampling presets per mode (model cards). Keys are what the UI and API accept.
PRESETS: dict[str, dict[str, Any]] = {
    "thinking-general": {
        "label": "Thinking · general",
        "thinking": True,
        "sampling": {"temperature": 1.0, "top_p": 0.95, "top_k": 20, "presence_penalty": 1.5},
    },
    "thinking-coding": {
        "label": "Thinking · precise coding",
        "thinking": True,
        "sampling": {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "presence_penalty": 0.0},
    },
    "instruct-general": {
        "label": "Non-thinking · general",
        "thinking": False,
        "sampling": {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "presence_penalty": 1.5},
    },
    "instruct-reasoning": {
        "label": "Non-thinking · reasoning",
        "thinking": False,
        "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": 40, "presence_penalty": 2.0},
    },
}

# name, total parameters, active parameters, MoE, thinking on by default.
# The small models' cards say they answer without thinking unless asked.
FAMILY: list[tuple[str, str, str, bool, bool]] = [
    ("Qwen3.5-397B-A17B", "397B", "17B", True, True),
    ("Qwen3.5-122B-A10B", "122B", "10B", True, True),
    ("Qwen3.5-35B-A3B", "35B", "3B", True, True),
    ("Qwen3.5-27B", "27B", "27B", False, True),
    ("Qwen3.5-9B", "9B", "9B", False, True),
    ("Qwen3.5-4B", "4B", "4B", False, True),
    ("Qwen3.5-2B", "2B", "2B", False, False),
    ("Qwen3.5-0.8B", "0.8B", "0.8B", False, False),
]


def qwen35_info(
    total: str, active: str, moe: bool, thinking: bool, *, synthetic: bool = False
) -> dict[str, Any]:
    return {
        "family": "Qwen 3.5",
        "total_params": total,
        "active_params": active,
        "architecture": "MoE" if moe else "dense",
        "layers": "Gated DeltaNet + gated attention (3:1)",
        "modalities": ["text", "image", "video"],
        "thinking_default": thinking,
        "synthetic": synthetic,
    }


def family_entries(paths: dict[str, str], backend: str = "torch") -> list[dict[str, Any]]:
    """Catalogue entries for the published models. ``paths`` maps name → checkpoint dir;
    a model without one is listed (for the catalogue page) but cannot be chosen.

    A ``<name>-FP8`` folder (Qwen's block-scale FP8 release, or ``python -m engines
    quantize-fp8`` output) adds a ``<name>-fp8`` entry; the torch engine runs it on our
    FP8 kernels with ``options.device`` set to ``cuda``, or dequantised per block on CPU.
    """
    entries = []
    for name, total, active, moe, thinking in FAMILY:
        variants: list[tuple[str, dict[str, Any]]] = [(name, {})]
        if f"{name}-FP8" in paths:
            variants.append((f"{name}-FP8", {"dtype": "bfloat16"}))
        for variant, options in variants:
            info = qwen35_info(total, active, moe, thinking)
            if variant != name:
                info["quantisation"] = "FP8 e4m3, 128×128 block scales"
            entries.append(
                {
                    "name": variant.lower(),
                    "display_name": variant,
                    "backend": backend,
                    "path": paths.get(variant, ""),
                    "context_length": NATIVE_CONTEXT,
                    "max_output_tokens": 32_768,
                    "thinking": "on" if thinking else "off",
                    "presets": PRESETS,
                    "reasoning_parser": "think-tags",
                    "info": info,
                    "options": options,
                }
            )
    return entries
