"""Generations nobody will finish: found from Redis state and closed, keeping their text.

A reply that is not final in PostgreSQL is fine while its job waits in the
queue (``queue:<model>``) or a worker holds its lease. Otherwise:

- its log already ends with ``done``: the record was missed; it is stored now;
- it was claimed and its lease is gone: the worker died. Closed as
  ``worker_lost`` with the text and token counts its log holds;
- it was never claimed and is in no queue: the job was lost (Redis restarted,
  or the broker failed after the reply was stored). Closed as ``queue_lost``.

A lease can be missing for a moment (Redis just restarted, a heartbeat is
late), so a reply is only closed when it looks lost twice, a lease-length
apart. Celery beat runs ``generations.reap`` every 30 s; a page following a
reply that falls silent runs the same check for that one reply
(``service.generation_events``).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import redis
from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from engines.base import FINISH_ERROR
from inference import counters, events, state
from inference.redis_clients import get_redis
from inference.streaming import Outcome
from playground.chat.models import Message
from playground.generations import recorder

log = logging.getLogger(__name__)

SUSPECT = "suspect"
LOST_CODE = "worker_lost"
LOST_MESSAGE = (
    "The worker generating this reply stopped before it finished (it crashed or was "
    "restarted). The text so far is kept; ask again to get a full answer."
)
QUEUE_LOST_CODE = "queue_lost"
QUEUE_LOST_MESSAGE = (
    "This reply's place in the queue was lost (the server's queue restarted). Ask again."
)
NO_WORKER_CODE = "no_worker"
NO_WORKER_MESSAGE = (
    "No worker has served this model for a long time, so this reply was given up. "
    "Try again later or pick another model."
)


def _abandoned(client: redis.Redis, message: Message) -> bool:
    """Queued longer than QUEUE_ABANDON_S while no worker serves the model at all."""
    from inference.heartbeats import live_models

    limit = settings.INFERENCE["QUEUE_ABANDON_S"]
    if message.created_at > timezone.now() - timedelta(seconds=limit):
        return False
    return message.model not in live_models(client)


def stored_record(message: Message) -> dict[str, Any]:
    """A final reply as a ``done`` payload (for readers whose log has no ``done``)."""
    error = (
        {"code": message.error_code, "message": message.error_message}
        if message.error_code
        else None
    )
    return {
        "finish_reason": message.finish_reason or FINISH_ERROR,
        "usage": {
            "prompt_tokens": message.prompt_tokens or 0,
            "output_tokens": message.output_tokens or 0,
            "vision_tokens": message.vision_tokens or 0,
        },
        "content": message.content,
        "reasoning": message.reasoning,
        "error": error,
        "reconciled": True,
    }


def reconcile(generation_id: str, close_if_lost: bool) -> dict[str, Any] | str | None:
    """The stored final record if the reply is (or now gets) final; ``SUSPECT`` if it looks
    lost but ``close_if_lost`` is False; None while it is queued or alive."""
    message = Message.objects.filter(pk=generation_id).first()
    if message is None:
        gone = Outcome(error_code="not_found", error_message="this reply no longer exists")
        return {**gone.record(0.0, 0.0, ""), "reconciled": True}
    if message.is_terminal:
        return stored_record(message)
    try:
        verdict = _inspect(get_redis(), message, close_if_lost)
    except redis.RedisError as exc:
        log.info("cannot reconcile %s while Redis is unreachable: %s", generation_id, exc)
        return None
    if verdict is None or verdict == SUSPECT:
        return verdict
    closed = Message.objects.filter(pk=generation_id).first()  # gone if the turn was refused
    if closed is None:
        return reconcile(generation_id, close_if_lost)
    return stored_record(closed) if closed.is_terminal else None


def _inspect(client: redis.Redis, message: Message, close: bool) -> str | None:
    gid = str(message.id)
    if _store_logged_done(gid, events.read_all_sync(client, gid)):
        return "closed"
    if state.lease_holder(client, gid):
        return None
    owner = state.owner(client, gid)
    if owner is None:
        if state.queue_position(client, message.model, gid) is not None:
            # Waiting in the broker. Only if no worker has served the model for a long
            # time is the wait given up (a worker for it may be restarting).
            if not _abandoned(client, message):
                return None
            code, text = NO_WORKER_CODE, NO_WORKER_MESSAGE
        else:
            grace = settings.INFERENCE["ENQUEUE_GRACE_S"]
            if message.created_at > timezone.now() - timedelta(seconds=grace):
                return None
            code, text = QUEUE_LOST_CODE, QUEUE_LOST_MESSAGE
    elif owner == state.STOPPED:
        code, text = "", ""  # stopped while queued; the Stop's own write did not land
    elif owner == state.CLOSED:
        code, text = LOST_CODE, LOST_MESSAGE  # taken over before; its write did not land
    else:
        code, text = LOST_CODE, LOST_MESSAGE
    if not close:
        return SUSPECT
    if owner == state.STOPPED:
        recorder.close_unstarted(gid, "", "", cancelled=True)
        return "closed"
    ttl = settings.INFERENCE["EVENT_LOG_TTL_S"]
    if owner != state.CLOSED and not state.take_over(client, gid, owner, ttl):
        return None  # a worker holds it after all (its lease came back)
    if owner is None:
        state.unqueue(client, message.model, gid)  # a late worker will find it taken
    logged = events.read_all_sync(client, gid)  # again: no worker can append any more
    if _store_logged_done(gid, logged):  # it finished just before we took over
        return "closed"
    frames = [e for e in logged if e.kind in events.TEXT_KINDS]
    last = frames[-1].payload if frames else {}
    lost = Outcome(
        content=[e.payload["text"] for e in frames if e.kind == "content"],
        reasoning=[e.payload["text"] for e in frames if e.kind == "reasoning"],
        prompt_tokens=int(last.get("prompt_tokens") or 0),
        output_tokens=int(last.get("output_tokens") or 0),
        finished_at=time.time(),
    )
    lost.fail(code, text)
    record = lost.record(0.0, 0.0, owner or "")
    if recorder.record_result(gid, record):
        recorder.append_closing(gid, record)
        log.warning("closed %s as %s", gid, code)
    return "closed"


def _store_logged_done(generation_id: str, logged: list[events.Event]) -> bool:
    """If the log already ends the reply, store that record (the recorder missed it)."""
    done = next((e for e in logged if e.kind == events.TERMINAL_KIND), None)
    if done is not None:
        recorder.record_result(generation_id, done.payload)
    return done is not None


def reap_lost_generations(
    grace_s: float | None = None, recheck_s: float | None = None
) -> list[str]:
    """Close every reply nobody will finish (see the module docstring); return their ids."""
    client = get_redis()
    open_ids = [
        str(pk)
        for pk in Message.objects.filter(
            role=Message.Role.ASSISTANT,
            status__in=recorder.OPEN,
            created_at__lt=timezone.now()
            - timedelta(
                seconds=settings.INFERENCE["ENQUEUE_GRACE_S"] if grace_s is None else grace_s
            ),
        ).values_list("id", flat=True)[:1000]
    ]
    suspects = [gid for gid in open_ids if _look(client, gid, close=False) == SUSPECT]
    if not suspects:
        return []
    time.sleep(settings.INFERENCE["LEASE_TTL_S"] if recheck_s is None else recheck_s)
    return [gid for gid in suspects if _look(client, gid, close=True) == "closed"]


def _look(client: redis.Redis, generation_id: str, close: bool) -> str | None:
    message = Message.objects.filter(pk=generation_id).first()
    if message is None or message.is_terminal:
        return None
    return _inspect(client, message, close)


@shared_task(name="generations.reap", ignore_result=True)
def reap() -> None:
    """Periodic (Celery beat): close replies that nobody will finish. A run that fails is
    counted in ``reaper_failures`` for ``/metrics``; PostgreSQL or Redis being down is
    logged in one line (the next run tries again), anything else with its traceback."""
    try:
        reap_lost_generations()
    except (DatabaseError, redis.RedisError) as exc:
        counters.incr(get_redis(), "reaper_failures")
        log.warning("the reaper could not run: %s", " ".join(str(exc).split())[:300])
    except Exception:
        counters.incr(get_redis(), "reaper_failures")
        raise
