"""Thumbs up/down, with an optional comment, on a finished assistant message."""

from __future__ import annotations

import uuid
from typing import Any

from playground.chat.models import Feedback, Message
from playground.generations.errors import InvalidRequest, NotFound
from playground.generations.service import User

MAX_COMMENT_CHARS = 2000
VALUES = {"up": Feedback.Value.UP, "down": Feedback.Value.DOWN}
NAMES = {value: name for name, value in VALUES.items()}


def feedback_of(message: Message) -> Feedback | None:
    """The message's feedback, if any (load messages with ``select_related("feedback")``)."""
    try:
        return message.feedback
    except Feedback.DoesNotExist:
        return None


def feedback_json(feedback: Feedback | None) -> dict[str, str] | None:
    if feedback is None:
        return None
    return {"value": NAMES[feedback.value], "comment": feedback.comment}


def set_feedback(
    user: User, conversation_id: Any, message_id: Any, value: Any, comment: Any = None
) -> Feedback | None:
    """Record, change or (``value`` None) remove the user's verdict on one finished reply.

    ``comment`` None keeps the saved comment; a string replaces it. Returns the
    feedback now stored. ``NotFound`` for a message that is not in the user's
    conversation; ``InvalidRequest`` for anything else refused.
    """
    if value is not None and (not isinstance(value, str) or value not in VALUES):
        raise InvalidRequest('value must be "up", "down" or null')
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidRequest("comment must be a string")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidRequest(
                f"comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}"
            )
    message = _owned_message(user, conversation_id, message_id)
    if message.role != Message.Role.ASSISTANT:
        raise InvalidRequest("only replies can be rated")
    if not message.is_terminal:
        raise InvalidRequest("this reply has not finished yet")

    if value is None:
        Feedback.objects.filter(message=message).delete()
        return None
    fields = {"user_id": user.pk, "model": message.model, "value": VALUES[value]}
    if comment is not None:
        fields["comment"] = comment
    # Two quick clicks may race to create the row: get_or_create underneath retries.
    feedback, _ = Feedback.objects.update_or_create(message=message, defaults=fields)
    return feedback


def _owned_message(user: User, conversation_id: Any, message_id: Any) -> Message:
    try:
        conversation_pk, message_pk = uuid.UUID(str(conversation_id)), uuid.UUID(str(message_id))
    except ValueError:
        raise NotFound("message") from None
    message = Message.objects.filter(
        pk=message_pk,
        conversation_id=conversation_pk,
        conversation__user_id=user.pk,
        conversation__deleted_at__isnull=True,
    ).first()
    if message is None:
        raise NotFound("message")  # someone else's, or gone: the two look the same
    return message
