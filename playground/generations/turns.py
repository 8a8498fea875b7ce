"""What a new turn is checked against and built from, before the service stores it: the
conversation (a new one, or the user's, locked), the message edited, the options (the
request's over the conversation's over the preset's over the model's), the attachments,
and the title a new conversation takes from its first message."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any, TypeAlias

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from engines.base import SamplingParams
from engines.catalogue import ModelSpec
from playground.chat.models import Conversation, Message
from playground.generations.catalogue import get_model
from playground.generations.errors import InvalidRequest, NotFound
from playground.media.models import Attachment

User: TypeAlias = AbstractBaseUser | AnonymousUser

MAX_SYSTEM_PROMPT_CHARS = 20_000
TITLE_CHARS = 60
MARKDOWN_LEAD = re.compile(r"^\s*(?:#{1,6}\s|>\s?|[-*+]\s|\d+[.)]\s|`{3}\w*)*")


def parse_uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise NotFound(what) from None


def auto_title(content: str, media: list[Attachment]) -> str:
    """A conversation's automatic title: the first line of its first message, without
    Markdown's leading marks, cut at a word near 60 characters (no model call: instant,
    free, and never a hallucinated summary); for a message of files only, their names."""
    for line in content.splitlines():
        text = " ".join(MARKDOWN_LEAD.sub("", line).split())
        if text:
            if len(text) <= TITLE_CHARS:
                return text
            cut = text[:TITLE_CHARS].rsplit(" ", 1)[0] or text[:TITLE_CHARS]
            return cut.rstrip(",.;:") + "…"
    if media:
        kinds = {a.kind for a in media}
        what = "Image" if kinds == {"image"} else "Video" if kinds == {"video"} else "Files"
        return f"{what}: " + ", ".join(a.filename for a in media)[:TITLE_CHARS]
    return ""


def refuse_nul(text: str, what: str, field: str) -> None:
    """PostgreSQL text cannot hold NUL: refuse it as bad input rather than fail storing it."""
    if "\x00" in text:
        raise InvalidRequest(f"{what} contains a NUL character", field=field)


def new_conversation(user: User, model: Any, system_prompt: Any) -> Conversation:
    """A conversation stored with its first message (never an empty one)."""
    if model is None:
        raise InvalidRequest("conversation_id is required (or a model, to start a conversation)")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise InvalidRequest("system_prompt must be a string")
    if system_prompt and len(system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
        raise InvalidRequest(
            f"the system prompt is {len(system_prompt)} characters; "
            f"the limit is {MAX_SYSTEM_PROMPT_CHARS}",
            field="system_prompt",
        )
    refuse_nul(system_prompt or "", "the system prompt", "system_prompt")
    spec = get_model(model)
    return Conversation.objects.create(
        user=user, model=spec.name, system_prompt=system_prompt or "", source="chat"
    )


def conversation_of(user: User, message_id: Any) -> uuid.UUID:
    """The id of the user's conversation that holds ``message_id``, or ``NotFound``."""
    pk = parse_uuid(message_id, "message")
    found = (
        Message.objects.filter(
            pk=pk, conversation__user_id=user.pk, conversation__deleted_at__isnull=True
        )
        .values_list("conversation_id", flat=True)
        .first()
    )
    if found is None:
        raise NotFound("message")
    return found


def locked_conversation(user: User, conversation_id: Any) -> Conversation:
    """The user's conversation, locked: two turns at once must not race on its leaf."""
    pk = parse_uuid(conversation_id, "conversation")
    conversation = (
        Conversation.objects.select_for_update()
        .filter(pk=pk, user_id=user.pk, deleted_at__isnull=True)
        .first()
    )
    if conversation is None:
        raise NotFound("conversation")
    return conversation


def messages_of(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("created_at").prefetch_related("attachments"))


def message_in(messages: list[Message], message_id: Any, role: str | None) -> Message:
    pk = message_id if isinstance(message_id, uuid.UUID) else parse_uuid(message_id, "message")
    for message in messages:
        if message.id == pk:
            if role is not None and message.role != role:
                raise InvalidRequest(f"only {role} messages can be edited")
            return message
    raise NotFound("message")


def choose_options(
    conversation: Conversation, model: Any, params: Any, thinking: Any, preset: Any
) -> tuple[ModelSpec, SamplingParams, bool]:
    """The request's model and options: what the request says, else what the conversation
    keeps. What the request says is kept for the conversation's next turns."""
    spec = get_model(model or conversation.model)
    if preset == "":  # explicitly the model's own defaults
        chosen_preset = None
    elif preset is not None:
        chosen_preset = preset
    else:
        chosen_preset = conversation.preset if conversation.preset in spec.presets else None
    sampling, thinking_on = resolve_generation_options(
        spec,
        params if params is not None else (conversation.params or None),
        thinking if thinking is not None else conversation.thinking,
        chosen_preset,
    )
    conversation.preset = chosen_preset or ""
    if thinking is not None:
        conversation.thinking = thinking
    if params is not None:
        conversation.params = params
    return spec, sampling, thinking_on


def attachments_of(message: Message) -> list[Attachment]:
    pending = getattr(message, "pending_attachments", None)
    return list(pending) if pending is not None else list(message.attachments.all())


def require_vision(spec: ModelSpec) -> None:
    if "image" not in spec.info.get("modalities", ()):
        raise InvalidRequest(f"{spec.label} cannot see images or videos; pick a vision model")


def resolve_generation_options(
    spec: ModelSpec, params: Any, thinking: Any, preset: Any
) -> tuple[SamplingParams, bool]:
    """Sampling and thinking for a request: explicit values over the preset over the model's.

    Every number is bounded here, at the edge (engines.base.SamplingParams), so no
    request can overflow an engine's integers and fail other users' generations.
    """
    if params is not None and not isinstance(params, dict):
        raise InvalidRequest("params must be an object", field="params")
    if thinking is not None and not isinstance(thinking, bool):
        raise InvalidRequest("thinking must be true or false", field="thinking")
    base = dict(spec.default_sampling)
    preset_thinking = None
    if preset is not None:
        if not isinstance(preset, str) or preset not in spec.presets:
            choices = ", ".join(spec.presets) or "none"
            raise InvalidRequest(
                f"unknown preset {preset!r} for {spec.name}; presets: {choices}", field="preset"
            )
        base = dict(spec.presets[preset]["sampling"])
        preset_thinking = spec.presets[preset].get("thinking")
    try:
        sampling = SamplingParams.from_dict({**base, **(params or {})})
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidRequest(str(exc)) from None
    if sampling.max_tokens > spec.max_output_tokens:
        sampling = replace(sampling, max_tokens=spec.max_output_tokens)
    if not spec.thinking:
        return sampling, False
    for choice in (thinking, preset_thinking):
        if choice is not None:
            return sampling, bool(choice)
    return sampling, spec.thinking == "on"


def owned_attachments(user: User, ids: Any, spec: ModelSpec) -> list[Attachment]:
    """The user's attachments named in a generate request, checked before anything is stored."""
    if ids is None or ids == []:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("attachments must be a list of attachment ids")
    limit = settings.MEDIA_LIMITS["MAX_FILES_PER_MESSAGE"]
    if len(ids) > limit:
        raise InvalidRequest(f"{len(ids)} files attached; at most {limit} per message")
    require_vision(spec)
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
