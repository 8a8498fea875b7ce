"""The torch backend: Hugging Face transformers on CPU (or GPU), continuously batched.

Loads a local checkpoint directory or a GGUF file (dequantised once and
cached). Options (catalogue ``options``): ``max_batch`` (default 16),
``dtype`` (default float32), ``cache_dir`` for converted GGUF files,
``threads`` for torch's intra-op thread count (default: the worker's share of the CPUs,
``engines.cpu``), ``device`` (default ``cpu``; ``cuda``
runs FP8 checkpoints on our Triton kernels), ``synthesise`` (``{"moe": bool,
"vision": bool, "fp8": bool}``) to create a tiny Qwen 3.5 checkpoint at ``path`` if missing
(with ``fp8``, quantised by ``engines.fp8.quantize``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from engines.base import Delta, EngineError, EngineInfo, GenerationRequest
from engines.catalogue import ModelSpec, resolve_model_path
from engines.checkpoints import DEFAULT_CACHE_DIR, load_causal_lm, load_processor
from engines.torch_batch import BatchScheduler, Sequence
from engines.torch_prompt import PromptBuilder


class TorchEngine:
    def __init__(self, spec: ModelSpec) -> None:
        import torch

        from engines.cpu import cpu_threads

        self.spec = spec
        options = spec.options
        # The cores this worker really has (its share under `make run`), not the machine's.
        torch.set_num_threads(int(options.get("threads") or cpu_threads()))
        synth = options.get("synthesise")
        if synth is not None:  # a tiny synthesised Qwen 3.5, made on first use
            from engines.qwen35.synth import ensure_synthesised

            ensure_synthesised(
                Path(spec.path),
                moe=bool(synth.get("moe")),
                vision=bool(synth.get("vision")),
                fp8=bool(synth.get("fp8")),
            )
        path = resolve_model_path(spec.path)
        cache_dir = Path(options.get("cache_dir", DEFAULT_CACHE_DIR))
        self.model, self.tokenizer = load_causal_lm(
            path, cache_dir, options.get("dtype", "float32"), options.get("device", "cpu")
        )
        self.processor = load_processor(path, self.tokenizer)
        self.prompts = PromptBuilder(self.tokenizer, self.processor, {})
        self.scheduler = BatchScheduler(
            self.model,
            self.tokenizer,
            max_batch=int(options.get("max_batch", 16)),
            context_length=spec.context_length,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[Delta | BaseException] = asyncio.Queue()

        def emit(item: Delta | BaseException) -> None:
            loop.call_soon_threadsafe(outputs.put_nowait, item)

        finished = False
        try:
            # Tokenising and image/video preprocessing: a worker thread, off the loop and
            # off the scheduler thread (which would stall every stream in the batch).
            try:
                prepared = await asyncio.to_thread(self.prompts.build, request)
            except Exception as exc:
                finished = True  # never reached the scheduler: nothing to abort
                if isinstance(exc, EngineError):
                    raise
                raise EngineError("invalid_prompt", f"cannot build the prompt: {exc}") from exc
            self.scheduler.submit(Sequence(request=request, emit=emit, prepared=prepared))
            while True:
                item = await outputs.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise (
                        item
                        if isinstance(item, EngineError)
                        else EngineError("engine_error", str(item))
                    )
                if item.finish_reason:
                    finished = True
                yield item
                if finished:
                    return
        finally:
            if not finished:  # the consumer went away: free the batch slot
                self.scheduler.abort(request.request_id)

    def abort(self, request_id: str) -> None:
        self.scheduler.abort(request_id)

    def capacity(self) -> int:
        return max(0, self.scheduler.max_batch - self.scheduler.active)

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """Text tokens with the chat template applied; media count as their placeholders.

        A cheap early check: the scheduler checks again with the real vision tokens.
        """
        return await asyncio.to_thread(self.prompts.count_text_tokens, request)

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.spec.name,
            backend="torch",
            context_length=self.spec.context_length,
            max_batch=self.scheduler.max_batch,
            active_requests=self.scheduler.active,
            tokens_generated=self.scheduler.tokens_generated,
            extra={
                "model_class": type(self.model).__name__,
                "vision": self.processor is not None,
                "frame_cache_hits": self.prompts.frame_cache_hits,
            },
        )

    def close(self) -> None:
        self.scheduler.stop()
