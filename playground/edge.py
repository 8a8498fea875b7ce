"""Request bodies at the ASGI edge: limited and, for uploads, authenticated from the
request's headers, before a byte of the body is read.

Django's ASGI handler reads the whole body of a request (spooling it to a temporary file
past FILE_UPLOAD_MAX_MEMORY_SIZE) before any middleware or view runs, and Gradio's
upload route spools its files likewise: their own limits act only once the bytes are in
memory or on disk. ``BodyLimit`` wraps the whole HTTP application (playground.asgi) and
decides first:

- a ``Content-Length`` over the path's limit: 413 at once, nothing read;
- a body without one (``Transfer-Encoding: chunked``) is counted as it arrives and cut
  off at the limit with 413 (the application sees the client go away);
- an upload (``POST /media/``, Gradio's upload, ``POST /v1/...``) without a valid session
  or API key: 401 before any of it is read.

Limits (settings.base): ``UPLOAD_MAX_BODY_BYTES`` for uploads, ``API_MAX_BODY_BYTES`` for
the API, ``DATA_UPLOAD_MAX_MEMORY_SIZE`` for everything else. What the client still
sends after the answer is uvicorn's to drop: it discards it unbuffered until its
keep-alive timeout closes the connection, so that a client still sending can read the
answer. WebSocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http.cookie import parse_cookie

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Uploads that need a logged-in session: the media upload, and Gradio's (under /gradio).
SESSION_UPLOADS = frozenset({"/media/", "/gradio/gradio_api/upload"})
API_PREFIX = "/v1/"
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Rule:
    kind: str  # "upload", "api" or "other": which limit, which check, which error shape
    limit: int | None  # bytes; None: no limit
    needs: str | None  # "session", "api_key" or None


def rule_for(method: str, path: str) -> Rule:
    if path in SESSION_UPLOADS and method not in BODYLESS:
        return Rule("upload", settings.UPLOAD_MAX_BODY_BYTES, "session")
    if path.startswith(API_PREFIX):
        needs = None if method in BODYLESS else "api_key"
        return Rule("api", settings.API_MAX_BODY_BYTES, needs)
    return Rule("other", settings.DATA_UPLOAD_MAX_MEMORY_SIZE, None)


def _error(rule: Rule, status: int, message: str, code: str) -> dict[str, Any]:
    if rule.kind == "api":  # the OpenAI shape of playground.api.views.ApiError
        kind = {401: "authentication_error", 503: "server_error"}.get(
            status, "invalid_request_error"
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return {"error": {"status": status, "message": message}}  # playground.http.json_error


def _too_large(rule: Rule, size: int | None) -> dict[str, Any]:
    assert rule.limit is not None
    if rule.kind == "api":  # as playground.api.views._too_large words it
        said = f"{size}" if size is not None else f"over {rule.limit}"
        message = f"The request body is {said} bytes; the limit is {rule.limit}."
    else:
        said = f"{size:,}" if size is not None else f"over {rule.limit:,}"
        message = f"the request body is {said} bytes; the limit is {rule.limit:,} bytes"
        if rule.kind == "upload":
            message += f" (files up to {settings.MEDIA_LIMITS['MAX_FILE_BYTES']:,} bytes)"
    return _error(rule, 413, message, "request_too_large")


async def answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


def _session_user(session_key: str) -> Any:
    from playground.accounts.sessions import user_of_session

    return user_of_session(session_key)


def _api_key_ok(key: str) -> bool:
    from playground.api.models import ApiKey

    return ApiKey.active(key) is not None


async def refusal(rule: Rule, scope: Scope) -> tuple[int, dict[str, Any]] | None:
    """Why this request may not send its body (status, payload), or None."""
    if rule.needs == "session":
        cookies = parse_cookie("; ".join(_header(scope, b"cookie")))
        key = cookies.get(settings.SESSION_COOKIE_NAME, "")
        if not key or await database_sync_to_async(_session_user)(key) is None:
            return 401, _error(rule, 401, "log in to upload files", "not_authenticated")
    elif rule.needs == "api_key":
        scheme, _, key = (_header(scope, b"authorization") or [""])[-1].partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            message = (
                "Missing API key: send it as 'Authorization: Bearer <key>' "
                "(create one in Settings)."
            )
            return 401, _error(rule, 401, message, "missing_api_key")
        if not await database_sync_to_async(_api_key_ok)(key):
            return 401, _error(rule, 401, "Incorrect API key provided.", "invalid_api_key")
    return None


class BodyLimit:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = rule_for(scope.get("method", "GET"), scope.get("path", ""))
        lengths = set(_header(scope, b"content-length"))
        if lengths:
            try:
                (declared,) = (int(value) for value in lengths)
                if declared < 0:
                    raise ValueError(declared)
            except ValueError:
                message = "a bad Content-Length header"
                await answer(send, 400, _error(rule, 400, message, "invalid_request"))
                return
            if rule.limit is not None and declared > rule.limit:
                await answer(send, 413, _too_large(rule, declared))
                return
        if rule.needs is not None:
            try:
                refused = await refusal(rule, scope)
            except DatabaseError:
                log.warning("cannot check who sends a body to %s: no database", scope.get("path"))
                message = "The database is briefly unavailable; try again."
                refused = 503, _error(rule, 503, message, "unavailable")
            if refused is not None:
                await answer(send, *refused)
                return
        if rule.limit is None:
            await self.app(scope, receive, send)
            return
        body = _CountedBody(rule, receive, send)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.cut:
                raise
            # The application failed on the disconnect it was shown: the client has its 413.
            log.debug("application stopped after a body cut off at %s bytes", rule.limit)


class _CountedBody:
    """``receive`` and ``send`` of one request whose body is cut off past ``rule.limit``."""

    def __init__(self, rule: Rule, receive: Receive, send: Send) -> None:
        self.rule, self._receive, self._send = rule, receive, send
        self.received = 0
        self.cut = False
        self.started = False  # a response has begun (the application's or the 413)

    async def receive(self) -> Message:
        if self.cut:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            assert self.rule.limit is not None
            if self.received > self.rule.limit:
                self.cut = True
                if not self.started:
                    self.started = True
                    await answer(self._send, 413, _too_large(self.rule, None))
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.cut:
            return  # too late: the client has had its 413 (or the body was cut mid-answer)
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
