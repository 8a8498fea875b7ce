"""``python -m engines quantize-fp8``: the format Qwen's -FP8 releases use, shard by shard,
and never a half-written folder."""

from __future__ import annotations

import json
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engines.fp8.format import BLOCK, dequantise_blocks, is_quantised_weight
from engines.fp8.quantize import QuantiseError, quantise_checkpoint
from engines.qwen35.synth import ensure_synthesised

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY_MOE_VL = ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl"  # shared with `make run`
EXPERT = re.compile(
    r"^(?P<prefix>.+\.mlp\.experts)\.(?P<e>\d+)\.(?P<proj>gate|up|down)_proj\.weight$"
)


def _read(path: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle)
                tensors[key] = f.get_tensor(key)
    return tensors


def _write_source(
    dst: Path, tensors: dict[str, torch.Tensor], template: Path, shards: int = 2
) -> Path:
    """A checkpoint folder with ``tensors`` split into ``shards`` files and an index."""
    dst.mkdir(parents=True)
    for item in template.iterdir():
        if not item.name.endswith(".safetensors") and item.name != "SYNTHESISED.json":
            shutil.copy2(item, dst / item.name)
    names = sorted(tensors)
    weight_map = {}
    for number in range(shards):
        part = names[number::shards]
        filename = f"model-{number + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in part}, str(dst / filename))
        weight_map.update(dict.fromkeys(part, filename))
    (dst / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return dst


def _fuse_experts(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Qwen's bf16 upload layout: experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I]."""
    fused: dict[str, torch.Tensor] = {}
    experts: dict[str, dict[str, dict[int, torch.Tensor]]] = {}
    for name, tensor in tensors.items():
        match = EXPERT.match(name)
        if match:
            experts.setdefault(match["prefix"], {}).setdefault(match["proj"], {})[
                int(match["e"])
            ] = tensor
        else:
            fused[name] = tensor
    for prefix, projections in experts.items():
        count = len(projections["gate"])
        fused[f"{prefix}.gate_up_proj"] = torch.stack(
            [torch.cat([projections["gate"][e], projections["up"][e]]) for e in range(count)]
        )
        fused[f"{prefix}.down_proj"] = torch.stack([projections["down"][e] for e in range(count)])
    return fused


@pytest.fixture(scope="module")
def bf16_tensors() -> dict[str, torch.Tensor]:
    source = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    return {k: v.to(torch.bfloat16) for k, v in _read(source).items()}


@pytest.fixture(scope="module")
def qwen_upload(tmp_path_factory, bf16_tensors) -> Path:  # type: ignore[no-untyped-def]
    """The tiny MoE in the layout of Qwen's bf16 uploads: bf16, fused experts, two shards."""
    root = tmp_path_factory.mktemp("upload")
    return _write_source(root / "bf16", _fuse_experts(bf16_tensors), TINY_MOE_VL)


@pytest.fixture(scope="module")
def quantised(qwen_upload: Path) -> Path:
    dst = qwen_upload.parent / "fp8"
    quantise_checkpoint(qwen_upload, dst)
    return dst


def test_the_config_carries_the_published_quantization_config(quantised: Path) -> None:
    config = json.loads((quantised / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "fp8"
    assert quant["fmt"] == "e4m3"
    assert quant["activation_scheme"] == "dynamic"
    assert quant["weight_block_size"] == [128, 128]
    kept = set(quant["modules_to_not_convert"])
    layer0 = "model.language_model.layers.0"
    for module in (
        "lm_head",
        "model.embed_tokens",
        "model.language_model.embed_tokens",
        "model.language_model.norm",
        f"{layer0}.input_layernorm",
        f"{layer0}.post_attention_layernorm",
        f"{layer0}.mlp.gate",
        f"{layer0}.mlp.shared_expert_gate",
        f"{layer0}.linear_attn.in_proj_a",
        f"{layer0}.linear_attn.in_proj_b",
        f"{layer0}.linear_attn.conv1d",
        f"{layer0}.linear_attn.A_log",
        f"{layer0}.linear_attn.dt_bias",
        f"{layer0}.linear_attn.norm",
        "model.language_model.layers.3.self_attn.q_norm",
        "model.visual.blocks.0.attn.qkv",
        "model.visual.merger.linear_fc2",
        "model.visual.patch_embed.proj",
    ):
        assert module in kept, module
    # Nothing quantised is listed as kept.
    assert not any(is_quantised_weight(m + ".weight") for m in kept)
    # Everything else the source had is untouched.
    assert config["text_config"]["num_experts"] == 8
    assert (quantised / "tokenizer.json").exists() and (quantised / "chat_template.jinja").exists()


def test_projections_and_experts_are_fp8_with_a_scale_per_block(
    quantised: Path, bf16_tensors: dict[str, torch.Tensor]
) -> None:
    out = _read(quantised)
    fp8 = {n for n, t in out.items() if t.dtype == torch.float8_e4m3fn}
    # Every projection of every layer, and every expert one by one (as the FP8 releases).
    expected = {n for n in bf16_tensors if is_quantised_weight(n)}
    assert fp8 == expected
    assert len([n for n in fp8 if ".mlp.experts." in n]) == 4 * 8 * 3
    for name in fp8:
        scale = out[name + "_scale_inv"]
        rows, cols = out[name].shape
        assert scale.dtype == torch.float32
        assert scale.shape == (-(-rows // BLOCK), -(-cols // BLOCK))
    # The kept modules keep their precision and values exactly.
    for name, tensor in bf16_tensors.items():
        if name not in fp8:
            assert out[name].dtype == torch.bfloat16 and torch.equal(out[name], tensor), name
    # The index maps every output tensor to a shard that holds it.
    index = json.loads((quantised / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(out)
    assert set(index["weight_map"].values()) == {p.name for p in quantised.glob("*.safetensors")}


def test_dequantised_weights_are_the_source_to_fp8_precision(
    quantised: Path, bf16_tensors: dict[str, torch.Tensor]
) -> None:
    out = _read(quantised)
    for name, source in bf16_tensors.items():
        if not is_quantised_weight(name):
            continue
        restored = dequantise_blocks(out[name], out[name + "_scale_inv"], torch.float32)
        error = (restored - source.float()).norm() / source.float().norm()
        # e4m3 keeps 3 mantissa bits: at most 1/16 relative per element, ~2.5% RMS.
        assert error < 0.04, (name, float(error))


def test_fused_and_per_expert_sources_give_the_same_checkpoint(
    tmp_path: Path, quantised: Path, bf16_tensors: dict[str, torch.Tensor]
) -> None:
    per_expert = _write_source(tmp_path / "per-expert", bf16_tensors, TINY_MOE_VL, shards=3)
    quantise_checkpoint(per_expert, tmp_path / "fp8")
    a, b = _read(quantised), _read(tmp_path / "fp8")
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(
            a[name].view(torch.uint8) if a[name].dtype == torch.float8_e4m3fn else a[name],
            b[name].view(torch.uint8) if b[name].dtype == torch.float8_e4m3fn else b[name],
        ), name
    assert len(list((tmp_path / "fp8").glob("*.safetensors"))) == 3  # shard by shard


def test_transformers_reads_it_as_it_reads_the_published_fp8_checkpoints(quantised: Path) -> None:
    """transformers' own FP8 loader (dequantising, with no GPU) and ours give the same model."""
    from transformers import AutoModelForImageTextToText

    from engines.fp8.loader import load_fp8_model

    theirs = AutoModelForImageTextToText.from_pretrained(quantised, dtype=torch.bfloat16)
    ours = load_fp8_model(quantised, AutoModelForImageTextToText, torch.bfloat16, "cpu")
    ids = torch.tensor([[9707, 11, 1879, 0, 3555, 374, 279, 9396, 30]])
    with torch.no_grad():
        a = theirs(input_ids=ids).logits.float()
        b = ours(input_ids=ids).logits.float()
    cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
    assert float(cosine) > 0.999


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "engines", "quantize-fp8", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def _nothing_left(dst: Path) -> None:
    assert not dst.exists()
    assert not list(dst.parent.glob(f".{dst.name}.partial-*"))


def test_the_command_quantises_and_reports(tmp_path: Path, qwen_upload: Path) -> None:
    result = _cli(str(qwen_upload), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "shard 2/2" in result.stdout
    # 4 layers × 8 experts × 3 + shared experts 4 × 3 + attention 3 × 3 (DeltaNet) + 1 × 4
    assert re.search(r"wrote .*out: 121 FP8 weights", result.stdout), result.stdout
    assert (tmp_path / "out" / "config.json").exists()
    # An operator checks the result against its source with one more command.
    compared = subprocess.run(
        [sys.executable, "-m", "engines", "fp8-compare", str(qwen_upload), str(tmp_path / "out")]
        + ["--tokens", "4", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert re.search(r"worst_layer_cosine: 0\.99\d\d", compared.stdout), compared.stdout
    assert "expert_bytes_ratio: 0.50" in compared.stdout


def test_bad_input_gets_a_clear_error_and_no_output(
    tmp_path: Path, qwen_upload: Path, quantised: Path
) -> None:
    dst = tmp_path / "out"
    missing = _cli(str(tmp_path / "nowhere"), str(dst))
    assert missing.returncode == 2 and "is not a checkpoint folder" in missing.stderr
    _nothing_left(dst)

    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    wrong = _cli(str(llama), str(dst))
    assert wrong.returncode == 2 and "a llama checkpoint, not Qwen 3.5" in wrong.stderr
    _nothing_left(dst)

    again = _cli(str(quantised), str(dst))
    assert again.returncode == 2 and "already quantised" in again.stderr
    _nothing_left(dst)

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy2(qwen_upload / "config.json", no_weights / "config.json")
    empty = _cli(str(no_weights), str(dst))
    assert empty.returncode == 2 and "holds no model.safetensors" in empty.stderr
    _nothing_left(dst)

    inside = _cli(str(qwen_upload), str(qwen_upload / "fp8"))
    assert inside.returncode == 2 and "inside the source checkpoint" in inside.stderr
    assert not (qwen_upload / "fp8").exists()

    transposed = tmp_path / "transposed"
    tensors = {"model.language_model.layers.0.mlp.experts.down_proj": torch.zeros(8, 32, 64)}
    _write_source(transposed, tensors, qwen_upload, shards=1)
    wrong_shape = _cli(str(transposed), str(dst))
    assert (
        wrong_shape.returncode == 2
        and "config.json's experts need [8, 64, 32]" in wrong_shape.stderr
    )
    _nothing_left(dst)

    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    taken = _cli(str(qwen_upload), str(dst))
    assert taken.returncode == 2 and "already exists" in taken.stderr
    assert (dst / "keep.txt").read_text() == "mine"
    assert "Traceback" not in missing.stderr + wrong.stderr + again.stderr + taken.stderr


def test_a_full_disk_is_refused_before_writing(tmp_path: Path, qwen_upload: Path) -> None:
    """A real 4 MB filesystem: the checkpoint needs more, so nothing is written."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(QuantiseError, match="not enough disk space"):
            quantise_checkpoint(qwen_upload, small / "fp8")
        _nothing_left(small / "fp8")
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_running_out_of_space_mid_write_leaves_nothing(tmp_path: Path, qwen_upload: Path) -> None:
    """The kernel refuses writes past 1 MB (RLIMIT_FSIZE) after the space check has passed."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    dst = tmp_path / "out"
    result = _cli(str(qwen_upload), str(dst), preexec_fn=limit)
    assert result.returncode == 2, result.stderr
    assert "ran out of space" in result.stderr and "Traceback" not in result.stderr
    _nothing_left(dst)
