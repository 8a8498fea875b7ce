"""The arena's actions: start a battle, read it back, vote. Views and the socket are thin.

A battle is two ordinary generations started through the one generation service
(``service.start_generation``), each in its own conversation of source "arena", so
quotas, usage (kind "arena"), streaming, resume and the recorder are the same as
everywhere. Both are started in one transaction: if the second is refused (a quota, a
model gone), nothing of the battle is stored and the first one's quota slot is given back.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from engines.catalogue import ModelSpec
from playground.arena.models import Battle
from playground.chat.models import Conversation, Message
from playground.generations import quotas, service
from playground.generations.catalogue import get_catalogue, get_model, served_models
from playground.generations.errors import InvalidRequest, NotFound, ServiceError
from playground.generations.service import User

_random = random.SystemRandom()  # pairs and sides that no one can predict


class VoteRefused(ServiceError):
    """The battle cannot take this vote (HTTP 409)."""


def can_take(spec: ModelSpec, media: bool) -> bool:
    """Whether a model can answer a prompt that has (``media``) images or videos or not."""
    return not media or "image" in spec.info.get("modalities", ())


def arena_candidates(served: dict[str, Any], media: bool) -> list[str]:
    """Served models the arena may pair for this prompt: in the catalogue, in
    ``PLAYGROUND_ARENA["MODELS"]`` when that is set, and able to take the input."""
    catalogue = get_catalogue()
    allowed = set(settings.PLAYGROUND_ARENA["MODELS"])
    return sorted(
        name
        for name in served
        if name in catalogue
        and (not allowed or name in allowed)
        and can_take(catalogue[name], media)
    )


def start_battle(
    user: User,
    prompt: Any,
    model_a: Any = None,
    model_b: Any = None,
    attachments: Any = None,
) -> Battle:
    """Start both answers to ``prompt``: a random pair of served models (blind), or the two
    the user names (not blind, and not rated). Raises ``ServiceError`` subclasses."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt must be a non-empty string")
    media = bool(attachments)
    if model_a is None and model_b is None:
        blind = True
        candidates = arena_candidates(served_models(), media)
        if len(candidates) < 2:
            what = "models that can see images or videos" if media else "models"
            raise ServiceError(
                "arena_unavailable",
                f"The arena needs two served {what}; {len(candidates)} "
                f"{'is' if len(candidates) == 1 else 'are'} online right now. Try again later.",
            )
        model_a, model_b = _random.sample(candidates, 2)
    else:
        blind = False
        if not isinstance(model_a, str) or not isinstance(model_b, str):
            raise InvalidRequest("name both models, or neither for a random pair")
        if model_a == model_b:
            raise InvalidRequest("choose two different models")
        for name in (model_a, model_b):
            get_model(name)  # an unknown model is refused before anything is stored
    tickets: list[service.GenerationTicket] = []
    try:
        with transaction.atomic():
            for model in (model_a, model_b):
                conversation = service.create_conversation(
                    user, model, source=Conversation.Source.ARENA
                )
                tickets.append(
                    service.start_generation(
                        user,
                        conversation.id,
                        prompt,
                        # One budget for both sides, so the longer answer is not the one
                        # that was simply allowed to run on.
                        params={"max_tokens": settings.PLAYGROUND_ARENA["MAX_TOKENS"]},
                        attachments=attachments,
                    )
                )
            # Enqueued when this commits (the service's on_commit), both or neither.
            return Battle.objects.create(
                user=user,
                prompt=prompt,
                blind=blind,
                model_a=model_a,
                model_b=model_b,
                reply_a_id=tickets[0].generation_id,
                reply_b_id=tickets[1].generation_id,
            )
    except Exception:
        for ticket in tickets:  # rolled back: the quota slots taken go back
            quotas.release(user.pk, ticket.generation_id)
        raise


def get_battle(user: User, battle_id: Any) -> Battle:
    """The user's battle (with both replies), or ``NotFound`` (also for someone else's)."""
    try:
        pk = uuid.UUID(str(battle_id))
    except ValueError:
        raise NotFound("battle") from None
    try:
        return Battle.objects.select_related("reply_a", "reply_b").get(pk=pk, user_id=user.pk)
    except Battle.DoesNotExist:
        raise NotFound("battle") from None


