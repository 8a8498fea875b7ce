"""Chat pages. Thin: data comes from models, actions from ``inference.services``."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from engines.qwen35.family import PRESETS
from inference import services
from inference.catalogue import get_catalogue
from inference.errors import InvalidRequest, NotFound, ServiceError
from inference.heartbeats import list_workers
from inference.redis_clients import get_redis
from playground.chat.feedback import MAX_COMMENT_CHARS, feedback_json, feedback_of, set_feedback
from playground.chat.models import Conversation, Message
from playground.http import json_error
from playground.media.services import attachment_json


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
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
        "attachments": [attachment_json(a) for a in message.attachments.all()],
        "feedback": feedback_json(feedback_of(message)),
    }


def _page(
    request: HttpRequest, conversation: Conversation | None, error: str = "", status: int = 200
) -> HttpResponse:
    conversations = Conversation.objects.filter(user=request.user).only("id", "title", "updated_at")
    messages = (
        list(conversation.messages.select_related("feedback").prefetch_related("attachments__blob"))
        if conversation
        else []
    )
    catalogue = get_catalogue()
    served = served_models()
    spec = catalogue.get(conversation.model) if conversation else None
    context = {
        "conversations": conversations[:200],
        "conversation": conversation,
        "models": [
            {"name": s.name, "label": s.label, "deployed": s.deployed, "served": s.name in served}
            for s in catalogue.values()
        ],
        "model_label": spec.label if spec else "",
        "page_data": {
            "conversation_id": str(conversation.id) if conversation else None,
            "model": conversation.model if conversation else None,
            "thinking_mode": spec.thinking if spec else "",
            "presets": [{"name": p, "label": PRESETS[p]["label"]} for p in spec.presets]
            if spec
            else [],
            "messages": [_message_json(m) for m in messages],
            "max_files": settings.MEDIA_LIMITS["MAX_FILES_PER_MESSAGE"],
            "max_comment_chars": MAX_COMMENT_CHARS,
            "vision": bool(spec and "image" in spec.info.get("modalities", ())),
        },
    }
    return render(request, "chat/index.html", {**context, "error": error}, status=status)


def served_models() -> set[str]:
    """Models with at least one worker heartbeat right now."""
    return {worker["model"] for worker in list_workers(get_redis())}


@login_required
def model_catalogue(request: HttpRequest) -> JsonResponse:
    """The catalogue as JSON: every model, its facts, presets, and whether a worker serves it."""
    served = served_models()
    models = [
        {
            "name": spec.name,
            "display_name": spec.label,
            "context_length": spec.context_length,
            "max_output_tokens": spec.max_output_tokens,
            "thinking": spec.thinking or None,
            "presets": {name: PRESETS[name] for name in spec.presets},
            "default_sampling": spec.default_sampling,
            "deployed": spec.deployed,
            "served": spec.name in served,
            **spec.info,
        }
        for spec in get_catalogue().values()
    ]
    return JsonResponse({"models": models})


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


@login_required
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation = services.get_conversation(request.user, conversation_id)
    except NotFound:
        raise Http404("conversation not found") from None
    return _page(request, conversation)


@login_required
@require_POST
def conversation_create(request: HttpRequest) -> HttpResponse:
    try:
        conversation = services.create_conversation(
            request.user,
            model=request.POST.get("model", ""),
            system_prompt=request.POST.get("system_prompt", ""),
        )
    except ServiceError as exc:
        return _page(request, None, error=exc.message, status=400)
    return redirect("chat:conversation", conversation_id=conversation.id)


@login_required
@require_POST
def message_feedback(request: HttpRequest, conversation_id: str, message_id: str) -> JsonResponse:
    """Thumbs up/down and a comment on one finished reply: ``{"value", "comment"}`` in and out."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return json_error(400, "the body must be JSON")
    if not isinstance(body, dict):
        return json_error(400, "the body must be a JSON object")
    try:
        feedback = set_feedback(
            request.user, conversation_id, message_id, body.get("value"), body.get("comment")
        )
    except NotFound as exc:
        return json_error(404, exc.message)
    except InvalidRequest as exc:
        return json_error(400, exc.message)
    cleared: dict[str, str | None] = {"value": None, "comment": ""}
    return JsonResponse(feedback_json(feedback) or cleared)
