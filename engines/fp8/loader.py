"""Load a block-scale FP8 checkpoint (ours or a published ``-FP8`` one) into the torch engine.

transformers builds the model's skeleton with no weights (``init_empty_weights``: parameters
on the meta device, buffers such as the rotary tables real). Every linear layer the
checkpoint stores with a ``weight_scale_inv`` becomes an ``Fp8Linear``, every routed-expert
block an ``Fp8Experts``; then the tensors are read shard by shard straight into place, so
memory never holds a dequantised copy. Tensors the model has no place for (the MTP head,
which transformers does not run) are skipped, as transformers skips them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engines.fp8.format import SCALE_SUFFIX, check_fp8_config
from engines.fp8.modules import Fp8Experts, Fp8Linear

_EXPERT_KEY = re.compile(
    r"^(?P<module>.+\.mlp\.experts)\.(?P<expert>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)"
    r"\.(?P<kind>weight|weight_scale_inv)$"
)


def shard_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [path / name for name in sorted(set(weight_map.values()))]
    single = path / "model.safetensors"
    if single.exists():
        return [single]
    raise FileNotFoundError(f"{path} holds no model.safetensors or model.safetensors.index.json")


def tensor_names(shards: list[Path]) -> list[str]:
    from safetensors import safe_open

    names: list[str] = []
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            names.extend(f.keys())
    return names


def _swap_modules(model: nn.Module, names: set[str], dtype: torch.dtype) -> None:
    quantised = {
        n[: -len("." + "weight" + SCALE_SUFFIX)] for n in names if n.endswith(SCALE_SUFFIX)
    }
    for name, module in list(model.named_modules()):
        parent_name, _, child = name.rpartition(".")
        replacement: nn.Module | None = None
        if isinstance(module, nn.Linear) and _checkpoint_name(name, quantised) is not None:
            replacement = Fp8Linear(
                module.in_features, module.out_features, module.bias is not None, "meta", dtype
            )
        elif (
            hasattr(module, "gate_up_proj")
            and hasattr(module, "num_experts")
            and _checkpoint_name(f"{name}.0.gate_proj", quantised) is not None
        ):
            replacement = Fp8Experts(
                module.num_experts,
                module.hidden_dim,
                module.intermediate_dim,
                "meta",
                module.act_fn,
            )
        if replacement is not None:
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, replacement)


def _checkpoint_name(model_name: str, checkpoint_names: set[str]) -> str | None:
    """The checkpoint's name for a model module or tensor (text-only models drop a prefix)."""
    if model_name in checkpoint_names:
        return model_name
    for model_prefix, checkpoint_prefix in (("model.", "model.language_model."),):
        if model_name.startswith(model_prefix):
            candidate = checkpoint_prefix + model_name[len(model_prefix) :]
            if candidate in checkpoint_names:
                return candidate
    return None


def _model_name(checkpoint_name: str, model_names: set[str]) -> str | None:
    if checkpoint_name in model_names:
        return checkpoint_name
    if checkpoint_name.startswith("model.language_model."):
        candidate = "model." + checkpoint_name[len("model.language_model.") :]
        if candidate in model_names:
            return candidate
    return None


def _set_parameter(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    old = getattr(module, attr)
    if old.shape != tensor.shape:
        raise ValueError(
            f"{name}: the checkpoint has shape {tuple(tensor.shape)}, the model {tuple(old.shape)}"
        )
    if isinstance(old, nn.Parameter):
        setattr(module, attr, nn.Parameter(tensor, requires_grad=False))
    else:
        module.register_buffer(attr, tensor)


def load_fp8_model(path: Path, auto_class: Any, dtype: torch.dtype, device: str) -> Any:
    """Build ``auto_class``'s model for the FP8 checkpoint at ``path`` on ``device``."""
    from accelerate import init_empty_weights
    from safetensors import safe_open
    from transformers import AutoConfig

    raw = json.loads((path / "config.json").read_text())
    check_fp8_config(raw)
    config = AutoConfig.from_pretrained(path)
    for holder in (config, getattr(config, "text_config", None)):
        if holder is not None and hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    with init_empty_weights():
        model = auto_class.from_config(config, dtype=dtype)
    shards = shard_files(path)
    checkpoint_names = set(tensor_names(shards))
    _swap_modules(model, checkpoint_names, dtype)

    params = dict(model.named_parameters())
    model_names = set(params) | {name for name, _ in model.named_buffers()}
    experts = {name: m for name, m in model.named_modules() if isinstance(m, Fp8Experts)}
    filled: dict[tuple[str, str], int] = {}
    for shard in shards:
        with safe_open(str(shard), framework="pt", device=str(device)) as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                match = _EXPERT_KEY.match(key)
                module_name = match and _model_name(match["module"], set(experts))
                if match and module_name:
                    module = experts[module_name]
                    attr = match["proj"] + ("" if match["kind"] == "weight" else SCALE_SUFFIX)
                    target = getattr(module, attr)
                    if target.is_meta:
                        setattr(
                            module,
                            attr,
                            nn.Parameter(
                                torch.empty_like(target, device=device), requires_grad=False
                            ),
                        )
                        target = getattr(module, attr)
                    tensor = f.get_tensor(key)
                    expert = int(match["expert"])
                    if expert >= module.num_experts or tensor.shape != target.shape[1:]:
                        raise ValueError(
                            f"{key}: shape {tuple(tensor.shape)} does not fit the model's "
                            f"{module.num_experts} experts of {tuple(target.shape[1:])}"
                        )
                    target.data[expert].copy_(tensor.to(target.dtype))
                    filled[module_name, attr] = filled.get((module_name, attr), 0) + 1
                    continue
                name = _model_name(key, model_names)
                if name is None:
                    continue  # e.g. mtp.*: transformers does not run the MTP head
                tensor = f.get_tensor(key)
                if name.endswith(SCALE_SUFFIX):
                    tensor = tensor.to(torch.float32)
                elif tensor.is_floating_point() and tensor.dtype != torch.float8_e4m3fn:
                    tensor = tensor.to(dtype)
                _set_parameter(model, name, tensor)

    if getattr(config.get_text_config(), "tie_word_embeddings", False):
        model.tie_weights()
    missing = [name for name, p in model.named_parameters() if p.is_meta]
    missing += [
        f"{name}.{attr}"
        for name, module in experts.items()
        for attr in [n for n, _ in module.named_parameters()]
        if filled.get((name, attr), 0) != module.num_experts
    ]
    if missing:
        raise ValueError(
            f"the FP8 checkpoint at {path} lacks {len(missing)} weights the model needs, "
            f"e.g. {', '.join(missing[:3])}"
        )
    model.to(device)
    model.eval()
    return model
