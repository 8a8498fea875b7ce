"""The message tree of a conversation: edits and regenerations make siblings, and the
screen shows one path, from a root down to the conversation's current leaf."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from playground.chat.models import Conversation, Message


def path_to(messages: Iterable[Message], leaf: Message | None) -> list[Message]:
    """The messages from the root down to ``leaf`` (inclusive), in order."""
    by_id = {m.id: m for m in messages}
    chain: list[Message] = []
    current = by_id.get(leaf.id, leaf) if leaf is not None else None
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    chain.reverse()
    return chain


def descend(messages: Iterable[Message], start: Message | None) -> Message | None:
    """The leaf reached from ``start`` by always taking the newest child (the newest root
    when ``start`` is None): where a branch the user switches to continues."""
    children: dict[uuid.UUID | None, list[Message]] = {}
    for message in sorted(messages, key=lambda m: m.created_at):
        children.setdefault(message.parent_id, []).append(message)
    current = start
    while True:
        below = children.get(current.id if current is not None else None)
        if not below:
            return current
        current = below[-1]


def current_leaf(conversation: Conversation, messages: list[Message]) -> Message | None:
    """The leaf on screen: where the stored one's branch ends (it is that message unless
    something was added below it since), else (conversations from before branches were
    chosen) the newest message, which is where a linear conversation ends."""
    if conversation.current_leaf_id is not None:
        for message in messages:
            if message.id == conversation.current_leaf_id:
                return descend(messages, message)
    return max(messages, key=lambda m: m.created_at) if messages else None
