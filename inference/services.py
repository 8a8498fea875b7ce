"""The one place where a chat turn becomes a queued generation (and where it is stopped).

Entry points (the WebSocket consumer, HTTP views, later the OpenAI-compatible
API) call these functions; they never talk to Celery or Redis themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from engines.base import FINISH_CANCELLED, SamplingParams
from engines.catalogue import ModelSpec
from engines.qwen35.family import PRESETS
from inference import events
from inference.catalogue import get_model
from inference.errors import InvalidRequest, NotFound, ServiceError
from inference.history import prompt_messages
from inference.prompt_tokens import count_prompt_tokens
from inference.redis_clients import get_redis
from playground.chat.models import Conversation, Message
from playground.media.models import Attachment

# The request's user; anonymous users never get past the entry points' auth checks.
User: TypeAlias = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class GenerationTicket:
    generation_id: str
    user_message_id: str
    conversation_id: str
    queue_position: int


def _parse_uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise NotFound(what) from None


def create_conversation(
    user: User, model: str, system_prompt: str = "", title: str = ""
) -> Conversation:
    spec = get_model(model)  # refuses unknown models
    if not spec.deployed:
        raise InvalidRequest(f"{spec.label} is in the catalogue but no checkpoint is deployed")
    return Conversation.objects.create(
        user=user, model=model, system_prompt=system_prompt[:20_000], title=title[:200]
    )


def get_conversation(user: User, conversation_id: Any) -> Conversation:
    """The user's conversation, or ``NotFound`` (also for someone else's)."""
    pk = _parse_uuid(conversation_id, "conversation")
    try:
        return Conversation.objects.get(pk=pk, user_id=user.pk)
    except Conversation.DoesNotExist:
        raise NotFound("conversation") from None


def get_generation(user: User, generation_id: Any) -> Message:
    """The user's assistant message ``generation_id``, or ``NotFound``."""
    pk = _parse_uuid(generation_id, "generation")
    try:
        return Message.objects.select_related("conversation").get(
            pk=pk, role=Message.Role.ASSISTANT, conversation__user_id=user.pk
        )
    except Message.DoesNotExist:
        raise NotFound("generation") from None


def resolve_generation_options(
    spec: ModelSpec, params: Any, thinking: Any, preset: Any
) -> tuple[SamplingParams, bool]:
    """Sampling and thinking for a request: explicit values over the preset over the model's."""
    if params is not None and not isinstance(params, dict):
        raise InvalidRequest("params must be an object")
    if thinking is not None and not isinstance(thinking, bool):
        raise InvalidRequest("thinking must be true or false")
    base = dict(spec.default_sampling)
    preset_thinking = None
    if preset is not None:
        if preset not in spec.presets:
            choices = ", ".join(spec.presets) or "none"
            raise InvalidRequest(f"unknown preset {preset!r} for {spec.name}; presets: {choices}")
        base = dict(PRESETS[preset]["sampling"])
        preset_thinking = PRESETS[preset]["thinking"]
    try:
        sampling = SamplingParams.from_dict({**base, **(params or {})})
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(str(exc)) from None
    if sampling.max_tokens > spec.max_output_tokens:
        sampling = replace(sampling, max_tokens=spec.max_output_tokens)
    if not spec.thinking:
        return sampling, False
    for choice in (thinking, preset_thinking):
        if choice is not None:
            return sampling, choice
    return sampling, spec.thinking == "on"