def is_battle_reply(user: User, generation_id: Any) -> bool:
    """Whether ``generation_id`` is one side of one of the user's battles."""
    try:
        pk = uuid.UUID(str(generation_id))
    except ValueError:
        return False
    sides = Q(reply_a_id=pk) | Q(reply_b_id=pk)
    return Battle.objects.filter(sides, user_id=user.pk).exists()


FAILED = (Message.Status.ERROR, Message.Status.CANCELLED)


def _reply(battle: Battle, side: str) -> Message | None:
    """A side's reply, or None once it is gone: the recorder deletes a turn too long for
    the model's context, possibly between loading the battle and reading its replies."""
    try:
        return battle.reply_a if side == "a" else battle.reply_b
    except Message.DoesNotExist:
        return None


def battle_state(battle: Battle) -> tuple[str, str]:
    """``voted``, ``invalid`` (a side failed: no vote possible), ``running`` or ``ready``,
    and for ``invalid`` why, in words."""
    if battle.vote:
        return "voted", ""
    running = False
    for side, reply in (("A", _reply(battle, "a")), ("B", _reply(battle, "b"))):
        if reply is None:
            return "invalid", f"Model {side}'s answer was not kept (the prompt did not fit it)."
        if reply.status == Message.Status.CANCELLED:
            return "invalid", f"Model {side}'s answer was stopped."
        if reply.status == Message.Status.ERROR:
            why = reply.error_message or "it failed"
            return "invalid", f"Model {side} failed: {why}"
        running = running or not reply.is_terminal
    return ("running", "") if running else ("ready", "")


def battle_json(battle: Battle) -> dict[str, Any]:
    """The battle as the page sees it. Model names only once they may be shown: after the
    vote, for a battle that cannot be voted on, or when the user chose the models."""
    state, problem = battle_state(battle)
    reveal = not battle.blind or state in ("voted", "invalid")
    catalogue = get_catalogue()
    sides = []
    for side, model, reply in (
        ("a", battle.model_a, _reply(battle, "a")),
        ("b", battle.model_b, _reply(battle, "b")),
    ):
        spec = catalogue.get(model)
        sides.append(
            {
                "side": side,
                "generation_id": str(reply.id) if reply else None,
                "status": reply.status if reply else "gone",
                "content": reply.content if reply else "",
                "reasoning": reply.reasoning if reply else "",
                "finish_reason": reply.finish_reason if reply else "",
                "error_message": reply.error_message if reply else "",
                "model": model if reveal else None,
                "label": (spec.label if spec else model) if reveal else None,
            }
        )
    return {
        "id": str(battle.id),
        "prompt": battle.prompt,
        "blind": battle.blind,
        "state": state,
        "problem": problem,
        "vote": battle.vote or None,
        "sides": sides,
        "created_at": battle.created_at.isoformat(),
    }


def cast_vote(user: User, battle_id: Any, choice: Any) -> Battle:
    """Record the user's one vote on a battle whose two answers both finished."""
    if not isinstance(choice, str) or choice not in Battle.Vote.values:
        raise InvalidRequest("vote must be one of " + ", ".join(Battle.Vote.values))
    battle = get_battle(user, battle_id)
    state, problem = battle_state(battle)
    if state == "voted":
        raise VoteRefused("already_voted", "You have already voted on this battle.")
    if state == "running":
        raise VoteRefused("not_finished", "Wait until both answers have finished.")
    if state == "invalid":
        raise VoteRefused("battle_invalid", f"{problem} This battle cannot be voted on.")
    # Conditional: of two votes racing, one is stored and the other refused.
    stored = Battle.objects.filter(pk=battle.pk, vote="").update(
        vote=choice, voted_at=timezone.now()
    )
    if not stored:
        raise VoteRefused("already_voted", "You have already voted on this battle.")
    return get_battle(user, battle.pk)
