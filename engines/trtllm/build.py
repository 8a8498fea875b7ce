"""``python -m engines build MODEL --gpu {h100,h200,b200} --gpus N [--quant fp8] OUT``.

TensorRT-LLM runs Qwen 3.5 on its PyTorch backend: there is no ``trtllm-build`` step. An
engine directory is what that backend loads — the checkpoint (linked), the LLM API options
for this GPU profile (``llm_options.yaml``), the same as a ``trtllm-serve`` command line,
and ``manifest.json`` with the memory plan. CUDA graphs are captured when it starts.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engines.fp8.format import is_fp8_config
from engines.trtllm.models import MODELS, Architecture, lookup
from engines.trtllm.options import MIN_VERSION, check_options
from engines.trtllm.plan import CONTEXTS, GPU_COUNTS, GPUS, llm_options, plan, recommended

OPTIONS_FILE = "llm_options.yaml"
MANIFEST = "manifest.json"
SERVE_SCRIPT = "trtllm-serve.sh"
CHECKPOINT_LINK = "checkpoint"


class BuildError(Exception):
    """A profile or input that cannot be built: the message says why, with numbers."""


def _checkpoint_quant(checkpoint: Path) -> str:
    config_path = checkpoint / "config.json"
    if not config_path.exists():
        raise BuildError(f"{checkpoint} has no config.json: not a checkpoint folder")
    return "fp8" if is_fp8_config(json.loads(config_path.read_text())) else "bf16"


def serve_command(checkpoint: str, options: dict[str, Any], arch: Architecture) -> list[str]:
    """NVIDIA's server on the same directory and options."""
    command = [
        "trtllm-serve",
        checkpoint,
        "--backend",
        "pytorch",
        "--tp_size",
        str(options["tensor_parallel_size"]),
    ]
    if arch.moe:
        command += ["--ep_size", str(options["moe_expert_parallel_size"])]
    command += [
        "--max_batch_size",
        str(options["max_batch_size"]),
        "--max_num_tokens",
        str(options["max_num_tokens"]),
        "--max_seq_len",
        str(options["max_seq_len"]),
        "--kv_cache_free_gpu_memory_fraction",
        str(options["kv_cache_config"]["free_gpu_memory_fraction"]),
        "--extra_llm_api_options",
        OPTIONS_FILE,
        "--reasoning_parser",
        "qwen3",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    return command


def build_engine_dir(
    model: str,
    gpu: str,
    gpus: int,
    quant: str,
    out: Path,
    checkpoint: Path | None = None,
    mtp: bool = False,
) -> dict[str, Any]:
    """Write the engine directory ``out``; return its manifest."""
    import yaml

    try:
        arch = lookup(model)
    except KeyError:
        known = ", ".join(name.lower() for name in MODELS)
        raise BuildError(f"unknown model {model!r}; the published ones: {known}") from None
    if gpu not in GPUS:
        raise BuildError(f"unknown GPU profile {gpu!r}; known: {', '.join(GPUS)}")
    if gpus not in GPU_COUNTS:
        raise BuildError(f"--gpus must be one of {', '.join(map(str, GPU_COUNTS))}")
    if quant not in ("fp8", "bf16"):
        raise BuildError("--quant must be fp8 or bf16")
    if checkpoint is not None:
        found = _checkpoint_quant(checkpoint)
        if found != quant:
            if quant == "fp8":
                raise BuildError(
                    f"{checkpoint} is not an FP8 checkpoint; quantise it first: "
                    "python -m engines quantize-fp8 SRC DST"
                )
            raise BuildError(f"{checkpoint} is an FP8 checkpoint; build it with --quant fp8")
    memory = plan(arch, gpu, gpus, quant)
    if not memory.fits:
        smallest = recommended(arch, gpu, quant)
        advice = f"; {smallest.gpus}× {gpu} fits" if smallest else f"; no {gpu} count up to 8 fits"
        raise BuildError(memory.refusal() + advice)
    if out.exists() and any(out.iterdir()):
        raise BuildError(f"{out} already exists; remove it or choose another folder")

    options = llm_options(arch, memory, mtp=mtp)
    check_options(options)
    checkpoint_in_dir = f"./{CHECKPOINT_LINK}"
    manifest = {
        "model": arch.name,
        "catalogue_name": arch.name.lower() + ("-fp8" if quant == "fp8" else ""),
        "quantisation": quant,
        "gpu": {"profile": gpu, "label": GPUS[gpu]["label"], "count": gpus},
        "backend": "trtllm",
        "min_tensorrt_llm": MIN_VERSION,
        "checkpoint": str(checkpoint.resolve()) if checkpoint else None,
        "contexts": list(CONTEXTS),
        "memory_plan": memory.manifest(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        (staging / OPTIONS_FILE).write_text(
            "# LLM API options (TensorRT-LLM PyTorch backend), written by python -m engines build\n"
            + yaml.safe_dump(options, sort_keys=False)
        )
        command = serve_command(checkpoint_in_dir, options, arch)
        (staging / SERVE_SCRIPT).write_text(
            "#!/bin/sh\n# NVIDIA's server on this engine directory (run it from here).\n"
            'cd "$(dirname "$0")"\nexec ' + shlex.join(command) + ' "$@"\n'
        )
        (staging / SERVE_SCRIPT).chmod(0o755)
        if checkpoint is not None:
            # Relative where it can be, so the folder can be mounted elsewhere (a container's
            # /engines) with its checkpoint beside it.
            target = os.path.relpath(checkpoint.resolve(), out.resolve())
            os.symlink(target, staging / CHECKPOINT_LINK)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def read_manifest(path: Path) -> dict[str, Any] | None:
    """An engine directory's manifest, or None where ``path`` holds none (or a broken one)."""
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest


def read_engine_dir(path: Path) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(manifest, LLM API options, checkpoint folder) of an engine directory."""
    import yaml

    manifest = read_manifest(path)
    if manifest is None or not (path / OPTIONS_FILE).exists():
        raise BuildError(
            f"{path} is not an engine directory (no {MANIFEST} / {OPTIONS_FILE}); "
            "write one with: python -m engines build MODEL --gpu GPU --gpus N OUT"
        )
    options = yaml.safe_load((path / OPTIONS_FILE).read_text()) or {}
    check_options(options)
    checkpoint = path / CHECKPOINT_LINK
    if not (checkpoint / "config.json").exists():
        raise BuildError(
            f"{path} has no checkpoint: link the {manifest.get('model')} checkpoint at "
            f"{checkpoint} (or rebuild with --checkpoint)"
        )
    return manifest, options, checkpoint


def profile_table(quant: str = "fp8") -> str:
    """Markdown: the recommended GPU count per model and GPU, with its memory plan."""
    header = "| model | " + " | ".join(GPUS[g]["label"] for g in GPUS) + " |"
    lines = [header, "|" + " --- |" * (len(GPUS) + 1)]
    for name, arch in MODELS.items():
        cells = []
        for gpu in GPUS:
            best = recommended(arch, gpu, quant)
            if best is None:
                cells.append("does not fit on 8")
                continue
            seqs = best.max_sequences
            cells.append(
                f"{best.gpus}× · {best.weights_gb_per_gpu:.0f} GB weights/GPU · "
                f"{seqs[CONTEXTS[0]]} × 32K / {seqs[CONTEXTS[1]]} × 262K"
            )
        lines.append(f"| {name} {quant.upper()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
