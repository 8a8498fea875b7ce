"""Engine backends by name. Imports are lazy: torch is only loaded by workers that need it."""

from __future__ import annotations

import importlib

from engines.base import Engine
from engines.catalogue import ModelSpec

BACKENDS: dict[str, str] = {
    "torch": "engines.torch_engine:TorchEngine",
    "fake-rate": "engines.fake:FakeRateEngine",
    "trtllm": "engines.trtllm.engine:TrtllmEngine",
}


def create_engine(spec: ModelSpec) -> Engine:
    """Load the engine for ``spec`` (slow: reads weights)."""
    try:
        target = BACKENDS[spec.backend]
    except KeyError:
        raise ValueError(
            f"model {spec.name!r} asks for unknown backend {spec.backend!r}; "
            f"known: {', '.join(sorted(BACKENDS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    engine: Engine = engine_class(spec)
    return engine
