"""``python -m engines build``: engine directories per GPU profile, with memory plans."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engines.qwen35.synth import ensure_synthesised
from engines.trtllm.build import BuildError, build_engine_dir, profile_table, read_engine_dir
from engines.trtllm.models import MODELS
from engines.trtllm.options import known, unknown_keys
from engines.trtllm.plan import GPU_COUNTS, GPUS, llm_options, plan

ROOT = Path(__file__).resolve().parents[2]
TINY_MOE_VL = ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl"


def test_parameter_counts_match_the_published_sizes() -> None:
    """Computed from the architectures; never below the name, within 10% for ≥ 9B."""
    for name, arch in MODELS.items():
        size = float(re.search(r"-(\d+(?:\.\d+)?)B", name)[1]) * 1e9  # type: ignore[index]
        total = arch.total_parameters()
        assert total >= 0.95 * size, name
        if size >= 9e9:
            assert total <= 1.10 * size, (name, total)


def test_every_profile_that_fits_writes_only_options_the_llm_api_accepts() -> None:
    """All eight models × H100/H200/B200 × 1/2/4/8 GPUs × FP8/bf16, checked key by key
    against the list read from TensorRT-LLM (engines/trtllm/llm_api_options.json)."""
    assert known()["tensorrt_llm_version"].startswith("main@")
    fitted = 0
    for arch in MODELS.values():
        for gpu in GPUS:
            for count in GPU_COUNTS:
                for quant in ("fp8", "bf16"):
                    p = plan(arch, gpu, count, quant)
                    if not p.fits:
                        continue
                    fitted += 1
                    options = llm_options(arch, p)
                    assert unknown_keys(options) == [], (arch.name, gpu, count, quant)
                    # Round-trips through YAML as written.
                    assert yaml.safe_load(yaml.safe_dump(options)) == options
                    kv = options["kv_cache_config"]
                    assert kv["enable_block_reuse"] is False
                    assert kv["dtype"] == ("fp8" if quant == "fp8" else "auto")
                    assert options["max_seq_len"] == 262_144
                    assert (
                        options["cuda_graph_config"]["batch_sizes"][-1] == options["max_batch_size"]
                    )
                    if arch.moe:
                        backend = options["moe_config"]["backend"]
                        hopper = GPUS[gpu]["family"] == "hopper"
                        assert backend == ("CUTLASS" if hopper or quant != "fp8" else "DEEPGEMM")
                        assert options["moe_expert_parallel_size"] == count
                    else:
                        assert "moe_config" not in options
                    assert "speculative_config" not in options  # MTP is opt-in
                    with_mtp = llm_options(arch, p, mtp=True)
                    assert unknown_keys(with_mtp) == []
                    assert with_mtp["speculative_config"] == {
                        "decoding_type": "MTP",
                        "num_nextn_predict_layers": 1,
                        "enable_penalty": True,  # the presets' presence_penalty
                    }
    assert fitted > 100


def test_a_typo_in_an_option_is_caught() -> None:
    arch = MODELS["Qwen3.5-35B-A3B"]
    options = llm_options(arch, plan(arch, "h200", 1, "fp8"))
    options["kv_cache_config"]["free_gpu_mem_fraction"] = 0.5
    options["max_batch_sizes"] = 4
    options["moe_config"]["backend"] = "WIDEEP"
    assert unknown_keys(options) == [
        "max_batch_sizes",
        "kv_cache_config.free_gpu_mem_fraction",
        "moe_config.backend='WIDEEP'",
    ]


def test_what_cannot_fit_is_refused_with_numbers(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        build_engine_dir("qwen3.5-397b-a17b", "h200", 1, "fp8", tmp_path / "out")
    message = str(caught.value)
    assert "Qwen3.5-397B-A17B fp8 does not fit on 1× h200" in message
    assert re.search(r"weights 40\d\.\d GB per GPU \+ 8 GB reserve of 141 GB", message)
    assert "4× h200 fits" in message
    assert not (tmp_path / "out").exists()
    # More GPUs: the weights split, and the plan says how many sequences fit.
    four = plan(MODELS["Qwen3.5-397B-A17B"], "h200", 4, "fp8")
    assert four.fits and four.weights_gb_per_gpu < 141
    assert four.max_sequences[32_768] > four.max_sequences[262_144] >= 1


def test_an_engine_directory_holds_checkpoint_options_command_and_plan(tmp_path: Path) -> None:
    checkpoint = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    out = tmp_path / "engine"
    result = subprocess.run(
        [sys.executable, "-m", "engines", "build", "qwen3.5-35b-a3b", str(out)]
        + ["--gpu", "h100", "--gpus", "2", "--checkpoint", str(checkpoint)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "on 2× h100" in result.stdout and "sequences at 32K" in result.stdout
    manifest, options, linked = read_engine_dir(out)
    assert linked.resolve() == checkpoint.resolve()
    assert manifest["model"] == "Qwen3.5-35B-A3B" and manifest["quantisation"] == "bf16"
    assert manifest["gpu"] == {"profile": "h100", "label": "H100 SXM 80 GB", "count": 2}
    memory = manifest["memory_plan"]
    assert memory["attention_dp"] is True
    assert set(memory["max_sequences"]) == {"32k", "262k"}
    assert memory["weights_gb_per_gpu"] > 30 and memory["kv_cache_gb_per_gpu"] > 0
    assert options["tensor_parallel_size"] == 2 and options["enable_attention_dp"] is True
    serve = (out / "trtllm-serve.sh").read_text()
    assert "trtllm-serve ./checkpoint --backend pytorch --tp_size 2 --ep_size 2" in serve
    assert "--extra_llm_api_options llm_options.yaml" in serve
    assert f"--max_batch_size {options['max_batch_size']}" in serve

    # An FP8 profile needs an FP8 checkpoint; a taken folder is not overwritten.
    wrong = subprocess.run(
        [sys.executable, "-m", "engines", "build", "qwen3.5-35b-a3b", str(tmp_path / "fp8")]
        + ["--gpu", "h200", "--quant", "fp8", "--checkpoint", str(checkpoint)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2 and "not an FP8 checkpoint; quantise it first" in wrong.stderr
    with pytest.raises(BuildError, match="already exists"):
        build_engine_dir("qwen3.5-35b-a3b", "h100", 2, "bf16", out, checkpoint)


def test_an_engine_directory_without_its_checkpoint_is_refused(tmp_path: Path) -> None:
    build_engine_dir("qwen3.5-9b", "h100", 1, "fp8", tmp_path / "e")
    with pytest.raises(BuildError, match="has no checkpoint"):
        read_engine_dir(tmp_path / "e")
    with pytest.raises(BuildError, match="not an engine directory"):
        read_engine_dir(tmp_path)
    assert json.loads((tmp_path / "e" / "manifest.json").read_text())["checkpoint"] is None


def test_the_profile_table_covers_every_model_and_gpu() -> None:
    table = profile_table("fp8")
    rows = [line for line in table.splitlines() if line.startswith("| Qwen3.5")]
    assert len(rows) == 8
    assert rows[0].startswith("| Qwen3.5-397B-A17B FP8 | 8× ·")  # on H100
    assert "4× ·" in rows[0].split("|")[3]  # H200
    assert all(row.count("×") >= 3 for row in rows)
