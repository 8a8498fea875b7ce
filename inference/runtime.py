"""The engine host: one engine per worker process, driven from Celery's threads. No Django.

A worker process loads its model once (``EngineHost``) and runs the engine on a
dedicated asyncio loop in a background thread. Each Celery task thread waits
until the engine can admit its job, claims the generation in Redis, submits
the stream to the loop and blocks until it ends. The worker never touches the
database: the generation's ``done`` event carries the final record, and the
``generations.record`` task on the Django side stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from typing import Any

import redis

from engines.base import FINISH_CANCELLED
from engines.catalogue import ModelSpec
from engines.registry import create_engine
from inference import events, state
from inference.config import InferenceConfig
from inference.heartbeats import publish_heartbeat, register, retire
from inference.jobs import Job
from inference.media_cache import local_content
from inference.redis_clients import get_async_redis, get_redis, redis_url
from inference.streaming import Outcome, stream_to_log

log = logging.getLogger(__name__)

_host: EngineHost | None = None
STOPPED_CODE = "worker_stopped"
STOPPED_MESSAGE = (
    "The server was restarted while writing this reply. The text so far is kept; "
    "ask again to get a full answer."
)


def get_host() -> EngineHost:
    if _host is None:
        raise RuntimeError(
            "this process holds no engine; start workers with `python -m inference.worker`"
        )
    return _host


class Requeue(Exception):
    """The job goes back to the broker (for this or another worker)."""


class Draining(Requeue):
    """The worker is shutting down: the job goes back to the broker for another worker."""


class EngineHost:
    def __init__(
        self,
        spec: ModelSpec,
        config: InferenceConfig,
        send_record: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.spec = spec
        self.config = config
        self.send_record = send_record
        self.worker_id = f"{spec.name}@{socket.gethostname()}:{os.getpid()}"
        self.engine = create_engine(spec)
        info = self.engine.info()
        # Concurrent jobs this worker takes from the broker: its engine's batch size.
        self.slots = max(1, info.max_batch)
        # What the web side learns about this model from every heartbeat (served = alive).
        self.announcement = {
            "name": spec.name,
            "display_name": spec.label,
            "backend": info.backend,
            "context_length": info.context_length,
            "max_output_tokens": spec.max_output_tokens,
            "modalities": list(spec.info.get("modalities", ["text"])),
            "thinking": spec.thinking,
            "max_batch": info.max_batch,
            "gpus": int(info.extra.get("gpus", spec.info.get("gpus", 0))),
            "version": _version(),
            "engine_version": str(info.extra.get("version", "")),
        }
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="engine-loop", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._admit = threading.Condition(self._lock)
        self._in_flight: set[str] = set()
        self._stopped: set[str] = set()  # closed by a drain, not by the user
        self._writers: dict[str, events.AsyncEventLogWriter] = {}
        # Generations the Django side closed while this worker still ran them (its lease had
        # lapsed, e.g. across a Redis restart): their end is not ours to log.
        self._taken_over: set[str] = set()
        self.draining = False
        # Its own thread and a sync client: leases must not lapse while the engine's loop
        # is busy (a long prompt being prepared, many streams being written).
        self._beating = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)
        self._heartbeat.start()

    @classmethod
    def start(
        cls,
        spec: ModelSpec,
        config: InferenceConfig,
        send_record: Callable[[str, dict[str, Any]], None],
    ) -> EngineHost:
        """Load ``spec``'s engine and make it this process's host."""
        global _host
        _host = cls(spec, config, send_record)
        return _host

    # --- lifecycle ---------------------------------------------------------------
    def drain(self, grace_s: float | None = None) -> None:
        """Stop taking jobs; give in-flight generations ``grace_s`` to finish, then close
        them with their text so far. Returns when every generation is closed."""
        grace = self.config.drain_s if grace_s is None else grace_s
        with self._lock:
            self.draining = True
            self._admit.notify_all()
        deadline = time.monotonic() + grace
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            left = set(self._in_flight)
            self._stopped |= left
        for generation_id in left:
            self.loop.call_soon_threadsafe(self.engine.abort, generation_id)
        deadline = time.monotonic() + max(5.0, self.config.frame_interval_s * 10)
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._beating.set()
        self._heartbeat.join(timeout=5)
        with contextlib.suppress(redis.RedisError):  # a clean stop: not a lost worker
            retire(get_redis(), self.worker_id)
        self.engine.close()
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _beat_forever(self) -> None:
        interval = self.config.heartbeat_interval_s
        # Its own client, timing out within a beat: one hung call must not outlast the leases.
        client = redis.Redis.from_url(
            redis_url(),
            decode_responses=True,
            socket_timeout=max(1.0, interval),
            socket_connect_timeout=max(1.0, interval),
        )
        registered = False
        failing = ""  # the error heartbeats fail with, logged once (Redis itself: RedisWatch)
        while not self._beating.is_set():
            try:
                if not registered:
                    register(client, self.worker_id)
                    registered = True
                info = self.engine.info()
                with self._lock:
                    mine = [g for g in self._in_flight if g not in self._taken_over]
                lost = state.renew_leases(
                    client,
                    self.worker_id,
                    mine,
                    self.config.lease_ttl_s,
                    self.config.event_log_ttl_s,
                )
                for generation_id in lost:  # closed by the Django side meanwhile: stop it
                    log.warning("%s was closed elsewhere; stopping it here", generation_id)
                    with self._lock:
                        self._taken_over.add(generation_id)
                    self.loop.call_soon_threadsafe(self.engine.abort, generation_id)
                publish_heartbeat(
                    client,
                    self.worker_id,
                    {
                        "model": self.spec.name,
                        "queue": self.spec.queue,
                        "spec": self.announcement,
                        "in_flight": len(mine),
                        "capacity": 0 if self.draining else self.engine.capacity(),
                        "engine_active": info.active_requests,
                        "tokens_generated": info.tokens_generated,
                        "draining": self.draining,
                    },
                    interval,
                )
                if failing and failing != "redis":
                    log.warning("heartbeats resumed")
                failing = ""
            except Exception as exc:  # Redis down: keep beating, the leases come back with it
                # One line per change: Redis unreachable is RedisWatch's to report.
                reason = (
                    "redis"
                    if isinstance(exc, redis.ConnectionError | redis.TimeoutError)
                    else repr(exc)
                )
                if reason != failing:
                    if reason != "redis":
                        log.warning("heartbeat failed: %s", exc)
                    failing = reason
            self._beating.wait(interval)

    # --- one job -----------------------------------------------------------------
    def run_job(self, raw: Any) -> None:
        """Admit, claim, stream and close one generation. Every claimed one ends with ``done``."""
        try:
            job = Job.from_json(raw)
        except Exception as exc:  # JobError, or whatever else a malformed job trips over
            self._refuse(raw, exc)
            return
        self._wait_for_capacity()
        if not self._claim(job.generation_id):
            return  # stopped while queued, closed as lost, or another worker has it
        started_at = time.time()
        outcome = Outcome()
        try:
            self._call(self._started(job, started_at))
            request = job.request(
                [local_content(m["content"], self.config.media_cache_dir) for m in job.messages]
            )
            if request.params.max_tokens > self.spec.max_output_tokens:  # trust no sender
                request.params = replace(request.params, max_tokens=self.spec.max_output_tokens)
            self._call(self._stream(job, request, outcome))
        except Exception as exc:
            if not outcome.error_code:
                code = getattr(exc, "code", "worker_error")
                if code == "worker_error":
                    log.exception("generation %s failed", job.generation_id)
                outcome.fail(code, getattr(exc, "message", None) or str(exc))
        finally:
            if job.generation_id in self._stopped and outcome.finish_reason in (
                None,
                FINISH_CANCELLED,
            ):
                outcome.fail(STOPPED_CODE, STOPPED_MESSAGE)
            outcome.finished_at = outcome.finished_at or time.time()
            self._close(job.generation_id, outcome, job.enqueued_at, started_at)

    def _refuse(self, raw: Any, exc: Exception) -> None:
        """A job that does not follow the schema fails alone, with ``invalid_request``."""
        generation_id = raw.get("generation_id") if isinstance(raw, dict) else None
        log.warning("refused a malformed job %r: %r", generation_id, exc)
        if not isinstance(generation_id, str) or not self._claim(generation_id):
            return
        outcome = Outcome()
        outcome.fail("invalid_request", f"The request was refused: {exc}")
        self._close(generation_id, outcome, 0.0, time.time())

    def _wait_for_capacity(self) -> None:
        """Block until the engine can admit one more request (its capacity can shrink below
        the thread count, e.g. when a TensorRT-LLM engine runs short of KV cache)."""
        with self._admit:
            while not self.draining and (
                len(self._in_flight) >= self.slots or self.engine.capacity() <= 0
            ):
                self._admit.wait(timeout=0.05)
            if self.draining:
                raise Draining()

    def _claim(self, generation_id: str) -> bool:
        """Own the generation (owner, lease and queue position in one Redis step), unless
        the worker has started draining. Redis unreachable: the job goes back to the queue."""
        client = get_redis()
        try:
            claimed = state.claim_for_worker(
                client,
                generation_id,
                self.spec.name,
                self.worker_id,
                self.config.event_log_ttl_s,
                self.config.lease_ttl_s,
            )
        except redis.RedisError as exc:  # cannot tell whether it is ours: let it come back
            log.warning("cannot claim %s (%s); back to the queue", generation_id, exc)
            time.sleep(1.0)
            raise Requeue() from exc
        if not claimed:
            return False
        with self._lock:
            if not self.draining:
                self._in_flight.add(generation_id)
                return True
        # Drain began between admission and claim: give it back for another worker.
        state.release(client, generation_id, self.worker_id)
        raise Draining()

    async def _started(self, job: Job, started_at: float) -> None:
        await self._append(
            job.generation_id,
            events.STARTED_KIND,
            {
                "worker": self.worker_id,
                "queue_wait_ms": round((started_at - job.enqueued_at) * 1000, 1)
                if job.enqueued_at
                else None,
            },
        )

    def _writer(self, generation_id: str) -> events.AsyncEventLogWriter:
        # Made on the loop (the asyncio Redis client belongs to it); one per generation.
        writer = self._writers.get(generation_id)
        if writer is None:
            writer = events.AsyncEventLogWriter(
                get_async_redis(), generation_id, self.config.event_log_ttl_s, self.worker_id
            )
            self._writers[generation_id] = writer
        return writer

    async def _stream(self, job: Job, request: Any, outcome: Outcome) -> None:
        tokens = await self.engine.count_prompt_tokens(request)
        context = self.spec.context_length
        if tokens >= context:
            outcome.prompt_tokens = tokens
            outcome.fail(
                "context_length_exceeded",
                f"This conversation is {tokens:,} tokens; {self.spec.label} reads at most "
                f"{context:,}. Start a new conversation or shorten the message.",
            )
            return
        await stream_to_log(
            self.engine,
            request,
            self._writer(job.generation_id),
            self.config.frame_interval_s,
            thinking=job.thinking,
            reasoning_parser=self.spec.reasoning_parser,
            outcome=outcome,
        )

    def _close(
        self, generation_id: str, outcome: Outcome, enqueued_at: float, started_at: float
    ) -> None:
        """Append ``error`` + ``done`` (with the final record) and hand the record to the
        Django side, retrying while Redis is down; then release the lease."""
        record = outcome.record(enqueued_at, started_at, self.worker_id)
        # Closed (and logged) elsewhere already: nothing to deliver.
        sent = generation_id in self._taken_over or outcome.error_code == events.TAKEN_OVER
        pending = [] if sent else events.closing_events(record)
        started = time.monotonic()
        deadline = started + self.config.delivery_s
        delay = 0.2
        failed = False
        try:
            while True:
                try:
                    while pending:
                        self._call(self._append(generation_id, *pending[0]))
                        pending.pop(0)
                    if not sent:
                        self.send_record(generation_id, record)
                        sent = True
                    if failed:
                        log.warning(
                            "delivered the end of %s after %.1f s",
                            generation_id,
                            time.monotonic() - started,
                        )
                    break
                except Exception as exc:  # Redis or the broker is down: wait for it
                    if time.monotonic() > deadline:
                        log.error("gave up delivering the end of %s: %s", generation_id, exc)
                        break
                    if not failed:  # one line, not one per retry
                        log.warning(
                            "cannot deliver the end of %s yet (%s); retrying for %.0f s",
                            generation_id,
                            exc,
                            self.config.delivery_s,
                        )
                        failed = True
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            with self._lock:
                self._in_flight.discard(generation_id)
                self._stopped.discard(generation_id)
                self._taken_over.discard(generation_id)
                self._admit.notify_all()
            self._writers.pop(generation_id, None)
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                get_redis().delete(state.lease_key(generation_id))

    async def _append(self, generation_id: str, kind: str, payload: dict[str, Any]) -> None:
        await self._writer(generation_id).append(kind, payload)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


def _version() -> str:
    try:
        return metadata.version("qwen35-playground")
    except metadata.PackageNotFoundError:
        return "dev"
