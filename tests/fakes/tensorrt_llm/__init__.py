"""FAKE ``tensorrt_llm``: a named fake of the LLM API surface our ``trtllm`` backend uses.

TensorRT-LLM cannot be installed here (PyPI holds only a stub; the GPU machine has no
registry), so the contract is tested against this. Like the real library's pydantic
option models (``extra="forbid"``) it rejects unknown keyword arguments and option keys,
using the option names in ``engines/trtllm/llm_api_options.json`` (read from TensorRT-LLM's
``llm_args.py``). ``SamplingParams.max_tokens`` defaults to 32, as there.

The "model" streams ``tok0 tok1 …`` (one token per step, ``FAKE_TRTLLM_TOKEN_S`` apart),
finishing with "length" at max_tokens; a prompt containing ``FAKE_STOP`` finishes with
"stop" after three tokens, one containing ``FAKE_FAIL`` raises ``RequestError`` after two.
With images or videos it first says what it was given. ``FAKE_TRTLLM_LOG`` (a file) gets
one JSON line per LLM, request and abort, for tests in other processes.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tensorrt_llm import llmapi
from tensorrt_llm.llmapi import _NAMES, _strict

__version__ = os.environ.get("FAKE_TRTLLM_VERSION", "1.3.0rc9")
FAKE = True
CALLS: list[dict[str, Any]] = []  # in-process record (tests in this process read it)


def _log(event: dict[str, Any]) -> None:
    CALLS.append(event)
    path = os.environ.get("FAKE_TRTLLM_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(event, default=str) + "\n")


class RequestError(RuntimeError):
    """As tensorrt_llm.executor.utils.RequestError: a request failed in the runtime."""


@dataclass(kw_only=True)
class SamplingParams:
    max_tokens: int = 32
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    end_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in _NAMES["sampling_params"]]
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {unknown}")
        for f in fields(self):
            if f.name != "extra":
                setattr(self, f.name, kwargs.pop(f.name, f.default))
        self.extra = kwargs


@dataclass
class CompletionOutput:
    index: int = 0
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    _previous_text: int = 0
    _previous_tokens: int = 0

    @property
    def text_diff(self) -> str:
        return self.text[self._previous_text :]

    @property
    def token_ids_diff(self) -> list[int]:
        return self.token_ids[self._previous_tokens :]


class RequestOutput:
    """GenerationResult: ``async for`` yields itself, cumulative, once per step."""

    def __init__(self, request_id: int, prompt_ids: list[int], steps: list[tuple[str, str | None]]):
        self.request_id = request_id
        self.prompt_token_ids = prompt_ids
        self.outputs = [CompletionOutput()]
        self._steps = steps
        self._aborted = False
        self.finished = False

    def abort(self) -> None:
        if not self._aborted and not self.finished:
            _log({"event": "abort", "request_id": self.request_id})
        self._aborted = True

    def aborted(self) -> bool:
        return self._aborted

    def __aiter__(self) -> RequestOutput:
        return self

    async def __anext__(self) -> RequestOutput:
        if self.finished:
            raise StopAsyncIteration
        out = self.outputs[0]
        out._previous_text, out._previous_tokens = len(out.text), len(out.token_ids)
        if self._aborted:
            out.finish_reason = "cancelled"
            self.finished = True
            return self
        await asyncio.sleep(float(os.environ.get("FAKE_TRTLLM_TOKEN_S", "0.002")))
        if self._aborted:
            out.finish_reason = "cancelled"
            self.finished = True
            return self
        piece, reason = self._steps.pop(0)
        if piece == "__fail__":
            self.finished = True
            raise RequestError("fake runtime error: the request failed in the executor")
        out.text += piece
        out.token_ids.append(len(out.token_ids) + 1000)
        if reason is not None:
            out.finish_reason = reason
            self.finished = True
        return self


class LLM:
    def __init__(self, model: str, **kwargs: Any) -> None:
        _strict("LLM", kwargs, _NAMES["llm_args"])
        for key, kind in (
            ("kv_cache_config", llmapi.KvCacheConfig),
            ("cuda_graph_config", llmapi.CudaGraphConfig),
            ("moe_config", llmapi.MoeConfig),
            ("speculative_config", llmapi.MTPDecodingConfig),
        ):
            if key in kwargs and not isinstance(kwargs[key], kind | dict):
                raise TypeError(f"{key} must be a {kind.__name__}")
        if not (Path(model) / "config.json").exists():
            raise ValueError(f"fake LLM: no checkpoint at {model}")
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.args = kwargs
        self._next_id = 0
        _log({"event": "llm", "model": model, "kwargs": sorted(kwargs)})

    def generate_async(
        self,
        inputs: Any,
        sampling_params: SamplingParams | None = None,
        streaming: bool = False,
        **kwargs: Any,
    ) -> RequestOutput:
        _strict("generate_async", kwargs, {"lora_request", "kv_cache_retention_config"})
        params = sampling_params or SamplingParams()
        if not isinstance(inputs, dict) or not isinstance(inputs.get("prompt"), str):
            raise TypeError("fake LLM: inputs must be {'prompt': str, 'multi_modal_data': ...}")
        unknown = set(inputs) - {"prompt", "multi_modal_data"}
        if unknown:
            raise TypeError(f"fake LLM: unexpected input keys {sorted(unknown)}")
        prompt = inputs["prompt"]
        media = inputs.get("multi_modal_data") or {}
        images, videos = media.get("image", []), media.get("video", [])
        from PIL import Image

        from tensorrt_llm.inputs.utils import VideoData

        if not all(isinstance(i, Image.Image) for i in images):
            raise TypeError("fake LLM: images must be PIL images")
        if not all(isinstance(v, VideoData) and "fps" in v.metadata for v in videos):
            raise TypeError("fake LLM: videos must be VideoData(frames, metadata)")
        spec = self.args.get("speculative_config")
        if (
            spec is not None
            and params.presence_penalty
            and not getattr(spec, "enable_penalty", False)
        ):
            raise ValueError("penalties are not supported with one-model speculative decoding")
        # The input processor expands each placeholder (an image to 4 positions, a video to
        # 8) and writes the expanded positions as ids past the text vocabulary.
        ids = []
        out_of_vocab = len(self.tokenizer) + 1
        for token in self.tokenizer(prompt).input_ids:
            if token == self.tokenizer.convert_tokens_to_ids("<|image_pad|>"):
                ids += [out_of_vocab] * 4
            elif token == self.tokenizer.convert_tokens_to_ids("<|video_pad|>"):
                ids += [out_of_vocab] * 8
            else:
                ids.append(token)
        steps: list[tuple[str, str | None]] = []
        if images or videos:
            steps.append((f"[saw {len(images)} image(s), {len(videos)} video(s)] ", None))
        limit = params.max_tokens
        for i in range(limit - len(steps)):
            steps.append((f"tok{i} ", None))
        if "FAKE_STOP" in prompt:
            steps = steps[:3]
            steps[-1] = (steps[-1][0], "stop")
        else:
            steps[-1] = (steps[-1][0], "length")
        if "FAKE_FAIL" in prompt:
            steps = steps[:2] + [("__fail__", None)]
        self._next_id += 1
        _log(
            {
                "event": "generate",
                "request_id": self._next_id,
                "streaming": streaming,
                "sampling": {f.name: getattr(params, f.name) for f in fields(params)},
                "images": len(images),
                "videos": len(videos),
                "prompt": prompt,
            }
        )
        return RequestOutput(self._next_id, ids, steps)

    def shutdown(self) -> None:
        _log({"event": "shutdown"})
