"""Peak memory of ``python -m engines quantize-fp8`` against the largest shard.

    .venv/bin/python bench/fp8_quantize.py [--layers 6] [--experts 64]

Writes a bf16 Qwen 3.5 MoE checkpoint in the layout of Qwen's uploads (fused experts,
one decoder layer per shard, random weights; hidden 1024, expert intermediate 512),
then quantises it in a child process and reads the child's peak RSS (VmHWM). The
child's peak before quantising (Python + torch + safetensors imported) is subtracted.
The quantiser works shard by shard, so the growth should stay near one shard however
many shards the model has: the ratio to the whole model falls as layers are added.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
HIDDEN, INTER = 1024, 512

# Peak RSS is the kernel's high-water mark (VmHWM; ru_maxrss would carry the parent's
# peak across exec).
CHILD = """
import json, sys, time
from pathlib import Path
import torch, safetensors.torch  # noqa: F401  (imported before the baseline is read)
from engines.fp8.quantize import quantise_checkpoint
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
baseline = status("VmHWM")
start = time.perf_counter()
summary = quantise_checkpoint(Path(sys.argv[1]), Path(sys.argv[2]))
seconds = time.perf_counter() - start
print(json.dumps({"baseline": baseline, "peak": status("VmHWM"), "seconds": seconds, **summary}))
"""


def write_source(path: Path, layers: int, experts: int) -> None:
    path.mkdir(parents=True)
    config = {
        "model_type": "qwen3_5_moe_text",
        "architectures": ["Qwen3_5MoeForCausalLM"],
        "hidden_size": HIDDEN,
        "moe_intermediate_size": INTER,
        "num_experts": experts,
        "num_hidden_layers": layers,
        "torch_dtype": "bfloat16",
    }
    (path / "config.json").write_text(json.dumps(config))
    weight_map = {}
    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * 0.02).to(torch.bfloat16)

    for layer in range(layers):
        p = f"model.layers.{layer}"
        tensors = {
            f"{p}.mlp.experts.gate_up_proj": randn(experts, 2 * INTER, HIDDEN),
            f"{p}.mlp.experts.down_proj": randn(experts, HIDDEN, INTER),
            f"{p}.mlp.gate.weight": randn(experts, HIDDEN),
            f"{p}.mlp.shared_expert.gate_proj.weight": randn(INTER, HIDDEN),
            f"{p}.mlp.shared_expert.up_proj.weight": randn(INTER, HIDDEN),
            f"{p}.mlp.shared_expert.down_proj.weight": randn(HIDDEN, INTER),
            f"{p}.self_attn.q_proj.weight": randn(2 * HIDDEN, HIDDEN),
            f"{p}.self_attn.o_proj.weight": randn(HIDDEN, HIDDEN),
            f"{p}.input_layernorm.weight": randn(HIDDEN),
        }
        name = f"model-{layer + 1:05d}-of-{layers:05d}.safetensors"
        save_file(tensors, str(path / name))
        weight_map.update(dict.fromkeys(tensors, name))
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--experts", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fp8-quantize-bench-"))
    try:
        source = work / "bf16"
        write_source(source, args.layers, args.experts)
        shards = sorted(source.glob("*.safetensors"))
        largest = max(s.stat().st_size for s in shards)
        total = sum(s.stat().st_size for s in shards)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(source), str(work / "fp8")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        growth = figures["peak"] - figures["baseline"]
        print(f"source: {len(shards)} shards, {total / 1e6:.0f} MB, largest {largest / 1e6:.0f} MB")
        print(
            f"output: {figures['bytes_out'] / 1e6:.0f} MB "
            f"({figures['bytes_out'] / figures['bytes_in']:.2f} of the source), "
            f"{figures['seconds']:.1f} s"
        )
        print(
            f"peak RSS {figures['peak'] / 1e6:.0f} MB, {growth / 1e6:.0f} MB above the "
            f"{figures['baseline'] / 1e6:.0f} MB before quantising"
        )
        print(
            f"growth / largest shard: {growth / largest:.2f}    "
            f"growth / whole model: {growth / total:.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
