"""Counting a prompt's tokens in the web process, before anything is queued.

The tokenizer comes from the model's checkpoint directory (or the converted
copy of a GGUF file). When none is on disk yet (a synthesised model whose
worker has not started) the count is skipped and the engine still refuses an
over-long prompt itself.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engines.base import ChatMessage
from engines.catalogue import ModelSpec, resolve_model_path

_tokenizers: dict[str, Any] = {}
_lock = threading.Lock()


def _tokenizer_dir(spec: ModelSpec) -> Path | None:
    try:
        path = resolve_model_path(spec.path)
    except FileNotFoundError:
        return None
    if path.is_file() and path.suffix == ".gguf":
        from engines.checkpoints import DEFAULT_CACHE_DIR, gguf_cache_dir

        path = gguf_cache_dir(path, Path(spec.options.get("cache_dir", DEFAULT_CACHE_DIR)))
    return path if (path / "tokenizer_config.json").exists() else None


def _tokenizer(spec: ModelSpec) -> Any | None:
    with _lock:
        if spec.name in _tokenizers:
            return _tokenizers[spec.name]
        directory = _tokenizer_dir(spec)
        if directory is None:
            return None
        from transformers import AutoTokenizer

        _tokenizers[spec.name] = AutoTokenizer.from_pretrained(directory)
        return _tokenizers[spec.name]


def count_prompt_tokens(
    spec: ModelSpec, messages: list[ChatMessage], chat_options: Mapping[str, Any]
) -> int | None:
    """Tokens the engine will prefill for ``messages``, or None if unknown here."""
    tokenizer = _tokenizer(spec)
    if tokenizer is None:
        return None
    encoded = tokenizer.apply_chat_template(
        [{"role": m.role, "content": _template_content(m.content)} for m in messages],
        add_generation_prompt=True,
        tokenize=True,
        **chat_options,
    )
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
    return len(ids)


def warm_tokenizers(specs: list[ModelSpec]) -> None:
    """Load the served models' tokenizers ahead of the first request (a second or two each)."""
    for spec in specs:
        try:
            _tokenizer(spec)
        except Exception:  # a broken checkpoint shows up on first use, with its error
            continue


def _template_content(content: Any) -> Any:
    # Media counts as its placeholder here; the engine knows the real number of vision tokens.
    if isinstance(content, str):
        return content
    return [
        {"type": p["type"]}
        if p["type"] in ("image", "video")
        else {"type": "text", "text": p["text"]}
        for p in content
    ]
