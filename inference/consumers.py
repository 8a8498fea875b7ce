"""The chat WebSocket: ``generate``, ``stop`` and ``resume`` in; event-log frames out.

Protocol: docs/protocol.md. The consumer is thin: it validates frames, calls
``inference.services`` through ``database_sync_to_async`` and relays each
generation's event log (``inference.events``) to the socket. Closing the
socket stops the relays, never the generations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from inference import events, services
from inference.errors import InvalidRequest, ServiceError
from inference.redis_clients import get_async_redis
from playground.chat.models import Message

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_UNAUTHENTICATED = 4401
RELAY_BLOCK_MS = 5000
MAX_RELAYS_PER_SOCKET = 16


def _db(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """ORM work off the event loop, on a thread pool rather than Channels' single
    shared thread, so one socket's query never waits behind every other socket's."""
    return database_sync_to_async(function, thread_sensitive=False)


class ChatConsumer(AsyncJsonWebsocketConsumer):
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
            await self.send_error("bad_frame", "frames must be JSON text")
            return
        if len(text_data.encode()) > settings.INFERENCE["MAX_FRAME_BYTES"]:
            await self.send_error("too_large", "frame is larger than the server accepts")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_frame", "frame is not valid JSON")
            return
        if not isinstance(content, dict):
            await self.send_error("bad_frame", "frame must be a JSON object")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        handlers = {"generate": self.on_generate, "stop": self.on_stop, "resume": self.on_resume}
        handler = handlers.get(content.get("type"))  # type: ignore[arg-type]
        if handler is None:
            await self.send_error(
                "unknown_type",
                f"unknown frame type {content.get('type')!r}; expected one of "
                + ", ".join(handlers),
            )
            return
        try:
            await handler(content)
        except ServiceError as exc:
            await self.send_error(exc.code, exc.message, content.get("generation_id"))
        except Exception:
            log.exception("frame %r failed", content.get("type"))
            await self.send_error("internal_error", "the server could not handle this frame")

    async def on_generate(self, content: dict[str, Any]) -> None:
        model = content.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("model must be a string")
        ticket = await _db(services.start_generation)(
            self.user,
            content.get("conversation_id"),
            content.get("content"),
            model=model,
            params=content.get("params"),
            thinking=content.get("thinking"),
            preset=content.get("preset"),
            attachments=content.get("attachments"),
        )
        await self.send_json(
            {
                "type": "accepted",
                "generation_id": ticket.generation_id,
                "conversation_id": ticket.conversation_id,
                "user_message_id": ticket.user_message_id,
                "queue_position": ticket.queue_position,
                "client_ref": content.get("client_ref"),
            }
        )
        self.start_relay(ticket.generation_id, 0)

    async def on_stop(self, content: dict[str, Any]) -> None:
        await _db(services.request_stop)(self.user, content.get("generation_id"))

    async def on_resume(self, content: dict[str, Any]) -> None:
        after = content.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidRequest("after_seq must be a non-negative integer")
        message = await _db(services.get_generation)(self.user, content.get("generation_id"))
        self.start_relay(str(message.id), after)

    def start_relay(self, generation_id: str, after_seq: int) -> None:
        previous = self.relays.pop(generation_id, None)
        if previous is not None:
            previous.cancel()
        self.relays = {gid: task for gid, task in self.relays.items() if not task.done()}
        if len(self.relays) >= MAX_RELAYS_PER_SOCKET:
            oldest = next(iter(self.relays))
            self.relays.pop(oldest).cancel()
        self.relays[generation_id] = asyncio.create_task(
            self.relay_generation_events(generation_id, after_seq)
        )

    async def relay_generation_events(self, generation_id: str, after_seq: int) -> None:
        """Send every event after ``after_seq`` in order, then live ones, until ``done``."""
        client = get_async_redis()
        seq = after_seq
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                batch = await events.read_events(client, generation_id, seq, RELAY_BLOCK_MS)
                if not batch and await self._log_is_gone(client, generation_id):
                    await self.send_error(
                        "log_expired",
                        "this reply's live stream has expired; reload the conversation",
                        generation_id,
                    )
                    return
                for event in batch:
                    await self.send_json(_socket_event(generation_id, event))
                    seq = event.seq
                    if event.kind == events.TERMINAL_KIND:
                        return

    async def _log_is_gone(self, client: Any, generation_id: str) -> bool:
        if await events.log_exists(client, generation_id):
            return False
        status = await _db(
            lambda: (
                Message.objects.filter(pk=generation_id).values_list("status", flat=True).first()
            )
        )()
        return status is None or status in Message.TERMINAL

    async def send_error(self, code: str, message: str, generation_id: Any = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if isinstance(generation_id, str):
            frame["generation_id"] = generation_id
        await self.send_json(frame)


def _socket_event(generation_id: str, event: events.Event) -> dict[str, Any]:
    base = {"generation_id": generation_id, "seq": event.seq}
    if event.kind in events.TEXT_KINDS:
        return {"type": "delta", **base, "kind": event.kind, "text": event.payload["text"]}
    if event.kind == events.TERMINAL_KIND:
        return {"type": "done", **base, **event.payload}
    return {"type": event.kind, **base, **event.payload}
