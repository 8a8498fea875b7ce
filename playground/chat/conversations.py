"""Conversation management: the list and its search, settings, branches, delete with
undo, read-only share links. Views call these; generations go through the service."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.postgres.search import SearchHeadline, SearchQuery
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from playground.chat import tree
from playground.chat.feedback import feedback_json, feedback_of
from playground.chat.models import SEARCH_CONFIG, Conversation, Message, search_vector
from playground.generations import service, turns
from playground.generations.catalogue import get_catalogue, get_model, require_served
from playground.generations.errors import SAMPLING_FIELDS, InvalidRequest, NotFound, ServiceError
from playground.generations.service import User
from playground.media.services import attachment_json

TITLE_MAX = 200
SEARCH_RESULTS = 30
SHARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")  # secrets.token_urlsafe's alphabet
# Sentinels around matched words in search snippets; the page turns them into <mark>.
MARK_START, MARK_END = "\u0002", "\u0003"
EDITABLE = (
    "title",
    "pinned",
    "system_prompt",
    "model",
    "preset",
    "thinking",
    "params",
    "current_leaf",
)


def undo_window() -> timedelta:
    return timedelta(seconds=settings.CHAT_UNDO_DELETE_S)


# --- reading ---------------------------------------------------------------------------


def listed(user: User, include_all: bool = False) -> QuerySet[Conversation]:
    """The sidebar's conversations: pinned first, then the latest. Those the API and Gradio
    started are left out unless asked; arena battles always are (their model names are
    blind until the vote)."""
    conversations = Conversation.objects.filter(user_id=user.pk, deleted_at__isnull=True)
    conversations = conversations.exclude(source=Conversation.Source.ARENA)
    if not include_all:
        conversations = conversations.filter(source=Conversation.Source.CHAT)
    return conversations.order_by("-pinned", "-updated_at")


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    spec = get_catalogue().get(conversation.model)
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "model_label": spec.label if spec else conversation.model,
        "updated_at": conversation.updated_at.isoformat(),
        "pinned": conversation.pinned,
    }


def settings_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "preset": conversation.preset,
        "thinking": conversation.thinking,
        "params": conversation.params,
    }


def message_json(message: Message, media_prefix: str = "") -> dict[str, Any]:
    """A message as pages and exports show it. ``media_prefix`` re-roots attachment URLs
    (a shared page serves them under its own link)."""
    attachments = [attachment_json(a) for a in message.attachments.all()]
    if media_prefix:
        for a in attachments:
            a["url"] = f"{media_prefix}{a['id']}/"
            a["thumbnail_url"] = None
    return {
        "id": str(message.id),
        "parent_id": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "reasoning_ms": message.reasoning_ms,
        "thinking": message.thinking,
        "status": message.status,
        "model": message.model,
        "finish_reason": message.finish_reason,
        "error_message": message.error_message,
        "output_tokens": message.output_tokens,
        "total_ms": message.total_ms,
        "created_at": message.created_at.isoformat(),
        "attachments": attachments,
        "feedback": feedback_json(feedback_of(message)),
    }


def messages_of(conversation: Conversation) -> list[Message]:
    """Every message of the conversation, all branches, oldest first."""
    return list(
        conversation.messages.order_by("created_at")
        .select_related("feedback")
        .prefetch_related("attachments__blob")
    )


def search(user: User, text: str, include_all: bool = False) -> list[dict[str, Any]]:
    """The user's conversations whose title or any message (any branch) matches every word
    of ``text`` (as a prefix: "capi" finds "capital"), PostgreSQL full-text search over
    GIN-indexed vectors; each with a snippet of the newest matching message."""
    words = re.findall(r"\w+", text)[:12]
    if not words:
        return []
    query = SearchQuery(
        " & ".join(f"{w}:*" for w in words), search_type="raw", config=SEARCH_CONFIG
    )
    hits = Message.objects.annotate(vector=search_vector("content")).filter(
        conversation=OuterRef("pk"), vector=query
    )
    found = list(
        listed(user, include_all)
        .annotate(vector=search_vector("title"))
        .filter(Q(vector=query) | Exists(hits))[:SEARCH_RESULTS]
    )
    snippets = dict(
        Message.objects.annotate(vector=search_vector("content"))
        .filter(conversation__in=[c.pk for c in found], vector=query)
        .order_by("conversation_id", "-created_at")
        .distinct("conversation_id")
        .annotate(
            snippet=SearchHeadline(
                "content",
                query,
                config=SEARCH_CONFIG,
                start_sel=MARK_START,
                stop_sel=MARK_END,
                max_words=18,
                min_words=6,
            )
        )
        .values_list("conversation_id", "snippet")
    )
    return [{**conversation_json(c), "snippet": snippets.get(c.pk, "")} for c in found]


# --- changing --------------------------------------------------------------------------


def update(user: User, conversation_id: Any, changes: Any) -> Conversation:
    """Rename, pin, and the settings the next turns use: system prompt, model, preset,
    thinking, sampling (checked now, as a generation would check them), and the branch
    on screen (``current_leaf``). ``InvalidRequest`` names the field at fault."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidRequest("send a JSON object with the fields to change")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidRequest(
            f"cannot change {', '.join(unknown)}; changeable: {', '.join(EDITABLE)}",
            field=unknown[0],
        )
    with transaction.atomic():
        conversation = turns.locked_conversation(user, conversation_id)
        fields = set(changes)
        if "title" in changes:
            conversation.title = _title(changes["title"])
        if "pinned" in changes:
            if not isinstance(changes["pinned"], bool):
                raise InvalidRequest("pinned must be true or false", field="pinned")
            conversation.pinned = changes["pinned"]
        if "system_prompt" in changes:
            conversation.system_prompt = _system_prompt(changes["system_prompt"])
        if {"model", "preset", "thinking", "params"} & fields:
            _apply_generation_settings(conversation, changes)
            fields |= {"model", "preset", "thinking", "params"}
        if "current_leaf" in changes:
            conversation.current_leaf = _message_of(conversation, changes["current_leaf"])
        conversation.save(update_fields=sorted(fields))  # not updated_at: the list keeps its order
    return conversation


