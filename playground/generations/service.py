"""The one generation service: start, events, stop and record.

Every front end (the chat socket, and later the HTTP API and Gradio) is a thin
adapter over these functions; none of them talks to Celery or Redis itself.
Workers never touch the database: a job carries everything the engine needs,
and the ``done`` event carries everything stored (see ``recorder``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, transaction

from engines.base import SamplingParams
from engines.catalogue import ModelSpec
from inference import events, state
from inference.jobs import GENERATE_TASK, Job
from inference.redis_clients import get_async_redis, get_redis
from playground.chat import tree
from playground.chat.models import Conversation, Message
from playground.generations import quotas, reaper, recorder, turns
from playground.generations.catalogue import get_model, require_served
from playground.generations.errors import InvalidRequest, NotFound, ServiceError
from playground.generations.history import prompt_messages
from playground.media.blob_urls import signed_blob_url

log = logging.getLogger(__name__)

# The request's user; anonymous users never get past the entry points' auth checks.
User: TypeAlias = AbstractBaseUser | AnonymousUser

QUEUE_UNAVAILABLE = (
    "The server could not queue this reply (its queue is unreachable). Try again in a moment."
)


@dataclass(frozen=True)
class GenerationTicket:
    generation_id: str
    user_message_id: str
    conversation_id: str
    model: str
    queue_position: int
    parent_id: str | None = None  # the user message's parent (None: a first message)
    created: bool = False  # the conversation was created by this request
    title: str = ""


def create_conversation(
    user: User, model: str, system_prompt: str = "", title: str = "", source: str = "chat"
) -> Conversation:
    spec = get_model(model)  # refuses unknown models
    require_served(spec)
    return Conversation.objects.create(
        user=user,
        model=model,
        system_prompt=system_prompt[: turns.MAX_SYSTEM_PROMPT_CHARS],
        title=title[:200],
        source=source,
    )


def get_conversation(user: User, conversation_id: Any) -> Conversation:
    """The user's conversation, or ``NotFound`` (also for someone else's, or a deleted one)."""
    pk = turns.parse_uuid(conversation_id, "conversation")
    try:
        return Conversation.objects.get(pk=pk, user_id=user.pk, deleted_at__isnull=True)
    except Conversation.DoesNotExist:
        raise NotFound("conversation") from None


def get_generation(user: User, generation_id: Any) -> Message:
    """The user's assistant message ``generation_id``, or ``NotFound``."""
    pk = turns.parse_uuid(generation_id, "generation")
    try:
        return Message.objects.select_related("conversation").get(
            pk=pk,
            role=Message.Role.ASSISTANT,
            conversation__user_id=user.pk,
            conversation__deleted_at__isnull=True,
        )
    except Message.DoesNotExist:
        raise NotFound("generation") from None


def start_generation(
    user: User,
    conversation_id: Any,
    content: Any,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    thinking: bool | None = None,
    preset: str | None = None,
    attachments: Any = None,
    *,
    edit_of: Any = None,
    system_prompt: Any = None,
) -> GenerationTicket:
    """Store the user's message and a queued reply; enqueue the reply once both are committed.

    The message follows the branch on screen (the conversation's current leaf); with
    ``edit_of`` (a user message) it becomes that message's new sibling, a new branch.
    With no ``conversation_id`` a ``model`` starts a new conversation, stored only now,
    with its first message. Refused before anything is stored: bad input, an unknown
    model, and a model no live worker serves. A conversation too long for the model's
    context is refused by the worker before it generates, and then nothing of the turn
    is kept.
    """
    if not isinstance(content, str):
        raise InvalidRequest("message content must be a non-empty string")
    limit = settings.INFERENCE["MAX_PROMPT_CHARS"]
    if len(content) > limit:
        raise InvalidRequest(f"message is {len(content)} characters; the limit is {limit}")
    turns.refuse_nul(content, "the message", "content")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("model must be a string")

    created = conversation_id is None and edit_of is None
    with transaction.atomic():
        if edit_of is not None and conversation_id is None:
            conversation_id = turns.conversation_of(user, edit_of)
        if created:
            conversation = turns.new_conversation(user, model, system_prompt)
            messages: list[Message] = []
        else:
            conversation = turns.locked_conversation(user, conversation_id)
            messages = turns.messages_of(conversation)
        spec, sampling, thinking = turns.choose_options(
            conversation, model, params, thinking, preset
        )
        if edit_of is not None:
            original = turns.message_in(messages, edit_of, Message.Role.USER)
            parent = original.parent
            kept = list(original.attachments.all()) if attachments is None else None
        else:
            parent = tree.current_leaf(conversation, messages)
            kept = None
        if kept:
            turns.require_vision(spec)
            media = kept
        else:
            media = turns.owned_attachments(user, attachments, spec)
        if not content.strip() and not media:
            raise InvalidRequest("message content must be a non-empty string")
        user_message = Message(
            conversation=conversation, parent=parent, role=Message.Role.USER, content=content
        )
        user_message.pending_attachments = media
        if not conversation.title:
            conversation.title = turns.auto_title(content, media)
        queued = _queue_reply(user, conversation, messages, user_message, spec, sampling, thinking)
    return _ticket(queued, created=created)


