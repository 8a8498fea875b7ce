"""The engine host: one engine per worker process, driven from Celery's threads.

A worker process loads its model once (``EngineHost.start``) and runs the
engine on a dedicated asyncio loop in a background thread. Each Celery task
thread submits its generation to that loop and blocks until it ends, so many
generations share one loaded model and the engine batches them in flight.
Database writes happen in the task thread (sync ORM), never on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from engines.base import (
    FINISH_CANCELLED,
    FINISH_ERROR,
    ChatMessage,
    GenerationRequest,
    SamplingParams,
)
from engines.catalogue import ModelSpec
from engines.registry import create_engine
from inference import events
from inference.heartbeats import publish_heartbeat
from inference.redis_clients import get_async_redis
from inference.streaming import Outcome, stream_to_log
from playground.chat.models import Message
from playground.dashboard.usage import record_generation

log = logging.getLogger(__name__)
T = TypeVar("T")

_host: EngineHost | None = None


def get_host() -> EngineHost:
    if _host is None:
        raise RuntimeError(
            "this process holds no engine; start workers with `python -m inference.worker`"
        )
    return _host


class EngineHost:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.worker_id = f"{spec.name}@{socket.gethostname()}:{os.getpid()}"
        self.engine = create_engine(spec)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="engine-loop", daemon=True
        )
        self._thread.start()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._db = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-db")
        self._heartbeat = asyncio.run_coroutine_threadsafe(self._beat_forever(), self.loop)

    @classmethod
    def start(cls, spec: ModelSpec) -> EngineHost:
        """Load ``spec``'s engine and make it this process's host."""
        global _host
        _host = cls(spec)
        return _host

    def stop(self) -> None:
        self._heartbeat.cancel()
        self.engine.close()
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _beat_forever(self) -> None:
        interval = settings.INFERENCE["HEARTBEAT_INTERVAL_S"]
        while True:
            try:
                info = self.engine.info()
                await publish_heartbeat(
                    get_async_redis(),
                    self.worker_id,
                    {
                        "model": self.spec.name,
                        "backend": info.backend,
                        "queue": self.spec.queue,
                        "in_flight": self._in_flight,
                        "engine_active": info.active_requests,
                        "tokens_generated": info.tokens_generated,
                        "max_batch": info.max_batch,
                    },
                    interval,
                )
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(interval)

    def run_generation(self, generation_id: str, job: dict[str, Any]) -> None:
        """Claim a queued generation, stream it, and write its final record."""
        started_at = timezone.now()
        if not self._db_call(_claim, generation_id, started_at, self.worker_id):
            return  # stopped before it started, or already taken
        params = dict(job["params"])
        params["stop"] = tuple(params.get("stop", ()))
        request = GenerationRequest(
            request_id=generation_id,
            messages=[
                ChatMessage(m["role"], self._local_media(m["content"])) for m in job["messages"]
            ],
            params=SamplingParams(**params),
            chat_options=dict(job.get("chat_options", {})),
        )
        writer = self._call(self._writer(generation_id))
        with self._lock:
            self._in_flight += 1
        try:
            outcome = self._call(self._stream(request, writer, bool(job.get("thinking"))))
        except Exception as exc:
            log.exception("generation %s failed", generation_id)
            outcome = Outcome(
                finish_reason=FINISH_ERROR, error_code="worker_error", error_message=str(exc)
            )
        finally:
            with self._lock:
                self._in_flight -= 1
        if self._db_call(finish_reply, generation_id, started_at, outcome):
            self._call(self._close_log(writer, outcome))

    def _local_media(self, content: Any) -> Any:
        """Media parts name stored files; the engine reads local paths (cached by content)."""
        if isinstance(content, str):
            return content
        parts = []
        for part in content:
            if part.get("type") in ("image", "video"):
                path = self._db_call(_materialise, part["sha256"], part.get("content_type", ""))
                part = {"type": part["type"], "path": str(path)}
            parts.append(part)
        return parts

    def _db_call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ORM work on the host's few database threads, whose connections stay open.

        Celery's task threads are many (one per concurrent generation) and each
        would open its own connection on first use: ~10 ms on the way to the first token.
        """
        return self._db.submit(_with_connection_check, function, *args).result()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _writer(self, generation_id: str) -> events.AsyncEventLogWriter:
        # Created on the loop: the asyncio Redis client belongs to that loop.
        return events.AsyncEventLogWriter(
            get_async_redis(), generation_id, settings.INFERENCE["EVENT_LOG_TTL_S"]
        )

    async def _stream(
        self, request: GenerationRequest, writer: events.AsyncEventLogWriter, thinking: bool
    ) -> Outcome:
        interval = settings.INFERENCE["FRAME_INTERVAL_MS"] / 1000.0
        return await stream_to_log(self.engine, request, writer, interval, thinking=thinking)

    async def _close_log(self, writer: events.AsyncEventLogWriter, outcome: Outcome) -> None:
        for kind, payload in closing_events(outcome):
            await writer.append(kind, payload)


