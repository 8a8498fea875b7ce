"""FakeRateEngine: a named fake that emits tokens at a fixed, known rate.

It stands in for a GPU engine when measuring the streaming pipeline alone
(bench/stream_overhead.py) and in tests that need long, deterministic
streams. It is not a language model: token ``i`` is the word ``t<i>``.
Options (catalogue ``options``): ``rate`` tokens/s per request (default 50),
``ttft_ms`` delay before the first token (default 0), ``pattern`` a phrase
whose words it cycles through instead (a degenerate, looping "model").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from engines.base import (
    FINISH_CANCELLED,
    FINISH_LENGTH,
    Delta,
    EngineInfo,
    GenerationRequest,
)
from engines.catalogue import ModelSpec


class FakeRateEngine:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.rate = float(spec.options.get("rate", 50.0))
        self.ttft = float(spec.options.get("ttft_ms", 0.0)) / 1000.0
        self.pattern = str(spec.options.get("pattern", "")).split()
        self._aborted: set[str] = set()
        self._active = 0
        self._tokens_generated = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self._active += 1
        prompt_tokens = sum(
            len(m.content.split()) if isinstance(m.content, str) else len(m.content)
            for m in request.messages
        )
        try:
            start = time.monotonic() + self.ttft
            for i in range(request.params.max_tokens):
                # Absolute deadlines keep the rate exact however late the loop wakes.
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if request.request_id in self._aborted:
                    yield Delta(output_tokens=i, finish_reason=FINISH_CANCELLED)
                    return
                self._tokens_generated += 1
                last = i + 1 == request.params.max_tokens
                yield Delta(
                    text=f"{self.pattern[i % len(self.pattern)]} " if self.pattern else f"t{i} ",
                    output_tokens=i + 1,
                    prompt_tokens=prompt_tokens if i == 0 else 0,
                    finish_reason=FINISH_LENGTH if last else None,
                )
        finally:
            self._active -= 1
            self._aborted.discard(request.request_id)

    def abort(self, request_id: str) -> None:
        self._aborted.add(request_id)

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.spec.name,
            backend="fake-rate",
            context_length=self.spec.context_length,
            max_batch=1_000_000,
            active_requests=self._active,
            tokens_generated=self._tokens_generated,
            extra={"rate": self.rate},
        )

    def close(self) -> None:
        pass