def regenerate(
    user: User,
    message_id: Any,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    thinking: bool | None = None,
    preset: str | None = None,
) -> GenerationTicket:
    """A new reply to the user message ``message_id`` (or to the one that the reply
    ``message_id`` answered): a sibling of the earlier replies, and the branch on screen."""
    with transaction.atomic():
        conversation = turns.locked_conversation(user, turns.conversation_of(user, message_id))
        messages = turns.messages_of(conversation)
        target = turns.message_in(messages, message_id, None)
        asked = target if target.role == Message.Role.USER else target.parent
        if asked is None:
            raise InvalidRequest("this reply has no question to answer again")
        spec, sampling, thinking = turns.choose_options(
            conversation, model, params, thinking, preset
        )
        if asked.attachments.exists():
            turns.require_vision(spec)
        queued = _queue_reply(user, conversation, messages, asked, spec, sampling, thinking)
    return _ticket(queued, created=False)


def _queue_reply(
    user: User,
    conversation: Conversation,
    messages: list[Message],
    asked: Message,
    spec: ModelSpec,
    sampling: SamplingParams,
    thinking: bool,
) -> _Queued:
    """Store ``asked`` (when new) and a queued reply to it, make the reply the current
    leaf, and enqueue it on commit. Runs inside the caller's transaction."""
    media = turns.attachments_of(asked)
    reply = Message(
        conversation=conversation,
        parent=asked,
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        model=spec.name,
        params=sampling.to_dict(),
        thinking=thinking,
        images=sum(1 for a in media if a.kind == "image"),
        videos=sum(1 for a in media if a.kind == "video"),
        video_seconds=sum(a.duration_s or 0.0 for a in media if a.kind == "video"),
    )
    require_served(spec)
    is_new = asked._state.adding
    prompt = prompt_messages(conversation, [*messages, asked] if is_new else messages, reply)
    Message.objects.bulk_create([asked, reply] if is_new else [reply])
    if is_new and media:
        asked.attachments.set(media)
    conversation.model = spec.name
    conversation.current_leaf = reply
    conversation.save(
        update_fields=[
            "title",
            "model",
            "current_leaf",
            "preset",
            "thinking",
            "params",
            "updated_at",
        ]
    )
    chat_options = {"enable_thinking": thinking} if spec.thinking else {}
    # Everything the worker needs travels with the job (plain JSON): it never reads
    # the database, and media come by signed URL.
    job = Job(
        generation_id=str(reply.id),
        model=spec.name,
        messages=[{"role": m.role, "content": _with_urls(m.content)} for m in prompt],
        params=sampling.to_dict(),
        chat_options=chat_options,
        thinking=thinking,
        enqueued_at=reply.created_at.timestamp(),
    )
    failures: list[Exception] = []

    def enqueue() -> None:
        try:
            _enqueue(spec, job)
        except Exception as exc:  # the broker is down: close the reply, tell the user
            failures.append(exc)

    # Quotas last, inside the transaction: a refusal rolls the turn back (nothing is
    # stored), and nothing after the slot is taken can fail but the commit itself.
    quotas.check_generation(user, str(reply.id))
    transaction.on_commit(enqueue)
    return _Queued(reply, asked, conversation, spec, failures)


