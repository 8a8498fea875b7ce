"""The arena's socket (``/ws/arena/``): the chat socket's protocol, for battles' answers.

A page starts a battle over HTTP (``POST /arena/battles/``), then follows both answers
here with ``resume`` frames (``after_seq`` 0), exactly as the chat page resumes a reply.
Two differences from ``/ws/chat/``: only the user's battles' answers can be followed (and
none started), and events never carry the ``worker`` field, whose id starts with the
model's name: the names stay hidden until the vote.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from playground.arena import battles
from playground.generations.consumers import ChatConsumer
from playground.generations.errors import InvalidRequest, NotFound

HIDDEN_FIELDS = frozenset({"worker"})


class ArenaConsumer(ChatConsumer):
    async def on_generate(self, content: dict[str, Any]) -> None:
        raise InvalidRequest(
            "start a battle with POST /arena/battles/; this socket follows its answers"
        )

    async def on_resume(self, content: dict[str, Any]) -> None:
        mine = await database_sync_to_async(battles.is_battle_reply, thread_sensitive=False)(
            self.user, content.get("generation_id")
        )
        if not mine:
            raise NotFound("generation")
        await super().on_resume(content)

    def present(self, event: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in event.items() if key not in HIDDEN_FIELDS}
