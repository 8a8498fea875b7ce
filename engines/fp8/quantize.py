"""``python -m engines quantize-fp8 SRC DST``: a bf16/fp16 Qwen 3.5 checkpoint → block-scale FP8.

Shard by shard: each source shard is opened memory-mapped, its tensors are quantised one
at a time and the matching output shard is written before the next is read, so peak
memory is about one source shard plus its (smaller) output, not the model
(``bench/fp8_quantize.py`` measures it). The output is written to a hidden staging folder
beside DST and renamed into place at the end: DST is either complete or absent.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engines.fp8.format import (
    FUSED_EXPERTS,
    SUPPORTED_MODEL_TYPES,
    is_quantised_weight,
    module_name,
    quantise_blocks,
    quantization_config,
    scale_name,
    scale_shape,
)
from engines.fp8.loader import shard_files

INDEX = "model.safetensors.index.json"
SPACE_MARGIN = 64 * 1024 * 1024  # config, tokenizer and filesystem slack


class QuantiseError(Exception):
    """Bad input or environment: the message says what and what to do."""


def _read_config(src: Path) -> dict[str, Any]:
    if not src.is_dir():
        raise QuantiseError(f"{src} is not a checkpoint folder")
    config_path = src / "config.json"
    if not config_path.exists():
        raise QuantiseError(f"{src} has no config.json: not a Hugging Face checkpoint")
    try:
        config: dict[str, Any] = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise QuantiseError(f"{config_path} is not valid JSON: {exc}") from exc
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise QuantiseError(
            f"{src} is a {model_type or 'unknown'!s} checkpoint, not Qwen 3.5 "
            f"(model_type must be one of {', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
        )
    for holder in (config, config.get("text_config") or {}):
        quant = holder.get("quantization_config")
        if quant:
            raise QuantiseError(
                f"{src} is already quantised (quant_method {quant.get('quant_method')!r}); "
                "quantise the bf16 checkpoint instead"
            )
    return config


def _plan(key: str, shape: list[int], dtype: str) -> Iterator[tuple[str, list[int], str]]:
    """(name, shape, dtype) of what ``key`` becomes in the output."""
    fused = FUSED_EXPERTS.match(key)
    if fused and len(shape) == 3:
        experts, rows, cols = shape
        parts = (
            [("gate_proj", rows // 2), ("up_proj", rows // 2)]
            if fused["kind"] == "gate_up_proj"
            else [("down_proj", rows)]
        )
        for expert in range(experts):
            for proj, out_rows in parts:
                name = f"{fused['prefix']}.{expert}.{proj}.weight"
                yield name, [out_rows, cols], "F8_E4M3"
                yield scale_name(name), list(scale_shape(out_rows, cols)), "F32"
    elif is_quantised_weight(key) and len(shape) == 2:
        yield key, shape, "F8_E4M3"
        yield scale_name(key), list(scale_shape(*shape)), "F32"
    else:
        yield key, shape, dtype


_BYTES = {"F8_E4M3": 1, "F32": 4, "BF16": 2, "F16": 2, "F64": 8, "I64": 8, "I32": 4, "BOOL": 1}


def _nbytes(shape: list[int], dtype: str) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count * _BYTES.get(dtype, 4)


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = config.get("text_config") or config
    return text


def _check_fused(key: str, shape: list[int], text: dict[str, Any]) -> None:
    """A fused expert tensor must be [E, 2I, H] (gate_up) or [E, H, I] (down), per the config."""
    experts, hidden = text.get("num_experts"), text.get("hidden_size")
    inter = text.get("moe_intermediate_size")
    if experts is None or hidden is None or inter is None:
        raise QuantiseError(f"{key} holds fused experts but config.json does not describe them")
    want = (
        [experts, 2 * inter, hidden] if key.endswith("gate_up_proj") else [experts, hidden, inter]
    )
    if shape != want:
        raise QuantiseError(
            f"{key} has shape {shape}; config.json's experts need {want} "
            "(experts, output, input): not a layout this quantiser knows"
        )


def _survey(shards: list[Path], text: dict[str, Any]) -> tuple[int, int]:
    """(bytes the output will take, bytes of the largest source shard); refuses FP8 input."""
    from safetensors import safe_open

    total = 0
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                piece = f.get_slice(key)
                dtype = piece.get_dtype()
                if dtype.startswith("F8"):
                    raise QuantiseError(f"{shard.name} already holds FP8 tensors ({key})")
                if FUSED_EXPERTS.match(key):
                    _check_fused(key, list(piece.get_shape()), text)
                for _, shape, out_dtype in _plan(key, list(piece.get_shape()), dtype):
                    total += _nbytes(shape, out_dtype)
    return total, max(shard.stat().st_size for shard in shards)


def _convert(key: str, handle: Any) -> Iterator[tuple[str, Any]]:
    """The output tensors for source tensor ``key`` of the open shard ``handle``.

    Fused expert tensors are read one expert at a time from the memory-mapped shard, so
    the largest source tensor is never copied whole.
    """
    fused = FUSED_EXPERTS.match(key)
    piece = handle.get_slice(key)
    shape = piece.get_shape()
    if fused and len(shape) == 3:
        half = shape[1] // 2
        for expert in range(shape[0]):
            if fused["kind"] == "gate_up_proj":  # [gate; up], as transformers chunks it
                both = piece[expert : expert + 1][0]
                pieces = [("gate_proj", both[:half]), ("up_proj", both[half:])]
            else:
                pieces = [("down_proj", piece[expert : expert + 1][0])]
            for proj, weight in pieces:
                name = f"{fused['prefix']}.{expert}.{proj}.weight"
                q, s = quantise_blocks(weight)
                yield name, q
                yield scale_name(name), s
        return
    tensor = handle.get_tensor(key)
    if is_quantised_weight(key) and tensor.ndim == 2:
        q, s = quantise_blocks(tensor)
        yield key, q
        yield scale_name(key), s
    else:
        yield key, tensor


def quantise_checkpoint(
    src: Path, dst: Path, *, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Write the FP8 checkpoint for ``src`` at ``dst``; return a summary of what was done."""
    from safetensors import safe_open

    src, dst = Path(src), Path(dst)
    config = _read_config(src)
    try:
        shards = shard_files(src)
    except FileNotFoundError as exc:
        raise QuantiseError(str(exc)) from exc
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise QuantiseError(f"{dst} already exists; remove it or choose another folder")
    if dst.resolve().is_relative_to(src.resolve()):
        raise QuantiseError(f"{dst} is inside the source checkpoint {src}; write it elsewhere")
    out_bytes, largest_shard = _survey(shards, _text_config(config))
    out_bytes += sum(
        item.stat().st_size
        for item in src.rglob("*")
        if item.is_file() and not item.name.endswith(".safetensors")
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    needed = out_bytes + SPACE_MARGIN
    free = shutil.disk_usage(dst.parent).free
    if free < needed:
        raise QuantiseError(
            f"not enough disk space in {dst.parent}: the FP8 checkpoint needs about "
            f"{needed / 1e9:.2f} GB, {free / 1e9:.2f} GB is free"
        )

    staging = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.partial-"))
    try:
        weight_map: dict[str, str] = {}
        kept_modules: list[str] = []
        quantised = 0
        for number, shard in enumerate(shards, 1):
            tensors: dict[str, Any] = {}
            with safe_open(str(shard), framework="pt") as f:
                metadata = f.metadata() or {}
                for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                    for name, tensor in _convert(key, f):
                        tensors[name] = tensor
                        weight_map[name] = shard.name
                        if name.endswith("_scale_inv"):
                            quantised += 1
                        elif tensor.dtype.is_floating_point and tensor.element_size() > 1:
                            kept_modules.append(module_name(name))
            _save(tensors, staging / shard.name, {**metadata, "format": "pt"})
            del tensors
            progress(f"shard {number}/{len(shards)}: {shard.name}")

        kept = ["lm_head", "model.embed_tokens"]
        kept += [m for m in dict.fromkeys(kept_modules) if m not in kept]
        config["quantization_config"] = quantization_config(kept)
        for item in src.iterdir():
            if item.name.endswith(".safetensors") or item.name in {INDEX, "config.json"}:
                continue
            if item.is_dir():
                shutil.copytree(item, staging / item.name)
            else:
                shutil.copy2(item, staging / item.name)
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if (src / INDEX).exists():
            index = json.loads((src / INDEX).read_text())
            index["weight_map"] = dict(sorted(weight_map.items()))
            index.setdefault("metadata", {})["total_size"] = sum(
                (staging / name).stat().st_size for name in set(weight_map.values())
            )
            (staging / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        staging.chmod(0o755)
        if dst.exists():
            dst.rmdir()  # an empty folder the caller made for us
        os.rename(staging, dst)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise QuantiseError(
                f"ran out of space writing the FP8 checkpoint ({exc.strerror}); nothing was "
                f"left at {dst}"
            ) from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "shards": len(shards),
        "quantised_tensors": quantised,
        "kept_modules": len(kept),
        "bytes_in": sum(shard.stat().st_size for shard in shards),
        "bytes_out": sum((dst / shard.name).stat().st_size for shard in shards),
        "largest_shard": largest_shard,
    }


def _save(tensors: dict[str, Any], path: Path, metadata: dict[str, str]) -> None:
    """safetensors' writer, its I/O failures raised as the OSError they are."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code is None:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from exc