@dataclass
class _Queued:
    reply: Message
    asked: Message
    conversation: Conversation
    spec: ModelSpec
    failures: list[Exception]  # filled by the on-commit enqueue


def _ticket(queued: _Queued, created: bool) -> GenerationTicket:
    """After the commit: a reply the broker refused is closed, else its queue position."""
    gid = str(queued.reply.id)
    if queued.failures:
        log.warning("enqueue of %s failed: %s", gid, queued.failures[0])
        recorder.close_unstarted(gid, "queue_unavailable", QUEUE_UNAVAILABLE)
        raise ServiceError("queue_unavailable", QUEUE_UNAVAILABLE)
    try:
        position = state.queue_position(get_redis(), queued.spec.name, gid) or 0
    except redis.RedisError:
        position = 0
    return GenerationTicket(
        generation_id=gid,
        user_message_id=str(queued.asked.id),
        conversation_id=str(queued.conversation.id),
        model=queued.spec.name,
        queue_position=position,
        parent_id=str(queued.asked.parent_id) if queued.asked.parent_id else None,
        created=created,
        title=queued.conversation.title,
    )


def _with_urls(content: Any) -> Any:
    """Media parts get a short-lived signed URL the worker fetches the file from."""
    if isinstance(content, str):
        return content
    return [
        {**part, "url": signed_blob_url(part["sha256"])}
        if part.get("type") in ("image", "video")
        else part
        for part in content
    ]


def _enqueue(spec: ModelSpec, job: Job) -> None:
    from playground.celery import app

    client = get_redis()
    state.mark_queued(client, spec.name, job.generation_id, settings.INFERENCE["EVENT_LOG_TTL_S"])
    try:
        app.send_task(
            GENERATE_TASK,
            args=[job.to_json()],
            queue=spec.queue,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.1},
        )
    except Exception:
        state.unqueue(client, spec.name, job.generation_id)
        raise


def request_stop(user: User, generation_id: Any) -> None:
    """Stop a generation. A queued one ends here; a running one at its worker's next frame."""
    message = get_generation(user, generation_id)
    if message.is_terminal:
        return
    client = get_redis()
    gid = str(message.id)
    events.request_cancel_sync(client, gid, settings.INFERENCE["EVENT_LOG_TTL_S"])
    # Exactly one of this and a worker's claim takes the generation out of the queue. A
    # log or a live lease means a worker runs it (even if a restarted Redis lost its owner).
    started = client.exists(events.log_key(gid)) or state.lease_holder(client, gid)
    if not started and state.claim(
        client, gid, state.STOPPED, settings.INFERENCE["EVENT_LOG_TTL_S"]
    ):
        state.unqueue(client, message.model, gid)
        recorder.close_unstarted(gid, "", "", cancelled=True)


