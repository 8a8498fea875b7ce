"""The Engine protocol and the plain data that crosses it.

An engine turns a chat request into an async stream of text deltas. The
protocol is shaped after TensorRT-LLM's LLM API (``generate_async(...,
streaming=True)`` yielding ``RequestOutput`` objects, ``RequestOutput.abort()``)
so that the torch backend and a TensorRT-LLM backend are interchangeable.
Nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

FINISH_STOP = "stop"  # end-of-sequence token or a stop string
FINISH_LENGTH = "length"  # max_tokens or the model's context reached
FINISH_CANCELLED = "cancelled"  # aborted by the user
FINISH_ERROR = "error"
FINISH_LOOP = "loop"  # stopped by the server: the output was repeating itself


class EngineError(Exception):
    """An engine could not serve a request; ``code`` is shown to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling, with OpenAI-style names."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 0  # 0 = disabled
    max_tokens: int = 512
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        """Build from untrusted JSON, raising ``ValueError`` with a readable reason."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for name in ("temperature", "top_p", "presence_penalty"):
            if name in data:
                kwargs[name] = _number(name, data[name])
        for name in ("top_k", "max_tokens"):
            if name in data:
                kwargs[name] = int(_number(name, data[name]))
        if "seed" in data and data["seed"] is not None:
            kwargs["seed"] = int(_number("seed", data["seed"]))
        if "stop" in data:
            stop = data["stop"]
            if isinstance(stop, str):
                stop = [stop]
            if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
                raise ValueError("stop must be a string or a list of non-empty strings")
            if len(stop) > 8:
                raise ValueError("at most 8 stop strings")
            kwargs["stop"] = tuple(stop)
        params = cls(**kwargs)
        params.validate()
        return params

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("temperature must be between 0 and 2")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if not -2.0 <= self.presence_penalty <= 2.0:
            raise ValueError("presence_penalty must be between -2 and 2")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    # Text, or parts: {"type": "text", "text"}, {"type": "image" | "video", "path"}.
    content: str | list[dict[str, Any]]


@dataclass
class GenerationRequest:
    """One generation: the conversation so far plus sampling parameters."""

    request_id: str
    messages: list[ChatMessage]
    params: SamplingParams = field(default_factory=SamplingParams)
    # Passed to the chat template (Qwen 3.5: {"enable_thinking": False}).
    chat_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delta:
    """A piece of output. The last delta of a stream carries ``finish_reason``."""

    text: str = ""
    output_tokens: int = 0  # tokens produced so far for this request (cumulative)
    finish_reason: str | None = None
    prompt_tokens: int = 0  # set on the first delta
    vision_tokens: int = 0  # image and video tokens in the prompt, on the first delta


@dataclass
class EngineInfo:
    model: str
    backend: str
    context_length: int
    max_batch: int
    active_requests: int = 0
    tokens_generated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """What every backend implements."""

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Yield deltas for ``request`` until one carries a finish reason."""
        ...

    def abort(self, request_id: str) -> None:
        """Stop ``request_id`` as soon as possible; its stream ends with ``cancelled``."""
        ...

    def info(self) -> EngineInfo:
        """Static facts and live counters (for heartbeats and dashboards)."""
        ...

    def close(self) -> None:
        """Release the model (worker shutdown)."""
        ...
