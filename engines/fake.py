"""FakeRateEngine: a named fake that emits tokens at a fixed, known rate.

It stands in for a GPU engine when measuring the streaming pipeline alone
(bench/stream_overhead.py) and in tests that need long, deterministic
streams. It is not a language model: token ``i`` is the word ``t<i>``.
Options (catalogue ``options``): ``rate`` tokens/s per request (default 50;
the ``FAKE_RATE`` environment variable overrides it, for benchmarks),
``ttft_ms`` delay before the first token (default 0), ``pattern`` a phrase
whose words it cycles through instead (a degenerate, looping "model"),
``max_batch`` concurrent requests it admits (default 64), ``echo`` (true: it repeats
the last user message, word by word with its spacing, then stops; the browser tests
use it to put chosen text, Markdown or hostile HTML, in a reply).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator

from engines.base import (
    FINISH_CANCELLED,
    FINISH_LENGTH,
    FINISH_STOP,
    Delta,
    EngineInfo,
    GenerationRequest,
)
from engines.catalogue import ModelSpec


class FakeRateEngine:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.rate = float(os.environ.get("FAKE_RATE") or spec.options.get("rate", 50.0))
        self.max_batch = int(spec.options.get("max_batch", 64))
        self.ttft = float(spec.options.get("ttft_ms", 0.0)) / 1000.0
        self.pattern = str(spec.options.get("pattern", "")).split()
        self.echo = bool(spec.options.get("echo", False))
        self._aborted: set[str] = set()
        self._active = 0
        self._tokens_generated = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self._active += 1
        prompt_tokens = _count(request)
        words = _echoed(request) if self.echo else None
        limit = (
            request.params.max_tokens
            if words is None
            else min(len(words), request.params.max_tokens)
        )
        try:
            start = time.monotonic() + self.ttft
            if limit == 0:
                yield Delta(prompt_tokens=prompt_tokens, finish_reason=FINISH_STOP)
                return
            for i in range(limit):
                # Absolute deadlines keep the rate exact however late the loop wakes.
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if request.request_id in self._aborted:
                    yield Delta(output_tokens=i, finish_reason=FINISH_CANCELLED)
                    return
                self._tokens_generated += 1
                last = i + 1 == limit
                if words is not None:
                    text = words[i]
                    end = FINISH_LENGTH if limit < len(words) else FINISH_STOP
                else:
                    text = f"{self.pattern[i % len(self.pattern)]} " if self.pattern else f"t{i} "
                    end = FINISH_LENGTH
                yield Delta(
                    text=text,
                    output_tokens=i + 1,
                    prompt_tokens=prompt_tokens if i == 0 else 0,
                    finish_reason=end if last else None,
                )
        finally:
            self._active -= 1
            self._aborted.discard(request.request_id)

    def abort(self, request_id: str) -> None:
        self._aborted.add(request_id)

    def capacity(self) -> int:
        return max(0, self.max_batch - self._active)

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return _count(request)

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.spec.name,
            backend="fake-rate",
            context_length=self.spec.context_length,
            max_batch=self.max_batch,
            active_requests=self._active,
            tokens_generated=self._tokens_generated,
            extra={"rate": self.rate},
        )

    def close(self) -> None:
        pass


def _echoed(request: GenerationRequest) -> list[str]:
    """The last user message's text cut into "tokens": each word with the spacing before it."""
    for message in reversed(request.messages):
        if message.role == "user":
            content = message.content
            if not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
            return re.findall(r"\s*\S+|\s+$", content)
    return []


def _count(request: GenerationRequest) -> int:
    """The fake's "tokens": words of text, one per media part."""
    return sum(
        len(m.content.split()) if isinstance(m.content, str) else len(m.content)
        for m in request.messages
    )
