"""Synthesise a tiny Qwen 3.5 checkpoint laid out like the real ones.

Exact architecture (Gated DeltaNet + gated attention layers in the 3:1
pattern, routed + shared experts for MoE, the vision encoder for
vision-language), small dimensions, seeded random weights: it produces
nonsense text, quickly, through exactly the code paths a real Qwen 3.5
checkpoint takes. The tokenizer is the real one (engines.qwen35.tokenizer).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engines.qwen35.template import chat_template
from engines.qwen35.tokenizer import ENDOFTEXT_ID, IM_END_ID, build_tokenizer

VOCAB_SIZE = 248_320  # the real models' padded embedding size
SYNTH_VERSION = 1  # bump when the layout changes; `ensure_synthesised` rebuilds


def text_config(moe: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "num_hidden_layers": 4,  # linear, linear, linear, full: the real 3:1 pattern
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "linear_key_head_dim": 16,
        "linear_value_head_dim": 16,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_conv_kernel_dim": 4,
        "max_position_embeddings": 262_144,
        "eos_token_id": IM_END_ID,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10_000_000.0,
            "partial_rotary_factor": 0.25,
            "mrope_section": [2, 1, 1],
            "mrope_interleaved": True,
        },
    }
    if moe:
        config.update(
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=32,
        )
    else:
        config.update(intermediate_size=128)
    return config


VISION_CONFIG = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "out_hidden_size": 64,
}

# The processors' settings, as the real checkpoints ship them.
PREPROCESSOR_CONFIG = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen3VLProcessor",
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "size": {"shortest_edge": 65_536, "longest_edge": 16_777_216},
}
VIDEO_PREPROCESSOR_CONFIG = {
    "video_processor_type": "Qwen3VLVideoProcessor",
    "processor_class": "Qwen3VLProcessor",
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "do_sample_frames": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "fps": 2,
    "min_frames": 4,
    "max_frames": 768,
    "size": {"shortest_edge": 4_096, "longest_edge": 25_165_824},
}
GENERATION_CONFIG = {
    "eos_token_id": [IM_END_ID, ENDOFTEXT_ID],
    "pad_token_id": ENDOFTEXT_ID,
    "do_sample": True,
    "temperature": 1.0,
    "top_p": 0.95,
    "top_k": 20,
}


def synthesise(out_dir: Path, *, moe: bool, vision: bool, seed: int = 0) -> Path:
    """Write the checkpoint to ``out_dir`` (atomically: a half-written one never appears)."""
    import torch
    from transformers import (
        Qwen3_5Config,
        Qwen3_5ForCausalLM,
        Qwen3_5ForConditionalGeneration,
        Qwen3_5MoeConfig,
        Qwen3_5MoeForCausalLM,
        Qwen3_5MoeForConditionalGeneration,
        Qwen3_5MoeTextConfig,
        Qwen3_5TextConfig,
    )

    torch.manual_seed(seed)
    text = text_config(moe)
    model: Any
    config: Any
    if vision:
        config_class = Qwen3_5MoeConfig if moe else Qwen3_5Config
        config = config_class(text_config=text, vision_config=VISION_CONFIG)
        model_class: Any = (
            Qwen3_5MoeForConditionalGeneration if moe else Qwen3_5ForConditionalGeneration
        )
        model = model_class(config)
    else:
        text_class: Any = Qwen3_5MoeTextConfig if moe else Qwen3_5TextConfig
        causal_lm: Any = Qwen3_5MoeForCausalLM if moe else Qwen3_5ForCausalLM
        model = causal_lm(text_class(**text))
    model.eval()

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer = build_tokenizer(chat_template())
        tokenizer.save_pretrained(staging)
        (staging / "chat_template.jinja").write_text(chat_template())
        (staging / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
        if vision:
            (staging / "preprocessor_config.json").write_text(
                json.dumps(PREPROCESSOR_CONFIG, indent=2)
            )
            (staging / "video_preprocessor_config.json").write_text(
                json.dumps(VIDEO_PREPROCESSOR_CONFIG, indent=2)
            )
        (staging / "SYNTHESISED.json").write_text(
            json.dumps({"version": SYNTH_VERSION, "moe": moe, "vision": vision, "seed": seed})
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def ensure_synthesised(out_dir: Path, *, moe: bool, vision: bool, fp8: bool = False) -> Path:
    """Synthesise ``out_dir`` unless an up-to-date synthesised checkpoint is there.

    With ``fp8`` the checkpoint is synthesised, then quantised by our FP8 quantiser
    (``engines.fp8.quantize``): what ``python -m engines quantize-fp8`` writes.
    """
    out_dir = Path(out_dir)
    marker = out_dir / "SYNTHESISED.json"
    wanted = {"version": SYNTH_VERSION, "moe": moe, "vision": vision, "seed": 0}
    if fp8:
        wanted["fp8"] = True
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return out_dir
    if not fp8:
        return synthesise(out_dir, moe=moe, vision=vision)
    from engines.fp8.quantize import quantise_checkpoint

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-src-") as tmp:
        source = synthesise(Path(tmp) / "bf16", moe=moe, vision=vision)
        staged = Path(tmp) / "fp8"
        quantise_checkpoint(source, staged)
        (staged / "SYNTHESISED.json").write_text(json.dumps(wanted))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staged.rename(out_dir)
    return out_dir
