"""Replies whose worker died mid-generation: found by the worker's missing heartbeat and
closed as errors, keeping the text streamed so far, so no reply stays "running" forever.

Celery beat runs ``inference.reap_lost_generations`` every minute on the ``media`` queue.
A worker's heartbeat expires after three missed beats; a reply is only reaped once it has
also been running for ``grace_s``, so a worker that has just started is never mistaken for
a dead one. The reply's final write is conditional on it still running, in the reaper and
in the worker alike (both use ``runtime.finish_reply``), so exactly one of them closes it
and writes its usage row and `done`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.utils import timezone

from engines.base import FINISH_ERROR
from inference import events
from inference.heartbeats import list_workers
from inference.redis_clients import get_redis
from inference.runtime import closing_events, finish_reply
from inference.streaming import Outcome
from playground.chat.models import Message

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
        .values_list("id", "started_at")
    )
    return [str(pk) for pk, started in candidates if _close(client, str(pk), started)]


def _close(client: redis.Redis, generation_id: str, started: datetime) -> bool:
    logged = events.read_all_sync(client, generation_id)
    outcome = Outcome(
        content=[e.payload["text"] for e in logged if e.kind == "content"],
        reasoning=[e.payload["text"] for e in logged if e.kind == "reasoning"],
        finish_reason=FINISH_ERROR,
        error_code=LOST_CODE,
        error_message=LOST_MESSAGE,
    )
    if not finish_reply(generation_id, started, outcome):
        return False  # the worker finished it after all
    if not any(e.kind == events.TERMINAL_KIND for e in logged):
        seq = logged[-1].seq if logged else 0
        ttl = settings.INFERENCE["EVENT_LOG_TTL_S"]
        for offset, (kind, payload) in enumerate(closing_events(outcome), start=1):
            events.append_event_sync(client, generation_id, seq + offset, kind, payload, ttl)
    return True
