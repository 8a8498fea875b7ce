"""The Qwen 3.5 chat template (ours), loaded from the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def chat_template() -> str:
    return (Path(__file__).parent / "chat_template.jinja").read_text()
