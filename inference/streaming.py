"""Engine deltas → coalesced frames in the event log, honouring Stop between frames.

This runs on the worker's engine event loop. Tokens are grouped into frames
of ``frame_interval_s`` (tens of milliseconds) so the log, Redis and the
socket carry a few dozen messages a second per stream, never one per token.
The first piece of text is written at once so the user sees it without
waiting a frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from engines.base import (
    FINISH_CANCELLED,
    FINISH_ERROR,
    FINISH_LOOP,
    Delta,
    Engine,
    EngineError,
    GenerationRequest,
)
from engines.text import LoopDetector, make_reasoning_parser
from inference.events import AsyncEventLogWriter

log = logging.getLogger(__name__)
_END = object()
LOG_UNAVAILABLE = "event_log_unavailable"


@dataclass
class Outcome:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    vision_tokens: int = 0
    first_token_at: float | None = None  # wall clock (time.time())
    reasoning_started_at: float | None = None
    content_started_at: float | None = None
    finished_at: float = 0.0
    error_code: str = ""
    error_message: str = ""

    @property
    def text(self) -> str:
        return "".join(self.content)

    def fail(self, code: str, message: str) -> None:
        self.finish_reason = FINISH_ERROR
        self.error_code, self.error_message = code, message

    def record(self, enqueued_at: float, started_at: float, worker: str) -> dict[str, Any]:
        """The ``done`` payload: everything the Django side stores for this reply."""
        return {
            "finish_reason": self.finish_reason or FINISH_ERROR,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens,
                "vision_tokens": self.vision_tokens,
            },
            "content": self.text,
            "reasoning": "".join(self.reasoning),
            "error": {"code": self.error_code, "message": self.error_message}
            if self.error_code
            else None,
            "timings": {
                "enqueued_at": enqueued_at or None,
                "started_at": started_at or None,
                "first_token_at": self.first_token_at,
                "reasoning_started_at": self.reasoning_started_at,
                "content_started_at": self.content_started_at,
                "finished_at": self.finished_at or time.time(),
            },
            "worker": worker,
        }


class _Frame:
    """Text waiting to be written, merged into runs of the same kind."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []  # [[kind, text], ...]

    def add(self, kind: str, text: str) -> None:
        if self.runs and self.runs[-1][0] == kind:
            self.runs[-1][1] += text
        else:
            self.runs.append([kind, text])

    def __bool__(self) -> bool:
        return bool(self.runs)

    def take(self) -> list[list[str]]:
        runs, self.runs = self.runs, []
        return runs


