"""Arena pages and their JSON endpoints. Thin: the actions are in ``battles``.

JSON answers: ``201``/``200`` with the battle, or ``{"error": {"status", "code",
"message"}}`` with 400 (bad input), 401 (not logged in), 404 (no such battle of yours),
409 (a vote the battle cannot take), 429 (a quota; with ``Retry-After``) or 503 (the
models or the queue are unavailable).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from playground.arena import battles, leaderboard
from playground.arena.models import Battle
from playground.generations.catalogue import get_catalogue, served_models
from playground.generations.errors import InvalidRequest, NotFound, ServiceError
from playground.generations.quotas import RateLimited


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"error": {"status": status, "code": code, "message": message}}, status=status
    )


def _answer(exc: ServiceError) -> JsonResponse:
    if isinstance(exc, RateLimited):
        response = _error(429, exc.code, exc.message)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, InvalidRequest):
        return _error(400, exc.code, exc.message)
    if isinstance(exc, NotFound):
        return _error(404, exc.code, exc.message)
    if isinstance(exc, battles.VoteRefused):
        return _error(409, exc.code, exc.message)
    return _error(503, exc.code, exc.message)


def _json_api(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Logged-in users only (401 JSON, not a login redirect); service errors as JSON."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if not request.user.is_authenticated:
            return _error(401, "unauthenticated", "log in to use the arena")
        try:
            return view(request, *args, **kwargs)
        except ServiceError as exc:
            return _answer(exc)

    return wrapped


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except ValueError:
        raise InvalidRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _served_or_none() -> dict[str, Any]:
    try:
        return served_models()
    except Exception:  # Redis down: the page still renders, and says no models are online
        return {}


def _page(request: HttpRequest, battle: Battle | None) -> HttpResponse:
    served = _served_or_none()
    page_data = {
        "battle": battles.battle_json(battle) if battle else None,
        # For "choose two models": every served model (the random pair uses the arena's list).
        "models": [
            {"name": spec.name, "label": spec.label}
            for spec in get_catalogue().values()
            if spec.name in served
        ],
        "random_ready": len(battles.arena_candidates(served, media=False)) >= 2,
    }
    return render(request, "arena/index.html", {"page_data": page_data, "battle": battle})


@login_required
@ensure_csrf_cookie
def arena(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


@login_required
@ensure_csrf_cookie
def battle_page(request: HttpRequest, battle_id: str) -> HttpResponse:
    try:
        battle = battles.get_battle(request.user, battle_id)
    except NotFound:
        raise Http404("battle not found") from None
    return _page(request, battle)


@require_POST
@_json_api
def start(request: HttpRequest) -> JsonResponse:
    """``{"prompt", "model_a"?, "model_b"?, "attachments"?}`` → 201 with the battle."""
    body = _body(request)
    battle = battles.start_battle(
        request.user,
        body.get("prompt"),
        model_a=body.get("model_a"),
        model_b=body.get("model_b"),
        attachments=body.get("attachments"),
    )
    return JsonResponse(battles.battle_json(battle), status=201)


@require_GET
@_json_api
def detail(request: HttpRequest, battle_id: str) -> JsonResponse:
    return JsonResponse(battles.battle_json(battles.get_battle(request.user, battle_id)))


@require_POST
@_json_api
def vote(request: HttpRequest, battle_id: str) -> JsonResponse:
    """``{"vote": "a" | "b" | "tie" | "both_bad"}`` → the battle, with the names revealed."""
    battle = battles.cast_vote(request.user, battle_id, _body(request).get("vote"))
    return JsonResponse(battles.battle_json(battle))


@login_required
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    rows = leaderboard.standings()
    return render(
        request,
        "arena/leaderboard.html",
        {
            "rows": rows,
            "votes": sum(row["votes"] for row in rows) // 2,
            "rounds": leaderboard.BOOTSTRAP_ROUNDS,
        },
    )
