"""The OpenAI-compatible API: ``GET /v1/models``, ``POST /v1/chat/completions``.

A thin adapter over the one generation service (``playground.generations.service``): the
request's messages become a conversation of source "api" (its earlier turns stored as
they came, the last user turn started as a generation), and the service's events become
OpenAI's response or its server-sent chunks. Errors come in OpenAI's shape with the
status vLLM's and OpenAI's servers use. A client that disconnects stops its generation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from playground.api.models import ApiKey
from playground.chat.models import Conversation, Message
from playground.generations import quotas, service
from playground.generations.catalogue import get_catalogue, get_model, served_models
from playground.generations.errors import InvalidRequest, ServiceError, UnknownModel
from playground.generations.quotas import RateLimited
from playground.media import services as media_services
from playground.media.probe import MediaRejected

log = logging.getLogger(__name__)

MAX_MESSAGES = 500
FINISH_REASONS = {"stop": "stop", "length": "length", "loop": "stop", "cancelled": "stop"}
# Engine errors that are the request's fault (400) rather than the server's (500).
CLIENT_ERRORS = {
    "context_length_exceeded",
    "invalid_prompt",
    "invalid_request",
    "media_not_supported",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str,
        param: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.status, self.message, self.kind, self.code, self.param = (
            status,
            message,
            kind,
            code,
            param,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", "invalid_request", param)


# --- authentication ------------------------------------------------------------------
def _authenticate(request: HttpRequest) -> Any:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "Missing API key: send it as 'Authorization: Bearer <key>' (create one in Settings).",
            "authentication_error",
            "missing_api_key",
        )
    row = ApiKey.active(key)
    if row is None:
        raise ApiError(
            401, "Incorrect API key provided.", "authentication_error", "invalid_api_key"
        )
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


# --- /v1/models -------------------------------------------------------------------------
@csrf_exempt
def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return ApiError(405, "Use GET.", "invalid_request_error", "method_not_allowed").response()
    try:
        _authenticate(request)
    except ApiError as exc:
        return exc.response()
    served = served_models()
    data = [
        {
            "id": spec.name,
            "object": "model",
            "created": int(live.get("started_at", 0) or 0),
            "owned_by": "qwen35-playground",
            "max_model_len": spec.context_length,
        }
        for spec in get_catalogue().values()
        if (live := served.get(spec.name)) is not None
    ]
    return JsonResponse({"object": "list", "data": data})


# --- /v1/chat/completions ----------------------------------------------------------------
@dataclass(frozen=True)
class MediaRef:
    """An image or video part: bytes from a data: URL, or an uploaded attachment's id."""

    kind: str  # image | video
    data: bytes = b""
    content_type: str = ""
    attachment_id: str = ""


@dataclass
class Turn:
    role: str
    text: str
    media: list[MediaRef] = field(default_factory=list)


@dataclass
class ChatRequest:
    model: str
    system: str
    history: list[Turn]  # earlier turns, stored as they came
    prompt: str  # the last user turn's text
    prompt_media: list[MediaRef] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    thinking: bool | None = None
    stream: bool = False
    include_usage: bool = False


def _media(part: dict[str, Any], kind: str, index: int) -> MediaRef:
    """``{"type": "image_url", "image_url": {"url": "data:…;base64,…"}}`` or an attachment id
    (``"url": "<id>"`` or ``"attachment://<id>"``, as ``POST /media/`` returned it)."""
    value = part.get(kind + "_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise _bad(f"messages[{index}]: a {kind}_url part needs a url", "messages")
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise _bad(f"messages[{index}]: data: URLs must be base64", "messages")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(
                f"messages[{index}]: the data: URL is not valid base64", "messages"
            ) from None
        return MediaRef(kind, data=data, content_type=header[5:].split(";")[0])
    if url.startswith(("http://", "https://")):
        raise _bad(
            f"messages[{index}]: remote URLs are not fetched; send a data: URL or upload the "
            "file to /media/ and send its id",
            "messages",
        )
    return MediaRef(kind, attachment_id=url.removeprefix("attachment://"))


def _content(content: Any, index: int) -> tuple[str, list[MediaRef]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise _bad(f"messages[{index}].content must be a string or a list of parts", "messages")
    texts: list[str] = []
    media: list[MediaRef] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "video_url"):
            media.append(_media(part, kind.removesuffix("_url"), index))
        else:
            raise _bad(f"messages[{index}]: unknown content part {kind!r}", "messages")
    return "\n".join(texts), media


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"{len(messages)} messages; at most {MAX_MESSAGES}", "messages")
    system_parts: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{index}] must be an object", "messages")
        role = message.get("role")
        text, media = _content(message.get("content", ""), index)
        if media and role != "user":
            raise _bad(f"messages[{index}]: only user messages can carry media", "messages")
        if role in ("system", "developer"):
            system_parts.append(text)
        elif role in ("user", "assistant"):
            turns.append(Turn(role, text, media))
        else:
            raise _bad(f"messages[{index}].role must be system, user or assistant", "messages")
    if not turns or turns[-1].role != "user":
        raise _bad("the last message must be the user's", "messages")
    if body.get("n", 1) != 1:
        raise _bad("only n=1 is supported", "n")
    params: dict[str, Any] = {}
    for name in ("temperature", "top_p", "top_k", "presence_penalty", "seed", "stop"):
        if body.get(name) is not None:
            params[name] = body[name]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        params["max_tokens"] = limit
    template = body.get("chat_template_kwargs") or {}
    if not isinstance(template, dict):
        raise _bad("chat_template_kwargs must be an object", "chat_template_kwargs")
    thinking = template.get("enable_thinking")
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        model=model,
        system="\n\n".join(system_parts),
        history=turns[:-1],
        prompt=turns[-1].text,
        prompt_media=turns[-1].media,
        params=params,
        thinking=thinking,
        stream=bool(body.get("stream", False)),
        include_usage=bool(
            isinstance(stream_options, dict) and stream_options.get("include_usage")
        ),
    )