def _apply_generation_settings(conversation: Conversation, changes: dict[str, Any]) -> None:
    if "model" in changes:
        try:
            spec = get_model(changes["model"])
            if spec.name != conversation.model:
                require_served(spec)
        except ServiceError as exc:
            raise InvalidRequest(exc.message, field="model") from None
        conversation.model = spec.name
    spec = get_model(conversation.model)
    if "preset" in changes:
        preset = changes["preset"]
        if preset is None:
            preset = ""
        if not isinstance(preset, str) or (preset and preset not in spec.presets):
            choices = ", ".join(spec.presets) or "none"
            raise InvalidRequest(
                f"unknown preset {preset!r} for {spec.label}; presets: {choices}", field="preset"
            )
        conversation.preset = preset
    elif conversation.preset not in spec.presets:
        conversation.preset = ""  # the new model has no such preset: its own defaults
    if "thinking" in changes:
        if changes["thinking"] is not None and not isinstance(changes["thinking"], bool):
            raise InvalidRequest("thinking must be true, false or null", field="thinking")
        conversation.thinking = changes["thinking"]
    if "params" in changes:
        params = changes["params"]
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidRequest("params must be an object", field="params")
        unknown = sorted(set(params) - set(SAMPLING_FIELDS))
        if unknown:
            raise InvalidRequest(f"unknown sampling parameter {unknown[0]!r}", field=unknown[0])
        limit = spec.max_output_tokens
        max_tokens = params.get("max_tokens")
        if isinstance(max_tokens, int | float) and max_tokens > limit:
            raise InvalidRequest(
                f"max_tokens must be at most {limit:,} for {spec.label}", field="max_tokens"
            )
        conversation.params = params
    # Checked as the next generation will check them, so a bad value is refused now.
    turns.resolve_generation_options(
        spec, conversation.params or None, conversation.thinking, conversation.preset or None
    )


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("the title must be a non-empty string", field="title")
    turns.refuse_nul(value, "the title", "title")
    title = " ".join(value.split())
    if len(title) > TITLE_MAX:
        raise InvalidRequest(
            f"the title is {len(title)} characters; the limit is {TITLE_MAX}", field="title"
        )
    return title


