"""Loading a model and tokenizer from a checkpoint directory or a GGUF file.

GGUF files are dequantised by transformers on load, which takes tens of
seconds (the tokenizer conversion alone is slow); the result is saved once
as a regular checkpoint directory under ``cache_dir`` so later worker starts
take under a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qwen35-playground"
)


def gguf_cache_dir(gguf: Path, cache_dir: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir / f"{gguf.stem}-{key[:12]}"


def materialise_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Return a checkpoint directory holding ``gguf`` dequantised (made once, atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = gguf_cache_dir(gguf, cache_dir)
    if (target / "config.json").exists():
        return target
    log.info("converting %s to a checkpoint in %s (once)", gguf.name, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are plain float tensors now; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".staging-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, target)
        except OSError:  # another process finished first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_causal_lm(
    path: Path, cache_dir: Path, dtype: str = "float32", device: str = "cpu"
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for inference from a checkpoint directory or GGUF file.

    Block-scale FP8 checkpoints (``quantization_config.quant_method == "fp8"``, ours or
    Qwen's published ones) load through ``engines.fp8.loader``: FP8 stays FP8 in memory.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    if path.is_file() and path.suffix == ".gguf":
        path = materialise_gguf(path, cache_dir)
    tokenizer = load_tokenizer(path)
    config = json.loads((path / "config.json").read_text())
    # Vision-language checkpoints (every published Qwen 3.5) load whole, encoder included.
    auto = AutoModelForImageTextToText if "vision_config" in config else AutoModelForCausalLM
    from engines.fp8.format import is_fp8_config

    if is_fp8_config(config):
        from engines.fp8.loader import load_fp8_model

        return load_fp8_model(path, auto, getattr(torch, dtype), device), tokenizer
    model: Any = auto.from_pretrained(path, dtype=getattr(torch, dtype))
    model.to(device)
    model.eval()
    return model, tokenizer


def load_tokenizer(path: Path) -> Any:
    """The tokenizer of checkpoint directory ``path``, encoding as its tokenizer.json says.

    transformers chooses the tokenizer class by model type, whatever
    tokenizer_config.json names (``Qwen3_5Tokenizer`` for every Qwen 3.5 checkpoint),
    and such classes rebuild the BPE from the file's vocabulary and merges with their
    own options: the BPE's ``ignore_merges`` flag is lost. A tokenizer converted from
    tiktoken ranks needs it, as tiktoken looks a whole pre-token up in the vocabulary
    before merging: 201 of Qwen 3.5's 248,044 tokens (" بزرگ", "加拿大") are no merge
    of two others, so without it " بزرگ" came out as ' ب', 'زر', 'گ'.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    _keep_ignore_merges(tokenizer, path / "tokenizer.json")
    return tokenizer


def _keep_ignore_merges(tokenizer: Any, tokenizer_json: Path) -> None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = getattr(backend, "model", None)
    if model is None or not hasattr(model, "ignore_merges") or not tokenizer_json.is_file():
        return
    with tokenizer_json.open(encoding="utf-8") as handle:
        described = json.load(handle).get("model", {})
    if (
        described.get("type") == "BPE"
        and described.get("ignore_merges")
        and not model.ignore_merges
    ):
        model.ignore_merges = True


def load_processor(path: Path, tokenizer: Any | None = None) -> Any | None:
    """The image/video processor of a vision-language checkpoint, or None for text-only ones.

    ``tokenizer`` (``load_tokenizer``'s) is the one the processor encodes with; without
    it the processor loads its own, as ``load_tokenizer`` does.
    """
    if not (path.is_dir() and (path / "preprocessor_config.json").exists()):
        return None
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path, tokenizer=tokenizer or load_tokenizer(path))