def start_generation(
    user: User,
    conversation_id: Any,
    content: Any,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    thinking: bool | None = None,
    preset: str | None = None,
    attachments: Any = None,
) -> GenerationTicket:
    """Store the user's message and a queued reply; enqueue the reply once both are committed.

    Refused before anything is stored: bad input, an unknown or undeployed
    model, and a conversation longer than the model's context.
    """
    if not isinstance(content, str) or not content.strip():
        raise InvalidRequest("message content must be a non-empty string")
    limit = settings.INFERENCE["MAX_PROMPT_CHARS"]
    if len(content) > limit:
        raise InvalidRequest(f"message is {len(content)} characters; the limit is {limit}")

    with transaction.atomic():
        pk = _parse_uuid(conversation_id, "conversation")
        # Locked: two generates in one conversation must not both pick the same parent.
        conversation = (
            Conversation.objects.select_for_update().filter(pk=pk, user_id=user.pk).first()
        )
        if conversation is None:
            raise NotFound("conversation")
        spec = get_model(model or conversation.model)
        if not spec.deployed:
            raise InvalidRequest(f"{spec.label} is in the catalogue but no checkpoint is deployed")
        sampling, thinking = resolve_generation_options(spec, params, thinking, preset)
        chat_options = {"enable_thinking": thinking} if spec.thinking else {}
        media = _owned_attachments(user, attachments, spec)
        earlier = list(conversation.messages.order_by("created_at").prefetch_related("attachments"))
        user_message = Message(
            conversation=conversation,
            parent=earlier[-1] if earlier else None,
            role=Message.Role.USER,
            content=content,
        )
        user_message.pending_attachments = media
        reply = Message(
            conversation=conversation,
            parent=user_message,
            role=Message.Role.ASSISTANT,
            status=Message.Status.QUEUED,
            model=spec.name,
            params=sampling.to_dict(),
            thinking=thinking,
            images=sum(1 for a in media if a.kind == "image"),
            videos=sum(1 for a in media if a.kind == "video"),
            video_seconds=sum(a.duration_s or 0.0 for a in media if a.kind == "video"),
        )
        prompt = prompt_messages(conversation, [*earlier, user_message], reply)
        check_context_length(spec, prompt, chat_options)
        Message.objects.bulk_create([user_message, reply])
        if media:
            user_message.attachments.set(media)
        if not conversation.title:
            conversation.title = content.strip().splitlines()[0][:80]
        conversation.model = spec.name
        conversation.save(update_fields=["title", "model", "updated_at"])
        # Everything the worker needs travels with the task, so it starts without
        # reading the conversation back (plain JSON, as every task payload).
        job = {
            "messages": [{"role": m.role, "content": m.content} for m in prompt],
            "params": sampling.to_dict(),
            "chat_options": chat_options,
            "thinking": thinking,
        }
        generation_id = str(reply.id)
        transaction.on_commit(lambda: _enqueue(generation_id, spec.queue, job))

    # After the commit: the worker is already on its way while this counts.
    position = Message.objects.filter(
        model=spec.name, status=Message.Status.QUEUED, created_at__lt=reply.created_at
    ).count()
    return GenerationTicket(
        generation_id=generation_id,
        user_message_id=str(user_message.id),
        conversation_id=str(conversation.id),
        queue_position=position,
    )


def _owned_attachments(user: User, ids: Any, spec: ModelSpec) -> list[Attachment]:
    """The user's attachments named in a generate request, checked before anything is stored."""
    if ids is None or ids == []:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("attachments must be a list of attachment ids")
    limit = settings.MEDIA_LIMITS["MAX_FILES_PER_MESSAGE"]
    if len(ids) > limit:
        raise InvalidRequest(f"{len(ids)} files attached; at most {limit} per message")
    if "image" not in spec.info.get("modalities", ()):
        raise InvalidRequest(f"{spec.label} cannot see images or videos; pick a vision model")
    found: dict[uuid.UUID, None] = {}
    for raw in ids:
        try:
            found[uuid.UUID(raw)] = None
        except ValueError:
            raise NotFound("attachment") from None
    owned = {a.pk: a for a in Attachment.objects.filter(pk__in=found, owner_id=user.pk)}
    if len(owned) != len(found):
        raise NotFound("attachment")  # someone else's, or gone: the two look the same
    return [owned[pk] for pk in found]


def check_context_length(spec: ModelSpec, prompt: list[Any], chat_options: dict[str, Any]) -> None:
    """Refuse a conversation that does not fit the model's context (with room to answer)."""
    tokens = count_prompt_tokens(spec, prompt, chat_options)
    if tokens is not None and tokens >= spec.context_length:
        raise ServiceError(
            "context_length_exceeded",
            f"This conversation is {tokens:,} tokens; {spec.label} reads at most "
            f"{spec.context_length:,}. Start a new conversation or shorten the message.",
        )


def _enqueue(generation_id: str, queue: str, job: dict[str, Any]) -> None:
    from inference.tasks import generate

    generate.apply_async(args=[generation_id, job], queue=queue)


def request_stop(user: User, generation_id: Any) -> None:
    """Stop a generation. A queued one ends here; a running one at its worker's next frame."""
    message = get_generation(user, generation_id)
    if message.is_terminal:
        return
    ttl = settings.INFERENCE["EVENT_LOG_TTL_S"]
    client = get_redis()
    events.request_cancel_sync(client, str(message.id), ttl)
    now = timezone.now()
    # Only one of this and the worker's claim can move the message out of `queued`.
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status=Message.Status.CANCELLED,
        finish_reason=FINISH_CANCELLED,
        finished_at=now,
        output_tokens=0,
    )
    if claimed:
        from playground.dashboard.usage import record_generation

        record_generation(Message.objects.select_related("conversation").get(pk=message.pk))
        events.append_event_sync(
            client,
            str(message.id),
            1,
            events.TERMINAL_KIND,
            {"finish_reason": FINISH_CANCELLED, "usage": {"prompt_tokens": 0, "output_tokens": 0}},
            ttl,
        )