async def stream_to_log(
    engine: Engine,
    request: GenerationRequest,
    writer: AsyncEventLogWriter,
    frame_interval_s: float,
    thinking: bool = False,
    reasoning_parser: str = "",
    outcome: Outcome | None = None,
) -> Outcome:
    """Run ``request`` on ``engine``, appending frames to ``writer``'s log; return the totals.

    With ``thinking`` the model family's ``reasoning_parser`` splits output into
    reasoning and answer. Output that ends in the same span repeated over and
    over is stopped with finish reason ``loop``. If the log cannot be written
    (Redis is down) the generation is stopped and the outcome keeps every piece
    of text produced so far. ``outcome`` (if given) is filled in place, so a
    caller that must give up early still holds the text so far.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def produce() -> None:
        try:
            async for delta in engine.stream(request):
                queue.put_nowait(delta)
        except Exception as exc:  # reported to the user as an error event
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_END)

    producer = asyncio.create_task(produce())
    outcome = outcome if outcome is not None else Outcome()
    frame = _Frame()
    abort_sent = False
    ended = False
    looping = False
    splitter = make_reasoning_parser(reasoning_parser, thinking)
    loops = LoopDetector()

    def add(pieces: list[tuple[str, str]]) -> None:
        nonlocal looping
        for kind, text in pieces:
            if kind == "reasoning" and outcome.reasoning_started_at is None:
                outcome.reasoning_started_at = time.time()
            if kind == "content" and outcome.content_started_at is None:
                outcome.content_started_at = time.time()
            frame.add(kind, text)
            (outcome.reasoning if kind == "reasoning" else outcome.content).append(text)
            looping = looping or loops.feed(text)

    def take(item: object) -> None:
        nonlocal ended
        if item is _END:
            ended = True
            add(splitter.flush())
        elif isinstance(item, BaseException):
            outcome.finish_reason = FINISH_ERROR
            outcome.error_code = item.code if isinstance(item, EngineError) else "engine_error"
            outcome.error_message = str(item) or type(item).__name__
        elif isinstance(item, Delta):
            _record(outcome, item)
            if item.text:
                add(splitter.feed(item.text))

    async def flush() -> bool:
        stop = False
        runs = frame.take()
        written = 0
        try:
            for kind, text in runs:
                # Cumulative counts ride along, so a reply whose worker dies keeps true numbers.
                payload = {
                    "text": text,
                    "output_tokens": outcome.output_tokens,
                    "prompt_tokens": outcome.prompt_tokens,
                }
                stop = await writer.append(kind, payload) or stop
                written += 1
        except BaseException:
            frame.runs = runs[written:] + frame.runs  # unwritten text waits for the retry
            raise
        return stop

    async def checked(step: Any) -> bool:
        """A log write or Stop check; a Redis failure stops the generation, keeping its text."""
        if outcome.error_code == LOG_UNAVAILABLE:
            return True  # already failed: do not wait on a dead connection every frame
        try:
            return bool(await step())  # (the writer already retried on a fresh connection)
        except (redis.RedisError, OSError) as exc:
            if not outcome.error_code:
                log.warning("event log of %s unavailable: %s", request.request_id, exc)
                outcome.fail(
                    LOG_UNAVAILABLE,
                    "The live stream was interrupted (the server lost its connection to Redis). "
                    "The text so far is kept.",
                )
            return True

    try:
        # Until the first text: wake on every delta (the first frame goes out at
        # once), and at least every frame interval to notice a Stop during prefill.
        while not ended and not frame:
            try:
                take(await asyncio.wait_for(queue.get(), timeout=frame_interval_s))
            except TimeoutError:
                if await checked(writer.cancel_requested) and not abort_sent:
                    engine.abort(request.request_id)
                    abort_sent = True
        # Then one wake-up per frame, whatever the token rate: drain, write, check Stop.
        while True:
            while not queue.empty():
                take(queue.get_nowait())
            stop = await checked(flush if frame else writer.cancel_requested)
            if looping and not abort_sent:
                outcome.finish_reason = FINISH_LOOP
                stop = True
            if stop and not abort_sent:
                engine.abort(request.request_id)
                abort_sent = True
            if ended:
                break
            await asyncio.sleep(frame_interval_s)
    finally:
        if not producer.done():
            engine.abort(request.request_id)
            producer.cancel()
    if outcome.error_code:
        outcome.finish_reason = FINISH_ERROR
    elif looping:
        outcome.finish_reason = FINISH_LOOP
    elif abort_sent and outcome.finish_reason in (None, FINISH_CANCELLED):
        outcome.finish_reason = FINISH_CANCELLED
    outcome.finish_reason = outcome.finish_reason or FINISH_ERROR
    outcome.finished_at = time.time()
    return outcome


def _record(outcome: Outcome, delta: Delta) -> None:
    if delta.text and outcome.first_token_at is None:
        outcome.first_token_at = time.time()
    if delta.prompt_tokens:
        outcome.prompt_tokens = delta.prompt_tokens
    if delta.vision_tokens:
        outcome.vision_tokens = delta.vision_tokens
    outcome.output_tokens = max(outcome.output_tokens, delta.output_tokens)
    if delta.finish_reason:
        outcome.finish_reason = delta.finish_reason
