"""The chat WebSocket: a thin adapter over the generation service.

Protocol: docs/protocol.md. Frames in: ``generate``, ``edit``, ``regenerate``,
``stop``, ``resume``.
Events out: whatever ``service.generation_events`` yields, plus ``accepted``
and ``error`` for frames. A refused frame is answered with an ``error`` that
echoes its ``client_ref`` and never names a generation, so it cannot be taken
for a failed one. Closing the socket stops the relays, never the generations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from playground.generations import service
from playground.generations.errors import InvalidRequest, ServiceError
from playground.generations.quotas import RateLimited

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_UNAUTHENTICATED = 4401
MAX_FRAME_DEPTH = 32


def _db(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """ORM work off the event loop, on a thread pool rather than Channels' single
    shared thread, so one socket's query never waits behind every other socket's."""
    return database_sync_to_async(function, thread_sensitive=False)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    # No channel layer (settings define none): events come from the generation service,
    # and a layer's receive loop would drop every socket whenever Redis blinks.

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.relays: dict[str, asyncio.Task[None]] = {}
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            # Accept, then close with a code: a handshake refusal (HTTP 403) would not
            # tell the page that the session has expired and it should log in again.
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "relays", {}).values():
            task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.refuse({}, "bad_frame", "frames must be JSON text")
            return
        if len(text_data.encode()) > settings.INFERENCE["MAX_FRAME_BYTES"]:
            await self.refuse({}, "too_large", "frame is larger than the server accepts")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.refuse({}, "bad_frame", "frame is not valid JSON")
            return
        if not isinstance(content, dict):
            await self.refuse({}, "bad_frame", "frame must be a JSON object")
            return
        if _depth_exceeds(content, MAX_FRAME_DEPTH):
            await self.refuse(
                content, "bad_frame", f"frame is nested deeper than {MAX_FRAME_DEPTH}"
            )
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        handlers = {
            "generate": self.on_generate,
            "edit": self.on_edit,
            "regenerate": self.on_regenerate,
            "stop": self.on_stop,
            "resume": self.on_resume,
        }
        kind = content.get("type")
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.refuse(
                content,
                "unknown_type",
                f"unknown frame type {kind!r}; expected one of " + ", ".join(handlers),
            )
            return
        try:
            await handler(content)
        except RateLimited as exc:
            await self.refuse(
                content, exc.code, exc.message, retry_after=exc.retry_after, limit=exc.limit
            )
        except ServiceError as exc:
            extra = {"field": exc.field} if exc.field else {}
            await self.refuse(content, exc.code, exc.message, **extra)
        except (redis.RedisError, OSError):
            log.warning("frame %r failed: Redis unreachable", kind, exc_info=True)
            await self.refuse(
                content, "service_unavailable", "the server is briefly unavailable; try again"
            )
        except Exception:
            log.exception("frame %r failed", kind)
            await self.refuse(content, "internal_error", "the server could not handle this frame")

    async def on_generate(self, content: dict[str, Any]) -> None:
        self.check_stream_limit()
        await self._start_turn(content, system_prompt=content.get("system_prompt"))

    async def on_edit(self, content: dict[str, Any]) -> None:
        self.check_stream_limit()
        if content.get("message_id") is None:
            raise InvalidRequest("message_id (the user message to edit) is required")
        await self._start_turn(content, edit_of=content.get("message_id"))

    async def _start_turn(self, content: dict[str, Any], **turn: Any) -> None:
        """A user turn (new, or an edit of an earlier one) and its reply, started."""
        ticket = await _db(service.start_generation)(
            self.user,
            content.get("conversation_id"),
            content.get("content"),
            attachments=content.get("attachments"),
            **turn,
            **_options(content),
        )
        await self.accepted(content, ticket)

    async def on_regenerate(self, content: dict[str, Any]) -> None:
        self.check_stream_limit()
        ticket = await _db(service.regenerate)(
            self.user, content.get("message_id"), **_options(content)
        )
        await self.accepted(content, ticket)

    def check_stream_limit(self) -> None:
        limit = settings.INFERENCE["MAX_STREAMS_PER_SOCKET"]
        live = sum(1 for task in self.relays.values() if not task.done())
        if live >= limit:
            raise ServiceError(
                "too_many_streams",
                f"this connection is already following {live} unfinished replies "
                f"(at most {limit}); wait for one to finish",
            )

    async def accepted(self, content: dict[str, Any], ticket: service.GenerationTicket) -> None:
        await self.send_json(
            {
                "type": "accepted",
                "generation_id": ticket.generation_id,
                "conversation_id": ticket.conversation_id,
                "user_message_id": ticket.user_message_id,
                "parent_id": ticket.parent_id,
                "queue_position": ticket.queue_position,
                "created": ticket.created,
                "title": ticket.title,
                "client_ref": content.get("client_ref"),
            }
        )
        self.follow(ticket.generation_id, 0, ticket.model)

    async def on_stop(self, content: dict[str, Any]) -> None:
        await _db(service.request_stop)(self.user, content.get("generation_id"))

    async def on_resume(self, content: dict[str, Any]) -> None:
        after = content.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidRequest("after_seq must be a non-negative integer")
        message = await _db(service.get_generation)(self.user, content.get("generation_id"))
        self.follow(str(message.id), after, message.model)

    def follow(self, generation_id: str, after_seq: int, model: str) -> None:
        previous = self.relays.pop(generation_id, None)
        if previous is not None:
            previous.cancel()
        self.relays = {gid: task for gid, task in self.relays.items() if not task.done()}
        self.relays[generation_id] = asyncio.create_task(
            self.relay(generation_id, after_seq, model)
        )

    async def relay(self, generation_id: str, after_seq: int, model: str) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                async for event in service.generation_events(generation_id, after_seq, model):
                    await self.send_json(self.present(event))
            except Exception:
                log.exception("relay of %s failed", generation_id)
                with contextlib.suppress(Exception):  # the socket may be gone already
                    await self.send_json(
                        {
                            "type": "error",
                            "generation_id": generation_id,
                            "code": "internal_error",
                            "message": "the live stream failed; reload the conversation",
                        }
                    )

    def present(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event as this socket sends it (the arena's socket leaves fields out)."""
        return event

    async def refuse(self, frame: dict[str, Any], code: str, message: str, **extra: Any) -> None:
        """Answer a frame the server did not accept (the socket stays open)."""
        reply: dict[str, Any] = {"type": "error", "code": code, "message": message, **extra}
        if isinstance(frame.get("type"), str):
            reply["frame"] = frame["type"]
        if "client_ref" in frame:
            reply["client_ref"] = frame["client_ref"]
        await self.send_json(reply)


def _options(content: dict[str, Any]) -> dict[str, Any]:
    """The generation options a frame may carry (absent: the conversation's own)."""
    return {
        "model": content.get("model"),
        "params": content.get("params"),
        "thinking": content.get("thinking"),
        "preset": content.get("preset"),
    }


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects deeper than ``limit`` (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False