def _with_connection_check(function: Callable[..., T], *args: Any) -> T:
    close_old_connections()  # drop connections that are broken or past CONN_MAX_AGE
    return function(*args)


MEDIA_SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
}


def _materialise(sha256: str, content_type: str) -> Path:
    """A local copy of a stored file (written once per content, atomically)."""
    from playground.media.services import storage

    folder = Path(settings.DATA_DIR) / "media-cache"
    path = folder / f"{sha256}{MEDIA_SUFFIXES.get(content_type, '')}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + f".{os.getpid()}.part")
        with storage.open(sha256) as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        os.replace(partial, path)
    return path


def _claim(generation_id: str, started_at: datetime, worker_id: str) -> bool:
    """Move ``queued`` → ``running``; False if a Stop (or another worker) got there first.

    The worker's id is kept, so a reply whose worker dies can be found (inference.reaper).
    """
    return bool(
        Message.objects.filter(pk=generation_id, status=Message.Status.QUEUED).update(
            status=Message.Status.RUNNING, started_at=started_at, worker=worker_id
        )
    )


def finish_reply(generation_id: str, started: datetime, outcome: Outcome) -> bool:
    """The single final write of a running reply and its usage row (before `done`, so a
    refresh sees it). Made by its worker, or by the reaper when the worker died.

    False if the other one closed the reply first: then that one also closes the log.
    """
    created = Message.objects.values_list("created_at", flat=True).get(pk=generation_id)
    finished = _dt(outcome.finished_at) if outcome.finished_at else timezone.now()
    first = _dt(outcome.first_token_at) if outcome.first_token_at else None
    tpot = None
    if first and outcome.output_tokens > 1:
        tpot = (finished - first).total_seconds() * 1000 / (outcome.output_tokens - 1)
    finish_reason = outcome.finish_reason or FINISH_ERROR
    reasoning_ms = None
    if outcome.reasoning_started_at is not None:
        reasoning_end = outcome.content_started_at or outcome.finished_at or time.time()
        reasoning_ms = (reasoning_end - outcome.reasoning_started_at) * 1000
    status = {
        FINISH_CANCELLED: Message.Status.CANCELLED,
        FINISH_ERROR: Message.Status.ERROR,
    }.get(finish_reason, Message.Status.DONE)
    with transaction.atomic():
        # Still ours: the reaper has not closed it as lost (a worker stalled past its heartbeat).
        updated = Message.objects.filter(pk=generation_id, status=Message.Status.RUNNING).update(
            content=outcome.text,
            reasoning="".join(outcome.reasoning).strip(),
            reasoning_ms=reasoning_ms,
            status=status,
            finish_reason=finish_reason,
            error_code=outcome.error_code,
            error_message=outcome.error_message[:2000],
            prompt_tokens=outcome.prompt_tokens,
            vision_tokens=outcome.vision_tokens,
            output_tokens=outcome.output_tokens,
            first_token_at=first,
            finished_at=finished,
            queue_wait_ms=_ms(started - created),
            ttft_ms=_ms(first - created) if first else None,
            tpot_ms=tpot,
            total_ms=_ms(finished - created),
        )
        if updated:
            record_generation(Message.objects.select_related("conversation").get(pk=generation_id))
    return bool(updated)


def closing_events(outcome: Outcome) -> list[tuple[str, dict[str, Any]]]:
    """The events that end a reply's log: `error` if it failed, then `done`."""
    done = {
        "finish_reason": outcome.finish_reason,
        "usage": {
            "prompt_tokens": outcome.prompt_tokens,
            "output_tokens": outcome.output_tokens,
            "vision_tokens": outcome.vision_tokens,
        },
    }
    error = [("error", {"code": outcome.error_code, "message": outcome.error_message})]
    return [*(error if outcome.error_code else []), (events.TERMINAL_KIND, done)]


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _ms(delta: Any) -> float:
    return float(delta.total_seconds() * 1000)
