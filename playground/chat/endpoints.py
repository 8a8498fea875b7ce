"""JSON endpoints for managing conversations: list and search, change, delete and undo,
share links, exports. Thin: the work is in ``playground.chat.conversations``.

Answers are JSON; refusals are ``{"error": {"status", "message"[, "field"]}}`` with 400
(bad input), 401 (not logged in) or 404 (missing, deleted, or someone else's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from playground.chat import conversations, export
from playground.generations import service
from playground.generations.errors import InvalidRequest, NotFound, ServiceError
from playground.http import json_error
from playground.media.views import serve_attachment

View = Callable[..., HttpResponse]


def json_login_required(view: View) -> View:
    """401 JSON for a visitor who is not logged in (a page would redirect instead)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return json_error(401, "log in first")
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            return json_error(404, exc.message)
        except ServiceError as exc:
            return json_error(400, exc.message, exc.field)

    return wrapped


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise InvalidRequest("the body must be JSON") from None


def _described(conversation: Any) -> dict[str, Any]:
    return {
        **conversations.conversation_json(conversation),
        **conversations.settings_json(conversation),
    }


@require_GET
@json_login_required
def conversation_list(request: HttpRequest) -> JsonResponse:
    """The sidebar's list; with ``?q=`` the conversations whose title or text matches."""
    include_all = request.GET.get("include") == "all"
    query = request.GET.get("q", "").strip()
    if len(query) > 200:
        raise InvalidRequest("the search is longer than 200 characters", field="q")
    if query:
        return JsonResponse(
            {"conversations": conversations.search(request.user, query, include_all)}
        )
    listed = conversations.listed(request.user, include_all)[:200]
    return JsonResponse({"conversations": [conversations.conversation_json(c) for c in listed]})


@require_http_methods(["PATCH", "DELETE"])
@json_login_required
def conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """PATCH: rename, pin, settings, branch on screen. DELETE: hide it, restorable for a
    while (``undo_until``)."""
    if request.method == "DELETE":
        until = conversations.delete(request.user, conversation_id)
        return JsonResponse({"deleted": True, "undo_until": until.isoformat()})
    changed = conversations.update(request.user, conversation_id, _body(request))
    return JsonResponse({"conversation": _described(changed)})


@require_http_methods(["POST"])
@json_login_required
def conversation_restore(request: HttpRequest, conversation_id: str) -> JsonResponse:
    restored = conversations.restore(request.user, conversation_id)
    return JsonResponse({"conversation": _described(restored)})


@require_http_methods(["POST", "DELETE"])
@json_login_required
def conversation_share(request: HttpRequest, conversation_id: str) -> JsonResponse:
    """POST: the read-only link (made, or moved to the branch on screen). DELETE: revoke."""
    if request.method == "DELETE":
        conversations.unshare(request.user, conversation_id)
        return JsonResponse({"shared": False})
    token = conversations.share(request.user, conversation_id)
    return JsonResponse({"shared": True, "url": request.build_absolute_uri(f"/s/{token}/")})


@require_GET
@json_login_required
def conversation_export(request: HttpRequest, conversation_id: str, fmt: str) -> HttpResponse:
    if fmt not in ("md", "json"):
        return json_error(404, "exports are .md or .json")
    conversation = service.get_conversation(request.user, conversation_id)
    name = slugify(conversation.title)[:60] or "conversation"
    if fmt == "md":
        response = HttpResponse(
            export.as_markdown(conversation), content_type="text/markdown; charset=utf-8"
        )
    else:
        response = JsonResponse(export.as_json(conversation), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@require_GET
def shared_media(request: HttpRequest, token: str, attachment_id: str) -> HttpResponse:
    """A file of a shared branch, through its link: nothing outside that branch."""
    try:
        _, branch = conversations.shared(token)
    except NotFound:
        return json_error(404, "not found")
    for message in branch:
        for attachment in message.attachments.all():
            if str(attachment.id) == attachment_id:
                return serve_attachment(request, attachment)
    return json_error(404, "not found")
