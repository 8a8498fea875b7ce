"""Chat pages. Thin: data comes from models, actions from ``playground.generations.service``."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from engines.catalogue import ModelSpec
from playground.chat import conversations, endpoints, tree
from playground.chat.feedback import MAX_COMMENT_CHARS, feedback_json, set_feedback
from playground.chat.models import Conversation
from playground.generations import service as services
from playground.generations import turns
from playground.generations.catalogue import get_catalogue, served_models
from playground.generations.errors import InvalidRequest, NotFound
from playground.http import json_error

# The sampling panel's fields (SamplingParams names).
PANEL_FIELDS = ("temperature", "top_p", "top_k", "presence_penalty", "max_tokens")


def _page(
    request: HttpRequest, conversation: Conversation | None, error: str = "", status: int = 200
) -> HttpResponse:
    include_all = request.GET.get("include") == "all"
    listed = conversations.listed(request.user, include_all)
    messages = conversations.messages_of(conversation) if conversation else []
    leaf = tree.current_leaf(conversation, messages) if conversation else None
    catalogue = get_catalogue()
    served = _served_or_none()
    # A new conversation (nothing stored until its first message) starts on the default
    # model, or the first served one; the page may switch to the user's last choice.
    model = conversation.model if conversation else _new_conversation_model(served)
    spec = catalogue.get(model)
    context = {
        "conversation": conversation,
        "page_data": {
            "conversation_id": str(conversation.id) if conversation else None,
            "conversation": {
                **conversations.conversation_json(conversation),
                **conversations.settings_json(conversation),
            }
            if conversation
            else None,
            "conversations": [conversations.conversation_json(c) for c in listed[:200]],
            "model": model,
            "thinking_mode": spec.thinking if spec else "",
            "presets": [{"name": p, "label": v["label"]} for p, v in spec.presets.items()]
            if spec
            else [],
            # Every branch: the page shows the path to current_leaf_id and switches
            # between siblings without asking the server.
            "messages": [conversations.message_json(m) for m in messages],
            "current_leaf_id": str(leaf.id) if leaf else None,
            "models": models_json(served),
            "undo_delete_s": settings.CHAT_UNDO_DELETE_S,
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


def _new_conversation_model(served: dict[str, dict[str, Any]]) -> str:
    default: str = settings.PLAYGROUND_DEFAULT_MODEL
    if default in served:
        return default
    return next((name for name in get_catalogue() if name in served), default)


def _served_or_none() -> dict[str, dict[str, Any]]:
    """Live models; with Redis down the page still renders (every model shown unavailable)."""
    try:
        return served_models()
    except Exception:
        return {}


def _sampling_of(spec: ModelSpec, preset: str | None) -> dict[str, Any]:
    """The numbers a generation would use with ``preset`` (None: the model's defaults)."""
    sampling, _ = turns.resolve_generation_options(spec, None, None, preset)
    return {name: getattr(sampling, name) for name in PANEL_FIELDS}


def models_json(served: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every catalogue model, with what a worker announces when one serves it, and the
    sampling values of its defaults and presets (what the sampling panel shows)."""
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
                "sampling": {
                    "": _sampling_of(spec, None),
                    **{name: _sampling_of(spec, name) for name in spec.presets},
                },
            }
        )
    return models


@login_required
def model_catalogue(request: HttpRequest) -> JsonResponse:
    """The catalogue as JSON: every model, its facts and presets, whether a live worker serves
    it, and (when one does) what that worker announces: backend, context, batch, GPUs."""
    return JsonResponse({"models": models_json(_served_or_none())})


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """The conversation's page (GET); PATCH changes it, DELETE deletes it (JSON)."""
    if request.method in ("PATCH", "DELETE"):
        return endpoints.conversation(request, conversation_id)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        conversation = services.get_conversation(request.user, conversation_id)
    except NotFound:
        raise Http404("conversation not found") from None
    return _page(request, conversation)


def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    """A read-only view of a shared branch, for anyone holding the link (no login)."""
    try:
        conversation, branch = conversations.shared(token)
    except NotFound:
        raise Http404("this link was revoked or never existed") from None
    catalogue = get_catalogue()
    spec = catalogue.get(conversation.model)
    prefix = f"/s/{token}/media/"
    messages = []
    for message in branch:
        shown = conversations.message_json(message, media_prefix=prefix)
        model = catalogue.get(message.model)
        shown["speaker"] = "User" if message.role == "user" else model.label if model else "Model"
        messages.append(shown)
    response = render(
        request,
        "chat/shared.html",
        {
            "conversation": conversation,
            "model_label": spec.label if spec else conversation.model,
            "messages": messages,
        },
    )
    response["X-Robots-Tag"] = "noindex"  # unlisted: search engines should not keep it
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
    return response


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