def _start(user: Any, chat: ChatRequest, source: str = "api") -> service.GenerationTicket:
    """Store the conversation as sent, then start its last turn (the one service)."""
    if chat.prompt_media or any(turn.media for turn in chat.history):
        try:  # before anything is stored: a model that cannot see takes no media
            spec = get_model(chat.model)
        except InvalidRequest as exc:
            raise _api_error(exc) from None
        if "image" not in spec.info.get("modalities", ()):
            raise _bad(f"{spec.label} cannot see images or videos; pick a vision model", "model")
    limit = settings.INFERENCE["MAX_PROMPT_CHARS"]
    if len(chat.prompt) > limit:
        raise ApiError(
            413,
            f"The last message is {len(chat.prompt)} characters; the limit is {limit}.",
            "invalid_request_error",
            "request_too_large",
            "messages",
        )
    conversation = None
    try:
        with transaction.atomic():
            conversation = service.create_conversation(user, chat.model, chat.system, source=source)
            parent = None
            for turn in chat.history:
                parent = Message.objects.create(
                    conversation=conversation,
                    parent=parent,
                    role=turn.role,
                    content=turn.text,
                    model=chat.model if turn.role == "assistant" else "",
                )
                if turn.media:  # earlier turns' media: resent each call, so not charged
                    parent.attachments.set(_attachments(user, turn.media, charge=False))
        prompt_media = _attachments(user, chat.prompt_media)
        # Outside the transaction: the service enqueues on its own commit, and reports a
        # broker it could not reach.
        return service.start_generation(
            user,
            conversation.id,
            chat.prompt,
            params=chat.params,
            thinking=chat.thinking,
            attachments=[str(a.pk) for a in prompt_media] or None,
        )
    except (InvalidRequest, ServiceError, MediaRejected) as exc:
        if conversation is not None:  # refused: keep no half-made conversation
            Conversation.objects.filter(pk=conversation.pk).delete()
        raise _api_error(exc) from None


def _attachments(user: Any, refs: list[MediaRef], charge: bool = True) -> list[Any]:
    """Store data: URL media as the user's attachments (the upload path's checks and, with
    ``charge``, its quota); look up attachment ids (someone else's look missing)."""
    found = []
    for ref in refs:
        if ref.attachment_id:
            attachment = media_services.get_attachment(user, ref.attachment_id)
            if attachment is None:
                raise InvalidRequest(f"attachment {ref.attachment_id!r} not found")
            found.append(attachment)
            continue
        if charge:
            quotas.check_upload(user, len(ref.data))
        upload = TemporaryUploadedFile(f"api-{ref.kind}", ref.content_type, len(ref.data), None)
        upload.write(ref.data)
        upload.seek(0)
        try:
            found.append(media_services.ingest_upload(user, upload))
        except MediaRejected:
            if charge:
                quotas.refund_upload(user, len(ref.data))
            raise
        finally:
            upload.close()
    return found


