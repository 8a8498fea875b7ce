"""Replies whose worker died mid-generation: found by the worker's missing heartbeat and
closed as errors, keeping the text streamed so far, so no reply stays "running" forever.

Celery beat runs ``inference.reap_lost_generations`` every minute on the ``media`` queue.
A worker's heartbeat expires after three missed beats; a reply is only reaped once it has
also been running for ``grace_s``, so a worker that has just started is never mistaken for
a dead one. The reply's final write is conditional on it still running, in the reaper and
in the worker alike, so exactly one of them closes it and writes its usage row and `done`.
"""

from __future__ import annotations

from datetime import timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engines.base import FINISH_ERROR
from inference import events
from inference.heartbeats import list_workers
from inference.redis_clients import get_redis
from playground.chat.models import Message
from playground.dashboard.usage import record_generation

LOST_CODE = "worker_lost"
LOST_MESSAGE = (
    "The worker generating this reply stopped before it finished (it crashed or was "
    "restarted). The text so far is kept; ask again to get a full answer."
)


def reap_lost_generations(grace_s: float = 30.0) -> list[str]:
    """Close every running reply whose worker has no heartbeat; return their ids."""
    client = get_redis()
    alive = {worker.get("worker_id") for worker in list_workers(client)}
    candidates = (
        Message.objects.filter(
            status=Message.Status.RUNNING,
            started_at__lt=timezone.now() - timedelta(seconds=grace_s),
        )
        .exclude(worker__in=alive)
        .values_list("id", "worker")
    )
    return [str(pk) for pk, worker in candidates if _close(client, str(pk), worker)]


def _close(client: redis.Redis, generation_id: str, worker: str) -> bool:
    logged = events.read_all_sync(client, generation_id)
    text = {kind: "".join(e.payload["text"] for e in logged if e.kind == kind)
            for kind in events.TEXT_KINDS}  # fmt: skip
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(pk=generation_id, status=Message.Status.RUNNING, worker=worker)
            .first()
        )
        if message is None:
            return False  # the worker finished it after all
        message.status = Message.Status.ERROR
        message.finish_reason = FINISH_ERROR
        message.error_code = LOST_CODE
        message.error_message = LOST_MESSAGE
        message.content = text["content"]
        message.reasoning = text["reasoning"].strip()
        message.finished_at = now
        message.queue_wait_ms = _ms(message.started_at - message.created_at)
        message.total_ms = _ms(now - message.created_at)
        message.save(
            update_fields=["status", "finish_reason", "error_code", "error_message", "content",
                           "reasoning", "finished_at", "queue_wait_ms", "total_ms"]
        )  # fmt: skip
        record_generation(Message.objects.select_related("conversation").get(pk=message.pk))
    if not any(e.kind == events.TERMINAL_KIND for e in logged):
        ttl = settings.INFERENCE["EVENT_LOG_TTL_S"]
        seq = logged[-1].seq if logged else 0
        events.append_event_sync(
            client,
            generation_id,
            seq + 1,
            "error",
            {"code": LOST_CODE, "message": LOST_MESSAGE},
            ttl,
        )
        done = {"finish_reason": FINISH_ERROR, "usage": {"prompt_tokens": 0, "output_tokens": 0}}
        events.append_event_sync(client, generation_id, seq + 2, events.TERMINAL_KIND, done, ttl)
    return True


def _ms(delta: timedelta) -> float:
    return delta.total_seconds() * 1000
