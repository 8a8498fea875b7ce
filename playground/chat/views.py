"""Chat pages. Thin: data comes from models, actions from ``playground.generations.service``."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from playground.chat.feedback import MAX_COMMENT_CHARS, feedback_json, feedback_of, set_feedback
from playground.chat.models import Conversation, Message
from playground.generations import service as services
from playground.generations.catalogue import get_catalogue, served_models
from playground.generations.errors import InvalidRequest, NotFound, ServiceError
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
    conversations = Conversation.objects.filter(user=request.user)
    # Conversations the API and Gradio started are listed only when asked (?include=all).
    if request.GET.get("include") != "all":
        conversations = conversations.filter(source=Conversation.Source.CHAT)
    conversations = conversations.only("id", "title", "updated_at")
    messages = (
        list(conversation.messages.select_related("feedback").prefetch_related("attachments__blob"))
        if conversation
        else []
    )
    catalogue = get_catalogue()
    served = _served_or_none()
    spec = catalogue.get(conversation.model) if conversation else None
    context = {
        "conversations": conversations[:200],
        "conversation": conversation,
        "models": [
            {"name": s.name, "label": s.label, "served": s.name in served}
            for s in catalogue.values()
        ],
        "model_label": spec.label if spec else "",
        "page_data": {
            "conversation_id": str(conversation.id) if conversation else None,
            "model": conversation.model if conversation else None,
            "thinking_mode": spec.thinking if spec else "",
            "presets": [{"name": p, "label": v["label"]} for p, v in spec.presets.items()]
            if spec
            else [],
            "messages": [_message_json(m) for m in messages],
            "max_files": settings.MEDIA_LIMITS["MAX_FILES_PER_MESSAGE"],
            "max_comment_chars": MAX_COMMENT_CHARS,
            "vision": bool(spec and "image" in spec.info.get("modalities", ())),
            # For the composer's length counter and the speaker labels.
            "max_prompt_chars": settings.INFERENCE["MAX_PROMPT_CHARS"],
            "context_length": spec.context_length if spec else None,
            "model_labels": {s.name: s.label for s in catalogue.values()},
        },
    }
    return render(request, "chat/index.html", {**context, "error": error}, status=status)


def _served_or_none() -> dict[str, dict[str, Any]]:
    """Live models; with Redis down the page still renders (every model shown unavailable)."""
    try:
        return served_models()
    except Exception:
        return {}


@login_required
def model_catalogue(request: HttpRequest) -> JsonResponse:
    """The catalogue as JSON: every model, its facts and presets, whether a live worker serves
    it, and (when one does) what that worker announces: backend, context, batch, GPUs."""
    served = _served_or_none()
    models = []
    for spec in get_catalogue().values():
        live = served.get(spec.name, {})  # empty when no worker serves it
        models.append(
            {
                "name": spec.name,
                "display_name": spec.label,
                "context_length": live.get("context_length", spec.context_length),
                "max_output_tokens": spec.max_output_tokens,
                "thinking": spec.thinking or None,
                "presets": spec.presets,
                "default_sampling": spec.default_sampling,
                **spec.info,
                "served": bool(live),
                "workers": live.get("workers", 0),
                "modalities": live.get("modalities", spec.info.get("modalities", ["text"])),
                **{key: live.get(key) for key in ("backend", "max_batch", "gpus", "version")},
            }
        )
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
