"""What the model sees: the system prompt and the branch of messages that leads to a reply."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engines.base import ChatMessage
from playground.chat.models import Conversation, Message


def branch_to(messages: Iterable[Message], reply: Message) -> list[Message]:
    """The messages from the conversation's root down to ``reply``'s parent, in order."""
    by_id = {m.id: m for m in messages}
    chain: list[Message] = []
    current = by_id.get(reply.parent_id) if reply.parent_id else None
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    chain.reverse()
    return chain


def prompt_messages(
    conversation: Conversation, messages: Iterable[Message], reply: Message
) -> list[ChatMessage]:
    """The chat the engine continues for ``reply``. Failed or empty replies are left out."""
    prompt: list[ChatMessage] = []
    if conversation.system_prompt.strip():
        prompt.append(ChatMessage("system", conversation.system_prompt))
    for message in branch_to(messages, reply):
        if message.role == Message.Role.ASSISTANT and (
            message.status == Message.Status.ERROR or not message.content
        ):
            continue
        prompt.append(ChatMessage(message.role, message_content(message)))
    return prompt


def message_content(message: Message) -> str | list[dict[str, Any]]:
    """Text, or media parts followed by the text. Media parts name the stored file
    (``sha256``); the worker turns them into local paths for the engine."""
    attachments = getattr(message, "pending_attachments", None)  # a message being created
    if attachments is None:
        attachments = list(message.attachments.all())
    if not attachments:
        return message.content
    parts: list[dict[str, Any]] = [
        {
            "type": a.kind,
            "attachment": str(a.id),
            "sha256": a.blob_id,
            "content_type": a.content_type,
        }
        for a in attachments
    ]
    return [*parts, {"type": "text", "text": message.content}]
