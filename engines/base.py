"""The Engine protocol and the plain data that crosses it.

An engine turns a chat request into an async stream of text deltas. The
protocol is shaped after TensorRT-LLM's LLM API (``generate_async(...,
streaming=True)`` yielding ``RequestOutput`` objects, ``RequestOutput.abort()``)
so that the torch backend and a TensorRT-LLM backend are interchangeable.
Nothing here imports Django.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

FINISH_STOP = "stop"  # end-of-sequence token or a stop string
FINISH_LENGTH = "length"  # max_tokens or the model's context reached
FINISH_CANCELLED = "cancelled"  # aborted by the user
FINISH_ERROR = "error"
FINISH_LOOP = "loop"  # stopped by the server: the output was repeating itself

# Bounds on untrusted numbers: past these, torch's C longs overflow (``top_k``, ``seed``)
# or a request would hold a batch slot for days (``max_tokens``, before the model's cap).
MAX_TOP_K = 1_000_000
MAX_SEED = 2**63 - 1
MAX_TOKENS_BOUND = 10_000_000


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
        for name, bound in (("top_k", MAX_TOP_K), ("max_tokens", MAX_TOKENS_BOUND)):
            if name in data:
                kwargs[name] = _integer(name, data[name], bound)
        if "seed" in data and data["seed"] is not None:
            kwargs["seed"] = _integer("seed", data["seed"], MAX_SEED)
        if "stop" in data:
            stop = data["stop"]
            if isinstance(stop, str):
                stop = [stop]
            if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
                raise ValueError("stop must be a string or a list of non-empty strings")
            if len(stop) > 8 or any(len(s) > 200 for s in stop):
                raise ValueError("at most 8 stop strings of at most 200 characters")
            kwargs["stop"] = tuple(stop)
        params = cls(**kwargs)
        params.validate()
        return params

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("temperature must be between 0 and 2")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError("top_p must be in (0, 1]")
        if not 0 <= self.top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 0 and {MAX_TOP_K:,}")
        if not 1 <= self.max_tokens <= MAX_TOKENS_BOUND:
            raise ValueError(f"max_tokens must be between 1 and {MAX_TOKENS_BOUND:,}")
        if not -2.0 <= self.presence_penalty <= 2.0:
            raise ValueError("presence_penalty must be between -2 and 2")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ValueError("seed must be between 0 and 2**63 - 1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    if isinstance(value, int) and abs(value) > 2**64:
        raise ValueError(f"{name} is out of range")
    return float(value)


def _integer(name: str, value: Any, bound: int) -> int:
    """A whole number in [0, bound], checked before any conversion can overflow."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a whole number")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise ValueError(f"{name} must be a whole number")
    if not 0 <= value <= bound:
        raise ValueError(f"{name} must be between 0 and {bound:,}")
    return int(value)


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

    def capacity(self) -> int:
        """How many more requests the engine can admit right now (0: wait).

        The worker takes a job from the broker only when this is positive, so
        jobs wait in the queue, not inside the engine. A backend that knows its
        KV-cache headroom (TensorRT-LLM) reports that; others ``max_batch - active``.
        """
        ...

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """Tokens the engine would prefill for ``request`` (chat template applied)."""
        ...

    def info(self) -> EngineInfo:
        """Static facts and live counters (for heartbeats and dashboards)."""
        ...

    def close(self) -> None:
        """Release the model (worker shutdown)."""
        ...
