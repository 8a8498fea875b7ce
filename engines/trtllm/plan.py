"""Memory plans and LLM API options for a model on a GPU profile.

A plan is arithmetic from the architecture (``engines.trtllm.models``), not a measurement:

- weights per GPU: routed experts split over the GPUs (expert parallel), everything else
  split by tensor parallelism — or, with attention data parallelism (MoE models on more
  than one GPU), held whole on every GPU; FP8 stores projections and experts in one byte
  (plus one float32 scale per 128×128 block), the rest in bf16;
- a fixed reserve per GPU for activations, CUDA graphs and the runtime;
- the KV cache: ``free_gpu_memory_fraction`` of what is left;
- a sequence at context C holds C × (K and V of the gated-attention layers: one layer in
  four) plus the Gated DeltaNet state, whatever C (fp32 recurrent state, conv window).

A profile fits when the weights leave room for at least one sequence at 32K.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engines.trtllm.models import Architecture

GB = 1e9
GPUS: dict[str, dict[str, Any]] = {
    # name: memory in GB = 1e9 bytes, NVIDIA's figure (an H200 reports ~139 GiB = 149e9 bytes:
    # planning with 141e9 leaves ~6% unused, the safe side), architecture family
    "h100": {"memory_gb": 80.0, "family": "hopper", "label": "H100 SXM 80 GB"},
    "h200": {"memory_gb": 141.0, "family": "hopper", "label": "H200 141 GB"},
    "b200": {"memory_gb": 180.0, "family": "blackwell", "label": "B200 180 GB"},
}
GPU_COUNTS = (1, 2, 4, 8)
RESERVE_GB = 8.0  # activations at max_num_tokens, CUDA graphs, NCCL and runtime buffers
KV_FRACTION = 0.9  # free_gpu_memory_fraction
CONTEXTS = (32_768, 262_144)
MAX_BATCH_CAP = 256
MAX_NUM_TOKENS = 8192  # prefill chunk


@dataclass
class Plan:
    model: str
    gpu: str
    gpus: int
    quant: str  # "fp8" or "bf16"
    weights_gb_per_gpu: float
    kv_cache_gb_per_gpu: float
    kv_bytes_per_token: int
    linear_state_mb_per_sequence: float
    attention_dp: bool
    max_sequences: dict[int, int] = field(default_factory=dict)  # context → sequences

    @property
    def fits(self) -> bool:
        return self.max_sequences.get(CONTEXTS[0], 0) >= 1

    def manifest(self) -> dict[str, Any]:
        return {
            "weights_gb_per_gpu": round(self.weights_gb_per_gpu, 1),
            "kv_cache_gb_per_gpu": round(self.kv_cache_gb_per_gpu, 1),
            "reserve_gb_per_gpu": RESERVE_GB,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "linear_state_mb_per_sequence": round(self.linear_state_mb_per_sequence, 1),
            "attention_dp": self.attention_dp,
            "max_sequences": {_context_label(c): n for c, n in self.max_sequences.items()},
        }

    def refusal(self) -> str:
        memory = GPUS[self.gpu]["memory_gb"]
        return (
            f"{self.model} {self.quant} does not fit on {self.gpus}× {self.gpu}: weights "
            f"{self.weights_gb_per_gpu:.1f} GB per GPU + {RESERVE_GB:.0f} GB reserve of "
            f"{memory:.0f} GB leave {self.kv_cache_gb_per_gpu:.1f} GB for the KV cache; one "
            f"32K sequence needs {sequence_gb(self, CONTEXTS[0]):.2f} GB"
        )


def _context_label(context: int) -> str:
    return "262k" if context == 262_144 else f"{context // 1024}k"


def weight_bytes(arch: Architecture, quant: str) -> tuple[float, float]:
    """(routed-expert bytes, all other bytes) for the whole model."""
    p = arch.parameters()
    if quant == "fp8":
        per_fp8 = 1.0 + 4.0 / (128 * 128)
        return p["experts"] * per_fp8, p["fp8_other"] * per_fp8 + p["high_precision"] * 2.0
    return p["experts"] * 2.0, (p["fp8_other"] + p["high_precision"]) * 2.0


def sequence_gb(plan: Plan, context: int) -> float:
    return (context * plan.kv_bytes_per_token + plan.linear_state_mb_per_sequence * 1e6) / GB


def plan(arch: Architecture, gpu: str, gpus: int, quant: str) -> Plan:
    if gpu not in GPUS:
        raise ValueError(f"unknown GPU profile {gpu!r}; known: {', '.join(GPUS)}")
    experts, other = weight_bytes(arch, quant)
    attention_dp = arch.moe and gpus > 1
    per_gpu = experts / gpus + (other if attention_dp else other / gpus)
    memory = GPUS[gpu]["memory_gb"] * GB
    kv_budget = max(0.0, (memory - per_gpu - RESERVE_GB * GB) * KV_FRACTION)
    kv_dtype_bytes = 1 if quant == "fp8" else 2
    full_kv = arch.kv_bytes_per_token(kv_dtype_bytes)
    state = arch.linear_state_bytes()
    token_bytes: float
    state_bytes: float
    if attention_dp:  # each GPU serves its own sequences, whole
        token_bytes, state_bytes, replicas = full_kv, state, gpus
    else:  # tensor parallel: heads split (KV heads copied once TP passes their count)
        shards = min(gpus, arch.kv_heads)
        token_bytes, state_bytes, replicas = full_kv / shards, state / gpus, 1
    result = Plan(
        model=arch.name,
        gpu=gpu,
        gpus=gpus,
        quant=quant,
        weights_gb_per_gpu=per_gpu / GB,
        kv_cache_gb_per_gpu=kv_budget / GB,
        kv_bytes_per_token=int(full_kv),
        linear_state_mb_per_sequence=state / 1e6,
        attention_dp=attention_dp,
    )
    for context in CONTEXTS:
        per_sequence = context * token_bytes + state_bytes
        result.max_sequences[context] = int(kv_budget // per_sequence) * replicas
    return result


def recommended(arch: Architecture, gpu: str, quant: str, min_sequences: int = 16) -> Plan | None:
    """The fewest GPUs that hold ``min_sequences`` sequences of 32K (else the first fit)."""
    fitting = [p for p in (plan(arch, gpu, n, quant) for n in GPU_COUNTS) if p.fits]
    for candidate in fitting:
        if candidate.max_sequences[CONTEXTS[0]] >= min_sequences:
            return candidate
    return fitting[-1] if fitting else None


def moe_backend(gpu: str, quant: str) -> str:
    """Hopper runs block-scale FP8 MoE on CUTLASS; Blackwell on DeepGEMM (TensorRT-LLM guide)."""
    if GPUS[gpu]["family"] == "blackwell" and quant == "fp8":
        return "DEEPGEMM"
    return "CUTLASS"


def cuda_graph_batch_sizes(max_batch: int) -> list[int]:
    """Powers of two up to the batch cap, and the cap itself (decode steps pad up to one)."""
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64, 128, 256) if s < max_batch]
    return [*sizes, max_batch]


def llm_options(arch: Architecture, p: Plan, mtp: bool = False) -> dict[str, Any]:
    """LLM API options (``LLM(**options)``, ``trtllm-serve --extra_llm_api_options``)."""
    # With attention data parallelism max_batch_size is per GPU rank.
    per_rank = p.max_sequences[CONTEXTS[0]] // (p.gpus if p.attention_dp else 1)
    max_batch = max(1, min(MAX_BATCH_CAP, per_rank))
    options: dict[str, Any] = {
        "tensor_parallel_size": p.gpus,
        "max_batch_size": max_batch,
        "max_num_tokens": MAX_NUM_TOKENS,
        "max_seq_len": CONTEXTS[-1],
        "enable_chunked_prefill": True,
        "kv_cache_config": {
            "free_gpu_memory_fraction": KV_FRACTION,
            # Not supported for Qwen 3.5: its vision-language classes, and the hybrid
            # Gated DeltaNet state, turn block reuse off (modeling_qwen3_5.py).
            "enable_block_reuse": False,
            "dtype": "fp8" if p.quant == "fp8" else "auto",
        },
        "cuda_graph_config": {
            "batch_sizes": cuda_graph_batch_sizes(max_batch),
            "enable_padding": True,
        },
    }
    if arch.moe:
        options["moe_expert_parallel_size"] = p.gpus
        options["enable_attention_dp"] = p.attention_dp
        options["moe_config"] = {"backend": moe_backend(p.gpu, p.quant)}
    if mtp:
        # Every Qwen 3.5 ships one MTP layer: one draft token per step. Opt-in: with
        # one-model speculative decoding TensorRT-LLM refuses penalties unless
        # enable_penalty is set, and the model cards' presets use presence_penalty.
        options["speculative_config"] = {
            "decoding_type": "MTP",
            "num_nextn_predict_layers": 1,
            "enable_penalty": True,
        }
    return options
