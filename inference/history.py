"""What the model sees: the system prompt and the branch of messages that leads to a reply."""

from __future__ import annotations

from engines.base import ChatMessage
from playground.chat.models import Message


def branch_before(message: Message) -> list[Message]:
    """Messages from the root of the conversation down to ``message``'s parent, in order."""
    by_id = {m.id: m for m in message.conversation.messages.all()}
    chain: list[Message] = []
    current = by_id.get(message.parent_id) if message.parent_id else None
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    chain.reverse()
    return chain


def prompt_messages(assistant: Message) -> list[ChatMessage]:
    """The chat the engine continues. Failed or empty replies are left out."""
    conversation = assistant.conversation
    messages: list[ChatMessage] = []
    if conversation.system_prompt.strip():
        messages.append(ChatMessage("system", conversation.system_prompt))
    for message in branch_before(assistant):
        if message.role == Message.Role.ASSISTANT and (
            message.status == Message.Status.ERROR or not message.content
        ):
            continue
        messages.append(ChatMessage(message.role, message.content))
    return messages
