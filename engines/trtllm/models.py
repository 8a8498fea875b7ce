"""The published Qwen 3.5 architectures, as the memory plan needs them.

From the models' published ``config.json`` files (text part; every model also carries the
same vision encoder and one MTP layer). Sources are cited in ARCHITECTURE.md ("TensorRT-LLM").
Parameter counts are computed from these shapes; a test checks them against the names
(397B, 35B, ...) within 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

VOCAB = 248_320
HEAD_DIM = 256
LINEAR_KEY_HEADS = 16
LINEAR_HEAD_DIM = 128  # key and value
CONV_KERNEL = 4
FULL_ATTENTION_EVERY = 4  # layers 3, 7, 11, ...: gated attention; the rest Gated DeltaNet
MTP_LAYERS = 1
# The vision encoder (depth 27, hidden 1152, MLP 4304) with its merger: ~0.45B, kept bf16.
VISION_DEPTH, VISION_HIDDEN, VISION_MLP = 27, 1152, 4304


@dataclass(frozen=True)
class Architecture:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    linear_value_heads: int
    intermediate: int = 0  # dense MLP
    experts: int = 0
    top_k: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    tied_embeddings: bool = False

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def full_layers(self) -> int:
        return self.layers // FULL_ATTENTION_EVERY

    @property
    def linear_layers(self) -> int:
        return self.layers - self.full_layers

    # --- parameter counts, split by how FP8 stores them -------------------------------
    def _attention(self) -> int:
        h = self.hidden
        q = h * self.heads * HEAD_DIM * 2  # the output gate is fused into q_proj
        kv = 2 * h * self.kv_heads * HEAD_DIM
        return q + kv + self.heads * HEAD_DIM * h

    def _linear_attention(self) -> tuple[int, int]:
        """(FP8 projections, high-precision pieces) of one Gated DeltaNet layer."""
        h, v = self.hidden, self.linear_value_heads * LINEAR_HEAD_DIM
        qkv_dim = 2 * LINEAR_KEY_HEADS * LINEAR_HEAD_DIM + v
        projections = h * qkv_dim + h * v + v * h  # in_proj_qkv, in_proj_z, out_proj
        small = 2 * h * self.linear_value_heads + qkv_dim * CONV_KERNEL  # in_proj_a/b, conv1d
        return projections, small

    def _mlp(self) -> tuple[int, int, int]:
        """(routed experts, other FP8 MLP weights, high-precision router/gates) per layer."""
        h = self.hidden
        if not self.moe:
            return 0, 3 * h * self.intermediate, 0
        experts = self.experts * 3 * h * self.moe_intermediate
        shared = 3 * h * self.shared_intermediate
        return experts, shared, self.experts * h + h

    def parameters(self) -> dict[str, int]:
        """Parameter counts: routed experts, other FP8 weights, high-precision weights."""
        experts, mlp, gates = self._mlp()
        linear, linear_small = self._linear_attention()
        attention = self._attention()
        layer_fp8 = mlp  # per layer, besides experts and attention
        fp8 = self.layers * layer_fp8 + self.linear_layers * linear + self.full_layers * attention
        high = self.layers * gates + self.linear_layers * linear_small
        embeddings = VOCAB * self.hidden * (1 if self.tied_embeddings else 2)
        vision_block = 4 * VISION_HIDDEN**2 + 2 * VISION_HIDDEN * VISION_MLP
        merger = (4 * VISION_HIDDEN) ** 2 + 4 * VISION_HIDDEN * self.hidden
        high += embeddings + VISION_DEPTH * vision_block + merger
        # One MTP layer: full attention + the model's MLP, and its fc (2H → H, bf16).
        mtp_experts = MTP_LAYERS * experts
        fp8 += MTP_LAYERS * (attention + mlp)
        high += MTP_LAYERS * (gates + 2 * self.hidden * self.hidden)
        return {
            "experts": self.layers * experts + mtp_experts,
            "fp8_other": fp8,
            "high_precision": high,
        }

    def total_parameters(self) -> int:
        return sum(self.parameters().values())

    # --- what a sequence holds -------------------------------------------------------
    def kv_bytes_per_token(self, kv_bytes: int) -> int:
        """Gated attention K and V, over all full-attention layers (DeltaNet keeps none)."""
        return self.full_layers * 2 * self.kv_heads * HEAD_DIM * kv_bytes

    def linear_state_bytes(self) -> int:
        """Gated DeltaNet state per sequence: fp32 recurrent state + bf16 conv window."""
        v = self.linear_value_heads * LINEAR_HEAD_DIM
        recurrent = self.linear_value_heads * LINEAR_HEAD_DIM * LINEAR_HEAD_DIM * 4
        conv = (2 * LINEAR_KEY_HEADS * LINEAR_HEAD_DIM + v) * (CONV_KERNEL - 1) * 2
        return self.linear_layers * (recurrent + conv)


MODELS: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "Qwen3.5-397B-A17B",
            4096,
            60,
            32,
            2,
            64,
            experts=512,
            top_k=10,
            moe_intermediate=1024,
            shared_intermediate=1024,
        ),
        Architecture(
            "Qwen3.5-122B-A10B",
            3072,
            48,
            32,
            2,
            64,
            experts=256,
            top_k=8,
            moe_intermediate=1024,
            shared_intermediate=1024,
        ),
        Architecture(
            "Qwen3.5-35B-A3B",
            2048,
            40,
            16,
            2,
            32,
            experts=256,
            top_k=8,
            moe_intermediate=512,
            shared_intermediate=512,
        ),
        Architecture("Qwen3.5-27B", 5120, 64, 24, 4, 48, intermediate=17408),
        Architecture("Qwen3.5-9B", 4096, 32, 16, 4, 32, intermediate=12288),
        Architecture("Qwen3.5-4B", 2560, 32, 16, 4, 32, intermediate=9216, tied_embeddings=True),
        Architecture("Qwen3.5-2B", 2048, 24, 8, 2, 16, intermediate=6144, tied_embeddings=True),
        Architecture("Qwen3.5-0.8B", 1024, 24, 8, 2, 16, intermediate=3584, tied_embeddings=True),
    ]
}


def lookup(name: str) -> Architecture:
    for key, arch in MODELS.items():
        if key.lower() == name.lower().removesuffix("-fp8"):
            return arch
    raise KeyError(name)
