"""What TensorRT-LLM's LLM API accepts, kept with the version it was read from.

``llm_api_options.json`` lists the LLM API's option names (``TorchLlmArgs`` and the nested
configs the builder writes), the MoE backends and KV-cache dtypes, and ``SamplingParams``'
fields. The real option models forbid unknown keys; checking here turns a typo into a
build error instead of a worker that fails on a GPU host.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

# TensorRT-LLM runs Qwen 3.5 on its PyTorch backend from 1.3.0rc9 on.
MIN_VERSION = "1.3.0rc9"
NESTED = ("kv_cache_config", "cuda_graph_config", "moe_config")


@cache
def known() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (Path(__file__).with_name("llm_api_options.json")).read_text()
    )
    return data


def unknown_keys(options: dict[str, Any]) -> list[str]:
    """Every key (dotted for nested configs) the LLM API would reject."""
    names = known()
    bad = [key for key in options if key not in names["llm_args"]]
    for section in NESTED:
        value = options.get(section)
        if isinstance(value, dict):
            bad += [f"{section}.{key}" for key in value if key not in names[section]]
    spec = options.get("speculative_config")
    if isinstance(spec, dict):
        if spec.get("decoding_type") != "MTP":
            bad.append(f"speculative_config.decoding_type={spec.get('decoding_type')!r}")
        bad += [f"speculative_config.{k}" for k in spec if k not in names["speculative_config.MTP"]]
    moe = options.get("moe_config") or {}
    if "backend" in moe and moe["backend"] not in names["moe_backends"]:
        bad.append(f"moe_config.backend={moe['backend']!r}")
    kv = options.get("kv_cache_config") or {}
    if "dtype" in kv and kv["dtype"] not in names["kv_cache_dtypes"]:
        bad.append(f"kv_cache_config.dtype={kv['dtype']!r}")
    return bad


def check_options(options: dict[str, Any]) -> None:
    bad = unknown_keys(options)
    if bad:
        raise ValueError(
            f"not LLM API options (TensorRT-LLM {known()['tensorrt_llm_version']}): "
            + ", ".join(bad)
        )


def version_at_least(installed: str, required: str) -> bool:
    from packaging.version import Version

    return Version(installed) >= Version(required)
