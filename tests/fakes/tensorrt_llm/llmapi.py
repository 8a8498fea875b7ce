"""FAKE ``tensorrt_llm.llmapi``: strict option models (unknown keys raise, as pydantic's
``extra="forbid"`` does in the real library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_NAMES: dict[str, Any] = json.loads(
    (
        Path(__file__).resolve().parents[3] / "engines" / "trtllm" / "llm_api_options.json"
    ).read_text()
)


def _strict(owner: str, given: dict[str, Any], allowed: Any) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"{owner}: extra inputs are not permitted: {unknown}")


class _Config:
    section = ""

    def __init__(self, **kwargs: Any) -> None:
        _strict(type(self).__name__, kwargs, _NAMES[self.section])
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"


class KvCacheConfig(_Config):
    section = "kv_cache_config"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("dtype", "auto") not in _NAMES["kv_cache_dtypes"]:
            raise ValueError(f"KvCacheConfig: bad dtype {kwargs['dtype']!r}")


class CudaGraphConfig(_Config):
    section = "cuda_graph_config"


class MoeConfig(_Config):
    section = "moe_config"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("backend", "AUTO") not in _NAMES["moe_backends"]:
            raise ValueError(f"MoeConfig: bad backend {kwargs['backend']!r}")


class MTPDecodingConfig(_Config):
    section = "speculative_config.MTP"