async def generation_events(
    generation_id: str, after_seq: int = 0, model: str = "", poll_s: float = 1.0
) -> AsyncIterator[dict[str, Any]]:
    """Every event of a generation after ``after_seq``, then the live ones, until ``done``.

    The caller has checked that the generation is the user's. Yields dicts with a
    ``type``: ``queued`` (``position``, while the job waits in the broker, not
    logged), ``started``, ``delta`` (``kind``, ``text``), ``error`` and ``done``
    (the final record). It never hangs: a log that falls silent without a live
    lease is reconciled with the stored reply, and a reply whose worker died is
    closed as lost. Redis going away is an ``error`` event, not a dropped socket.
    """
    seq = after_seq
    position: int | None = None
    silent_since = time.monotonic()
    suspect_since: float | None = None
    outage = False
    final: dict[str, Any] | None = None
    while True:
        if not model:
            model = await _model_of(generation_id)
        try:
            client = get_async_redis()
            batch = await events.read_events(client, generation_id, seq, int(poll_s * 1000))
            if seq == 0 and not batch and model:
                now = await state.queue_position_async(client, model, generation_id)
                if now is not None and now != position:
                    position = now
                    yield {"type": "queued", "generation_id": generation_id, "position": now}
        except (redis.RedisError, OSError) as exc:
            if not outage:
                log.warning("event log of %s unreadable: %s", generation_id, exc)
                outage = True
                yield {
                    "type": "error",
                    "generation_id": generation_id,
                    "code": "stream_unavailable",
                    "message": "The live stream is interrupted; reconnecting…",
                }
            batch = []
            await asyncio.sleep(poll_s)
        else:
            outage = False
        for event in batch:
            seq = event.seq
            silent_since = time.monotonic()
            suspect_since = None
            if event.kind == events.TERMINAL_KIND:
                await _record_quietly(generation_id, event.payload)
            yield socket_event(generation_id, event.seq, event.kind, event.payload)
            if event.kind == events.TERMINAL_KIND:
                return
        if batch:
            continue
        if final is not None:  # stored as final, and its log has no `done`: say so ourselves
            for offset, (kind, payload) in enumerate(events.closing_events(final), start=1):
                yield socket_event(generation_id, seq + offset, kind, payload)
            return
        if time.monotonic() - silent_since < settings.INFERENCE["RECONCILE_AFTER_S"]:
            continue
        # Silent for a while: is anyone still working on it? A reply that looks lost is
        # closed only if it still does a lease length later (a lease may be late).
        silent_since = time.monotonic()
        lease_s = settings.INFERENCE["LEASE_TTL_S"]
        ripe = suspect_since is not None and time.monotonic() - suspect_since >= lease_s
        looked = await _reconcile(generation_id, close_if_lost=ripe)
        lost = looked == reaper.SUSPECT
        suspect_since = (suspect_since or time.monotonic()) if lost else None
        if isinstance(looked, dict):
            # Final now. A close made just now logged `error` + `done`: the next read
            # delivers them; if the log is gone, the stored record is sent instead.
            final = looked


async def _reconcile(generation_id: str, close_if_lost: bool) -> dict[str, Any] | str | None:
    """``reaper.reconcile`` off the loop; a database outage means "cannot tell yet"."""
    try:
        return await database_sync_to_async(reaper.reconcile, thread_sensitive=False)(
            generation_id, close_if_lost
        )
    except DatabaseError as exc:
        log.info("cannot reconcile %s while the database is unreachable: %s", generation_id, exc)
        return None


async def _model_of(generation_id: str) -> str:
    """The reply's model ("" if the database cannot say right now)."""
    try:
        found = await database_sync_to_async(
            lambda: (
                Message.objects.filter(pk=generation_id).values_list("model", flat=True).first()
            ),
            thread_sensitive=False,
        )()
    except DatabaseError:
        return ""
    return found or ""


async def _record_quietly(generation_id: str, record: dict[str, Any]) -> None:
    """Store the final record now if the recorder task has not yet (exactly once either way),
    so a page that reloads after ``done`` sees the stored reply. PostgreSQL down: the
    recorder task keeps retrying; the client still gets ``done``."""
    store = database_sync_to_async(recorder.record_result, thread_sensitive=False)
    try:
        # Bounded: a database that hangs must not hold `done` back from the reader.
        await asyncio.wait_for(store(generation_id, record), timeout=5.0)
    except Exception as exc:
        log.warning(
            "recording %s from the stream failed (%s); the recorder retries", generation_id, exc
        )


def socket_event(
    generation_id: str, seq: int, kind: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """A log event as front ends see it."""
    base = {"generation_id": generation_id, "seq": seq}
    if kind in events.TEXT_KINDS:
        return {"type": "delta", **base, "kind": kind, "text": payload["text"]}
    return {"type": kind, **base, **payload}
