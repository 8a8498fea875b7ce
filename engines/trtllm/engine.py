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
from engines.text import StopStringFilter
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


def _video_data_class() -> Any:
    """TensorRT-LLM's container for a video's frames and metadata, where it has one."""
    try:
        from tensorrt_llm.inputs.utils import VideoData
    except ImportError:
        return None
    return VideoData


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
        # With attention data parallelism max_batch_size is per rank: the engine holds
        # that many sequences on each of its GPUs.
        ranks = (
            int(options.get("tensor_parallel_size", 1)) if options.get("enable_attention_dp") else 1
        )
        self.max_batch = int(options.get("max_batch_size", 1)) * ranks
        self.version = installed
        self._sampling_class = tensorrt_llm.SamplingParams
        from engines.checkpoints import load_processor, load_tokenizer
        from engines.torch_prompt import PromptBuilder

        self.tokenizer = load_tokenizer(checkpoint)
        self.prompts = PromptBuilder(self.tokenizer, load_processor(checkpoint, self.tokenizer), {})
        self._vision_pads = {
            self.tokenizer.convert_tokens_to_ids(token)
            for token in ("<|image_pad|>", "<|video_pad|>")
            if token in self.tokenizer.get_vocab()
        }
        self.llm = tensorrt_llm.LLM(model=str(checkpoint), **llm_arguments(options, llmapi))
        self._live: dict[str, Any] = {}
        # Stops that arrive while a prompt is still being prepared (a video decoding):
        # honoured as soon as the request exists.
        self._preparing: set[str] = set()
        self._aborted: set[str] = set()
        self._video_class = _video_data_class()
        self._vocab_size = len(self.tokenizer)
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
            if self._video_class is None:
                raise EngineError(
                    "media_not_supported",
                    f"TensorRT-LLM {self.version} takes no video input here (no VideoData)",
                )
            media["video"] = [
                self._video_class(frames, metadata)
                for frames, metadata in zip(collected.videos, collected.video_metadata, strict=True)
            ]
        if media:
            prompt["multi_modal_data"] = media
        return prompt, len(collected.images) + len(collected.videos)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        rid = request.request_id
        self._preparing.add(rid)
        try:
            try:
                inputs, _ = await asyncio.to_thread(self.prepare, request)
            except EngineError:
                raise
            except Exception as exc:
                raise EngineError("invalid_prompt", f"cannot build the prompt: {exc}") from exc
            result = self.llm.generate_async(
                inputs, sampling_params=self.sampling_params(request), streaming=True
            )
        except EngineError:
            raise
        except (TypeError, ValueError) as exc:
            raise EngineError(
                "invalid_request", f"TensorRT-LLM refused the request: {exc}"
            ) from exc
        except Exception as exc:
            raise EngineError("engine_error", f"TensorRT-LLM refused the request: {exc}") from exc
        finally:
            self._preparing.discard(rid)
            stopped_early = rid in self._aborted
            self._aborted.discard(rid)
        self._live[rid] = result
        if stopped_early:  # Stop came while the prompt was prepared (a video decoding)
            result.abort()
        # The runtime cuts a stop string only from the final output; earlier pieces of a
        # multi-token stop string would already have streamed. Hold them back, as torch does.
        stops = StopStringFilter(request.params.stop)
        first = True
        finished = False
        produced = 0
        try:
            async for output in result:
                completion = output.outputs[0]
                produced = len(completion.token_ids)
                reason = completion.finish_reason
                text = stops.feed(completion.text_diff)
                if reason is not None or stops.stopped:
                    text += "" if stops.stopped else stops.flush()
                delta = Delta(text=text, output_tokens=produced)
                if first:
                    prompt_ids = list(output.prompt_token_ids or [])
                    delta.prompt_tokens = len(prompt_ids)
                    delta.vision_tokens = sum(1 for i in prompt_ids if self._is_vision(i))
                    first = False
                if stops.stopped and reason is None:  # we saw it first: end it there
                    result.abort()
                    reason = "stop"
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
            self._live.pop(rid, None)
            self.tokens_generated += produced
            if not finished:  # the consumer went away (Stop, a closed socket): free the slot
                result.abort()

    def _is_vision(self, token_id: int) -> bool:
        """An image/video token: its pad id, or (as the Qwen VL input processors write the
        expanded positions) an id past the text vocabulary."""
        return token_id in self._vision_pads or token_id >= self._vocab_size

    def abort(self, request_id: str) -> None:
        result = self._live.get(request_id)
        if result is not None:
            result.abort()
        elif request_id in self._preparing:
            self._aborted.add(request_id)

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