def _system_prompt(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("the system prompt must be a string", field="system_prompt")
    turns.refuse_nul(value, "the system prompt", "system_prompt")
    limit = turns.MAX_SYSTEM_PROMPT_CHARS
    if len(value) > limit:
        raise InvalidRequest(
            f"the system prompt is {len(value)} characters; the limit is {limit}",
            field="system_prompt",
        )
    return value


def _message_of(conversation: Conversation, message_id: Any) -> Message:
    pk = turns.parse_uuid(message_id, "message")
    message = conversation.messages.filter(pk=pk).first()
    if message is None:
        raise NotFound("message")
    return message


# --- delete with undo ------------------------------------------------------------------


def delete(user: User, conversation_id: Any) -> datetime:
    """Hide the conversation at once (its unfinished replies are stopped); it can be
    restored until the returned time, after which ``purge_deleted`` removes it."""
    conversation = service.get_conversation(user, conversation_id)
    unfinished = conversation.messages.filter(
        role=Message.Role.ASSISTANT, status__in=(Message.Status.QUEUED, Message.Status.RUNNING)
    ).values_list("id", flat=True)
    for generation_id in unfinished:
        service.request_stop(user, generation_id)
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=now)
    return now + undo_window()


def restore(user: User, conversation_id: Any) -> Conversation:
    """Undo a delete within the window; ``NotFound`` after it (or for anything else)."""
    pk = turns.parse_uuid(conversation_id, "conversation")
    restored = Conversation.objects.filter(
        pk=pk, user_id=user.pk, deleted_at__gte=timezone.now() - undo_window()
    ).update(deleted_at=None)
    if not restored:
        raise NotFound("deleted conversation")
    return Conversation.objects.get(pk=pk)


@shared_task(name="chat.purge_deleted", ignore_result=True)
def purge_deleted() -> int:
    """Remove conversations deleted longer ago than the undo window (with their messages)."""
    cutoff = timezone.now() - undo_window()
    removed, _ = Conversation.objects.filter(deleted_at__lt=cutoff).delete()
    return removed


# --- read-only share links -------------------------------------------------------------


def share(user: User, conversation_id: Any) -> str:
    """The conversation's share token, made if needed; the link shows the branch on
    screen now (sharing again moves it to the branch on screen then)."""
    with transaction.atomic():
        conversation = turns.locked_conversation(user, conversation_id)
        conversation.share_leaf = tree.current_leaf(conversation, list(conversation.messages.all()))
        if not conversation.share_token:
            conversation.share_token = secrets.token_urlsafe(32)
        conversation.save(update_fields=["share_token", "share_leaf"])
    return conversation.share_token


def unshare(user: User, conversation_id: Any) -> None:
    """Revoke the link: it answers 404 from now on (sharing again makes a new one)."""
    conversation = service.get_conversation(user, conversation_id)
    Conversation.objects.filter(pk=conversation.pk).update(share_token=None, share_leaf=None)


def shared(token: Any) -> tuple[Conversation, list[Message]]:
    """The conversation behind a live share link and the branch it shows; ``NotFound``
    for a revoked or unknown link, or a deleted conversation."""
    if not isinstance(token, str) or not SHARE_TOKEN.fullmatch(token):
        raise NotFound("shared conversation")
    conversation = Conversation.objects.filter(share_token=token, deleted_at__isnull=True).first()
    if conversation is None:
        raise NotFound("shared conversation")
    messages = messages_of(conversation)
    leaf = next((m for m in messages if m.pk == conversation.share_leaf_id), None)
    return conversation, [
        m for m in tree.path_to(messages, leaf) if m.is_terminal or m.role == "user"
    ]
