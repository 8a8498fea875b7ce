"""The Django-side recorder: a reply's final write, exactly once, from its ``done`` record.

Workers never touch the database. When a generation ends, its worker appends
``done`` (carrying the final text, reasoning, usage and timings) to the event
log and sends ``generations.record`` to the ``records`` queue; the Django-side
worker stores it whether or not a browser is watching, retrying while
PostgreSQL is down. Front ends reading the log also store it as they pass
``done`` (so a reload right after sees it). The write is an UPDATE conditional
on the reply not being final yet, so whichever comes first wins and the rest
are no-ops.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from engines.base import FINISH_CANCELLED, FINISH_ERROR
from inference import counters, events
from inference.jobs import RECORD_TASK
from inference.redis_clients import get_redis
from inference.streaming import Outcome
from playground.chat import tree
from playground.chat.models import Conversation, Message
from playground.dashboard.usage import record_generation
from playground.generations import quotas

log = logging.getLogger(__name__)
OPEN = (Message.Status.QUEUED, Message.Status.RUNNING)
# Refused before generating: the turn is not kept (as if it had been refused at the door).
NOT_KEPT = ("context_length_exceeded",)


def record_result(generation_id: str, record: dict[str, Any]) -> bool:
    """Store a finished generation's record; False if the reply was already final (or gone)."""
    error = record.get("error") or {}
    code = str(error.get("code") or "")
    if code in NOT_KEPT:
        return _forget_turn(generation_id)
    created = Message.objects.filter(pk=generation_id).values_list("created_at", flat=True).first()
    if created is None:
        return False
    timings = record.get("timings") or {}
    usage = record.get("usage") or {}
    started = _dt(timings.get("started_at"))
    first = _dt(timings.get("first_token_at"))
    finished = _dt(timings.get("finished_at")) or timezone.now()
    output_tokens = int(usage.get("output_tokens") or 0)
    tpot = None
    if first and output_tokens > 1:
        tpot = (finished - first).total_seconds() * 1000 / (output_tokens - 1)
    reasoning_ms = None
    if timings.get("reasoning_started_at"):
        end = timings.get("content_started_at") or timings.get("finished_at")
        reasoning_ms = (float(end) - float(timings["reasoning_started_at"])) * 1000 if end else None
    finish_reason = str(record.get("finish_reason") or FINISH_ERROR)
    status = {
        FINISH_CANCELLED: Message.Status.CANCELLED,
        FINISH_ERROR: Message.Status.ERROR,
    }.get(finish_reason, Message.Status.DONE)
    with transaction.atomic():
        updated = Message.objects.filter(pk=generation_id, status__in=OPEN).update(
            # Exactly what was streamed: the stored reasoning equals the streamed reasoning.
            content=str(record.get("content") or ""),
            reasoning=str(record.get("reasoning") or ""),
            reasoning_ms=reasoning_ms,
            status=status,
            finish_reason=finish_reason,
            error_code=code,
            error_message=str(error.get("message") or "")[:2000],
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            vision_tokens=int(usage.get("vision_tokens") or 0),
            output_tokens=output_tokens,
            worker=str(record.get("worker") or "")[:200],
            started_at=started,
            first_token_at=first,
            finished_at=finished,
            queue_wait_ms=_ms(started - created) if started else None,
            ttft_ms=_ms(first - created) if first else None,
            tpot_ms=tpot,
            total_ms=_ms(finished - created),
        )
        if updated:
            message = Message.objects.select_related("conversation").get(pk=generation_id)
            record_generation(message)
    if updated:  # after the commit: the slot is free, the day's tokens counted, once
        quotas.generation_finished(
            message.conversation.user_id,
            generation_id,
            (message.prompt_tokens or 0) + (message.output_tokens or 0),
        )
    return bool(updated)


def _forget_turn(generation_id: str) -> bool:
    """Delete a refused reply and the user message it answered (if nothing else hangs off
    it), and the conversation if that was all of it."""
    with transaction.atomic():
        # The conversation first, as start_generation locks it: one lock order, no deadlock.
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .filter(messages__pk=generation_id, messages__status__in=OPEN)
            .first()
        )
        reply = (
            Message.objects.select_for_update().filter(pk=generation_id, status__in=OPEN).first()
        )
        if conversation is None or reply is None:
            return False
        parent, reply_id = reply.parent, reply.pk
        quotas.release(conversation.user_id, generation_id)
        reply.delete()
        if parent is not None and not parent.children.exists():
            kept = parent.parent
            parent.delete()
        else:
            kept = parent
        messages = list(conversation.messages.all())
        if not messages:  # its only turn: a conversation is never kept empty
            conversation.delete()
        elif conversation.current_leaf_id in (None, reply_id):
            # The branch on screen lost its end: show where it continues from what is left.
            start = next((m for m in messages if kept is not None and m.pk == kept.pk), None)
            conversation.current_leaf = tree.descend(messages, start)
            conversation.save(update_fields=["current_leaf"])
    return True


def close_unstarted(
    generation_id: str, code: str, message: str, *, cancelled: bool = False
) -> bool:
    """Close a reply no worker will run (stopped while queued, or never queued): stored
    first, then ``done`` in its log, so a page following it ends too."""
    ended = Outcome(
        finish_reason=FINISH_CANCELLED if cancelled else FINISH_ERROR,
        error_code=code,
        error_message=message,
        finished_at=time.time(),
    )
    record = ended.record(0.0, 0.0, "")
    if not record_result(generation_id, record):
        return False
    append_closing(generation_id, record)
    return True


def append_closing(generation_id: str, record: dict[str, Any]) -> None:
    """``error`` (if any) then ``done`` after the log's last event; nothing if it already
    ends with ``done``. Best effort: with Redis down, readers reconcile with the stored reply."""
    from django.conf import settings

    ttl = settings.INFERENCE["EVENT_LOG_TTL_S"]
    closing = events.closing_events(record)
    try:
        events.append_closing_sync(get_redis(), generation_id, closing, ttl)
    except Exception as exc:
        log.warning("could not log the end of %s: %s", generation_id, exc)


@shared_task(
    name=RECORD_TASK,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError, DatabaseError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=False,
    max_retries=1000,  # about 8 hours at the 30 s cap: PostgreSQL will be back by then
)
def record(generation_id: str, record: dict[str, Any]) -> None:
    """Store a generation's final record (sent by its worker with ``done``).

    Each failed attempt (PostgreSQL down: retried with back-off) is counted in
    ``recorder_failures`` for ``/metrics``."""
    from django.db import close_old_connections

    try:
        close_old_connections()  # a connection broken by a PostgreSQL restart is dropped first
        record_result(generation_id, record)
    except Exception:
        counters.incr(get_redis(), "recorder_failures")
        raise


def _dt(timestamp: Any) -> datetime | None:
    return datetime.fromtimestamp(float(timestamp), tz=UTC) if timestamp else None


def _ms(delta: Any) -> float:
    return float(delta.total_seconds() * 1000)
