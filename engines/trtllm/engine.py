"""The ``trtllm`` backend: TensorRT-LLM's LLM API (PyTorch backend) behind our Engine protocol.

The catalogue entry's ``path`` is an engine directory (``python -m engines build``): its
``llm_options.yaml`` becomes the ``LLM(...)`` arguments, its linked checkpoint the model.
Each request is one ``generate_async(..., streaming=True)``; deltas come from the output's
``text_diff`` and token counts; Stop (or a client gone) calls the request's ``abort()``.
Prompts are built with the checkpoint's own chat template, as for the torch engine, and
images and video go in as TensorRT-LLM's ``multi_modal_data`` (PIL images; sampled frames),
its input processor placing them at the template's placeholders. Reasoning is split later,
in ``inference.streaming``, for every backend alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from engines.base import (
    FINISH_CANCELLED,
    FINISH_LENGTH,
    FINISH_STOP,
    Delta,
    EngineError,
    EngineInfo,
    GenerationRequest,
)
from engines.catalogue import ModelSpec
from engines.trtllm.build import BuildError, read_engine_dir
from engines.trtllm.options import MIN_VERSION, version_at_least

# TensorRT-LLM's finish reasons → ours ("timeout" is the runtime giving up on the request).
FINISH_REASONS = {
    "stop": FINISH_STOP,
    "length": FINISH_LENGTH,
    "cancelled": FINISH_CANCELLED,
    "timeout": FINISH_CANCELLED,
}
NESTED_CONFIGS = {
    "kv_cache_config": "KvCacheConfig",
    "cuda_graph_config": "CudaGraphConfig",
    "moe_config": "MoeConfig",
}


def llm_arguments(options: dict[str, Any], llmapi: Any) -> dict[str, Any]:
    """The YAML's nested dicts as the LLM API's config objects (strict: unknown keys fail)."""
    arguments = dict(options)
    for key, class_name in NESTED_CONFIGS.items():
        if isinstance(arguments.get(key), dict):
            arguments[key] = getattr(llmapi, class_name)(**arguments[key])
    spec = arguments.get("speculative_config")
    if isinstance(spec, dict):
        fields = {k: v for k, v in spec.items() if k != "decoding_type"}
        if spec.get("decoding_type") != "MTP":
            raise EngineError("bad_engine_dir", f"unsupported speculative decoding {spec!r}")
        arguments["speculative_config"] = llmapi.MTPDecodingConfig(**fields)
    return arguments


class TrtllmEngine:
    def __init__(self, spec: ModelSpec) -> None:
        try:
            import tensorrt_llm
            from tensorrt_llm import llmapi
        except ImportError as exc:
            raise EngineError(
                "backend_unavailable",
                f"the trtllm backend needs TensorRT-LLM ({MIN_VERSION} or newer), which is "
                f"not installed here ({exc}); run this worker in NVIDIA's TensorRT-LLM container",
            ) from exc
        try:
            manifest, options, checkpoint = read_engine_dir(Path(spec.path))
        except (BuildError, ValueError) as exc:
            raise EngineError("bad_engine_dir", str(exc)) from exc
        required = str(manifest.get("min_tensorrt_llm") or MIN_VERSION)
        installed = str(tensorrt_llm.__version__)
        if not version_at_least(installed, required):
            raise EngineError(
                "backend_too_old",
                f"TensorRT-LLM {installed} is installed; {manifest.get('model')} needs "
                f"{required} or newer (Qwen 3.5 runs on its PyTorch backend from {MIN_VERSION})",
            )
        self.spec = spec
        self.manifest = manifest
        self.max_batch = int(options.get("max_batch_size", 1))
        self.version = installed
        self._sampling_class = tensorrt_llm.SamplingParams
        from transformers import AutoTokenizer

        from engines.checkpoints import load_processor
        from engines.torch_prompt import PromptBuilder

        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.prompts = PromptBuilder(self.tokenizer, load_processor(checkpoint), {})
        self._vision_pads = {
            self.tokenizer.convert_tokens_to_ids(token)
            for token in ("<|image_pad|>", "<|video_pad|>")
            if token in self.tokenizer.get_vocab()
        }
        self.llm = tensorrt_llm.LLM(model=str(checkpoint), **llm_arguments(options, llmapi))
        self._live: dict[str, Any] = {}
        self.tokens_generated = 0

    # --- requests -------------------------------------------------------------------
    def sampling_params(self, request: GenerationRequest) -> Any:
        """Our SamplingParams → TensorRT-LLM's; max_tokens always set (its default is 32)."""
        p = request.params
        return self._sampling_class(
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=p.top_k,
            presence_penalty=p.presence_penalty,
            stop=list(p.stop) or None,
            seed=p.seed,
        )

    def prepare(self, request: GenerationRequest) -> tuple[dict[str, Any], int]:
        """(the LLM API input, vision placeholders in it): text prompt + multimodal data."""
        collected = self.prompts.collect(request)
        prompt: dict[str, Any] = {"prompt": self.prompts.chat_text(request, collected)}
        media: dict[str, Any] = {}
        if collected.images:
            media["image"] = collected.images
        if collected.videos:
            media["video"] = collected.videos
        if media:
            prompt["multi_modal_data"] = media
        return prompt, len(collected.images) + len(collected.videos)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        try:
            inputs, _ = await asyncio.to_thread(self.prepare, request)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError("invalid_prompt", f"cannot build the prompt: {exc}") from exc
        try:
            result = self.llm.generate_async(
                inputs, sampling_params=self.sampling_params(request), streaming=True
            )
        except Exception as exc:
            raise EngineError("engine_error", f"TensorRT-LLM refused the request: {exc}") from exc
        self._live[request.request_id] = result
        first = True
        finished = False
        produced = 0
        try:
            async for output in result:
                completion = output.outputs[0]
                produced = len(completion.token_ids)
                reason = completion.finish_reason
                delta = Delta(text=completion.text_diff, output_tokens=produced)
                if first:
                    prompt_ids = list(output.prompt_token_ids or [])
                    delta.prompt_tokens = len(prompt_ids)
                    delta.vision_tokens = sum(1 for i in prompt_ids if i in self._vision_pads)
                    first = False
                if reason is not None:
                    delta.finish_reason = FINISH_REASONS.get(reason, FINISH_STOP)
                    finished = True
                yield delta
                if finished:
                    return
            finished = True
            yield Delta(output_tokens=produced, finish_reason=FINISH_STOP)
        except EngineError:
            finished = True
            raise
        except Exception as exc:  # the runtime's RequestError, or its executor gone
            finished = True
            raise EngineError("engine_error", f"TensorRT-LLM: {exc}") from exc
        finally:
            self._live.pop(request.request_id, None)
            self.tokens_generated += produced
            if not finished:  # the consumer went away (Stop, a closed socket): free the slot
                result.abort()

    def abort(self, request_id: str) -> None:
        result = self._live.get(request_id)
        if result is not None:
            result.abort()

    def capacity(self) -> int:
        return max(0, self.max_batch - len(self._live))

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return await asyncio.to_thread(self.prompts.count_text_tokens, request)

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.spec.name,
            backend="trtllm",
            context_length=self.spec.context_length,
            max_batch=self.max_batch,
            active_requests=len(self._live),
            tokens_generated=self.tokens_generated,
            extra={
                "tensorrt_llm": self.version,
                "gpus": int((self.manifest.get("gpu") or {}).get("count", 1)),
                "gpu": (self.manifest.get("gpu") or {}).get("label", ""),
                "quantisation": self.manifest.get("quantisation"),
                "vision": self.prompts.processor is not None,
            },
        )

    def close(self) -> None:
        shutdown = getattr(self.llm, "shutdown", None)
        if shutdown is not None:
            shutdown()
