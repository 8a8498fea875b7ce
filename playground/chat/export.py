"""A conversation as a file: Markdown (the branch on screen, for reading) and JSON (every
branch, with parent ids, for machines)."""

from __future__ import annotations

from typing import Any

from playground.chat import tree
from playground.chat.conversations import message_json, messages_of, settings_json
from playground.chat.models import Conversation, Message
from playground.generations.catalogue import get_catalogue


def as_json(conversation: Conversation) -> dict[str, Any]:
    messages = messages_of(conversation)
    leaf = tree.current_leaf(conversation, messages)
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        **settings_json(conversation),
        "current_leaf": str(leaf.id) if leaf else None,
        "branch": [str(m.id) for m in tree.path_to(messages, leaf)],
        "messages": [_exported(m) for m in messages],
    }


def _exported(message: Message) -> dict[str, Any]:
    data = message_json(message)
    data.pop("feedback")
    for attachment in data["attachments"]:  # links that only work in this session: left out
        attachment.pop("url")
        attachment.pop("thumbnail_url")
    return data


def as_markdown(conversation: Conversation) -> str:
    messages = messages_of(conversation)
    branch = tree.path_to(messages, tree.current_leaf(conversation, messages))
    labels = {name: spec.label for name, spec in get_catalogue().items()}
    lines = [f"# {conversation.title or 'Untitled'}", ""]
    lines += [
        f"*{labels.get(conversation.model, conversation.model)} · "
        f"{conversation.created_at:%Y-%m-%d %H:%M} UTC*",
        "",
    ]
    if conversation.system_prompt.strip():
        lines += ["## System prompt", "", conversation.system_prompt.strip(), ""]
    for message in branch:
        if message.role == Message.Role.USER:
            lines += ["## You", ""]
        else:
            lines += [f"## {labels.get(message.model, message.model or 'Assistant')}", ""]
            if message.reasoning.strip():
                lines += ["<details><summary>Thinking</summary>", ""]
                lines += [message.reasoning.strip(), "", "</details>", ""]
        for attachment in message.attachments.all():
            lines += [f"*[{attachment.kind}: {attachment.filename}]*", ""]
        if message.content.strip():
            lines += [message.content.strip(), ""]
        note = _note(message)
        if note:
            lines += [f"*({note})*", ""]
    return "\n".join(lines)


def _note(message: Message) -> str:
    """How a reply ended, when not simply finished (the page's words)."""
    if message.role != Message.Role.ASSISTANT:
        return ""
    if message.status in (Message.Status.QUEUED, Message.Status.RUNNING):
        return "unfinished"
    notes = {
        "cancelled": "Stopped",
        "length": "Stopped at the token limit",
        "loop": "Stopped: the model kept repeating itself",
        "error": "Failed",
    }
    note = notes.get(message.finish_reason, "")
    if note and message.error_message:
        note += ": " + message.error_message
    return note