def _api_error(exc: Exception) -> ApiError:
    if isinstance(exc, MediaRejected):
        kind = "invalid_request_error"
        code = {413: "request_too_large", 415: "unsupported_media_type"}.get(
            exc.status, "invalid_media"
        )
        return ApiError(
            exc.status if exc.status in (413, 415) else 400, exc.message, kind, code, "messages"
        )
    if isinstance(exc, RateLimited):
        return ApiError(
            429, exc.message, "rate_limit_error", exc.limit, retry_after=exc.retry_after
        )
    if isinstance(exc, UnknownModel):
        return ApiError(404, exc.message, "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, InvalidRequest):
        return _bad(exc.message)
    assert isinstance(exc, ServiceError)
    if exc.code == "model_unavailable":
        return ApiError(503, exc.message, "server_error", "model_unavailable", "model")
    if exc.code == "not_found":
        return _bad(exc.message)
    return ApiError(503, exc.message, "server_error", exc.code)


def _usage(record: dict[str, Any]) -> dict[str, int]:
    usage = record.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _record_error(record: dict[str, Any]) -> ApiError | None:
    error = record.get("error")
    if not error:
        return None
    code = error.get("code") or "server_error"
    if code in CLIENT_ERRORS:
        return ApiError(400, error.get("message", code), "invalid_request_error", code)
    # The worker's own text (paths, CUDA messages) is for the logs, not for clients.
    return ApiError(500, "The generation failed on its worker.", "server_error", code)


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is {size} bytes; the limit is {settings.API_MAX_BODY_BYTES}.",
        "invalid_request_error",
        "request_too_large",
    )


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return ApiError(405, "Use POST.", "invalid_request_error", "method_not_allowed").response()
    try:
        user = await database_sync_to_async(_authenticate)(request)
        try:
            declared = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            raise _bad("a bad Content-Length header") from None
        if declared > settings.API_MAX_BODY_BYTES:
            raise _too_large(declared)
        try:
            raw = request.body
        except RequestDataTooBig:
            raise _too_large(declared) from None
        if len(raw) > settings.API_MAX_BODY_BYTES:
            raise _too_large(len(raw))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _bad("the request body is not valid JSON") from None
        chat = parse_chat_request(body)
        ticket = await start_shielded(user, chat)
    except ApiError as exc:
        return exc.response()
    except DatabaseError:
        return ApiError(
            503, "The database is briefly unavailable; try again.", "server_error", "unavailable"
        ).response()
    created = int(time.time())
    completion_id = f"chatcmpl-{ticket.generation_id}"
    if chat.stream:
        response = StreamingHttpResponse(
            _chunks(user, ticket, chat, completion_id, created), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    record: dict[str, Any] | None = None
    try:
        async for event in service.generation_events(ticket.generation_id, 0, ticket.model):
            if event["type"] == "done":
                record = event
    finally:
        if record is None:  # the client went away: stop its generation
            await stop(user, ticket.generation_id)
    assert record is not None
    error = _record_error(record)
    if error is not None:
        return error.response()
    message: dict[str, Any] = {"role": "assistant", "content": record.get("content", "")}
    if record.get("reasoning"):
        message["reasoning_content"] = record["reasoning"]
    return JsonResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": ticket.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": FINISH_REASONS.get(record.get("finish_reason", ""), "stop"),
                }
            ],
            "usage": _usage(record),
        }
    )


async def start_shielded(
    user: Any, chat: ChatRequest, source: str = "api"
) -> service.GenerationTicket:
    """Start the generation; a client that leaves meanwhile still gets it stopped."""
    task = asyncio.ensure_future(database_sync_to_async(_start)(user, chat, source))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def stop_when_started(done: asyncio.Future[service.GenerationTicket]) -> None:
            if not done.cancelled() and done.exception() is None:
                asyncio.ensure_future(stop(user, done.result().generation_id))

        task.add_done_callback(stop_when_started)
        raise


async def stop(user: Any, generation_id: str) -> None:
    try:
        await database_sync_to_async(service.request_stop)(user, generation_id)
    except Exception as exc:  # the stop is best effort; the reaper closes what is left
        log.warning("stopping %s after a disconnect failed: %s", generation_id, exc)


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


async def _chunks(
    user: Any, ticket: service.GenerationTicket, chat: ChatRequest, completion_id: str, created: int
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": ticket.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    finished = False
    try:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        async for event in service.generation_events(ticket.generation_id, 0, ticket.model):
            if event["type"] == "delta":
                field_name = "reasoning_content" if event["kind"] == "reasoning" else "content"
                yield _sse(chunk({field_name: event["text"]}))
            elif event["type"] == "done":
                finished = True
                error = _record_error(event)
                if error is not None:
                    yield _sse(error.body())
                else:
                    reason = FINISH_REASONS.get(event.get("finish_reason", ""), "stop")
                    yield _sse(chunk({}, reason))
                    if chat.include_usage:
                        yield _sse(
                            {
                                "id": completion_id,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": ticket.model,
                                "choices": [],
                                "usage": _usage(event),
                            }
                        )
                yield _sse("[DONE]")
                return
    finally:
        if not finished:  # the client disconnected (or the server is stopping)
            await stop(user, ticket.generation_id)
