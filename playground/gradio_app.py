"""The Gradio demo at ``/gradio/``: a Blocks chat UI over the one generation service.

Served by the same ASGI application as Django and Channels (``playground.asgi`` routes
``/gradio`` here), only to logged-in users: the Django session cookie is resolved to a
user by ``django_user`` (Gradio's ``auth_dependency``), and an anonymous page request is
sent to the login page. Each message starts a generation through the same path as the
API (``playground.api.views.start_shielded``, conversations of source ``gradio``), so
quotas, usage rows (kind ``gradio``) and stop behave as everywhere else; the reply
streams from ``service.generation_events``.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a server

import gradio as gr  # noqa: E402
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse

from playground.accounts.sessions import user_of_session
from playground.api.views import ApiError, ChatRequest, MediaRef, Turn, start_shielded, stop
from playground.generations import service
from playground.generations.catalogue import get_catalogue, served_models
from playground.generations.errors import ServiceError

PATH = "/gradio"


async def django_user(request: Request) -> str | None:
    """Gradio's auth_dependency: the logged-in Django user's name, or None."""
    key = request.cookies.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    user = await database_sync_to_async(user_of_session)(key)
    return user.get_username() if user is not None else None


def _served_choices() -> list[str]:
    served = served_models()
    return [name for name in get_catalogue() if name in served] or sorted(get_catalogue())


def _media_refs(files: list[Any]) -> list[MediaRef]:
    refs = []
    for item in files:
        path = Path(item if isinstance(item, str) else item.get("path", ""))
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        kind = "video" if content_type.startswith("video/") else "image"
        refs.append(MediaRef(kind, data=path.read_bytes(), content_type=content_type))
    return refs


def _history_turns(history: list[Any]) -> list[Turn]:
    turns = []
    for entry in history:
        role = entry.get("role") if isinstance(entry, dict) else None
        content = entry.get("content") if isinstance(entry, dict) else None
        if role in ("user", "assistant") and isinstance(content, str) and content:
            if entry.get("metadata", {}).get("title"):  # a "Thinking" bubble: not a turn
                continue
            turns.append(Turn(role, content))
    return turns


async def respond(
    message: dict[str, Any],
    history: list[Any],
    model: str,
    thinking: bool,
    max_tokens: float,
    request: gr.Request,
) -> AsyncIterator[Any]:
    username = request.username
    user = await database_sync_to_async(
        lambda: get_user_model().objects.filter(username=username, is_active=True).first()
    )()
    if user is None:
        raise gr.Error("Log in to chat.")
    text = (message.get("text") or "").strip() if isinstance(message, dict) else str(message)
    files = message.get("files") or [] if isinstance(message, dict) else []
    if not text and not files:
        raise gr.Error("Type a message or attach an image or video.")
    chat = ChatRequest(
        model=model,
        system="",
        history=_history_turns(history),
        prompt=text,
        prompt_media=_media_refs(files),
        params={"max_tokens": int(max_tokens)},
        thinking=thinking,
    )
    try:
        ticket = await start_shielded(user, chat, source="gradio")
    except ApiError as exc:
        raise gr.Error(exc.message) from None
    except ServiceError as exc:
        raise gr.Error(exc.message) from None
    reasoning = answer = ""
    finished = False
    try:
        async for event in service.generation_events(ticket.generation_id, 0, ticket.model):
            if event["type"] == "delta":
                if event["kind"] == "reasoning":
                    reasoning += event["text"]
                else:
                    answer += event["text"]
            elif event["type"] == "error" and event.get("code") != "stream_unavailable":
                answer += f"\n\n⚠ {event.get('message', 'the reply failed')}"
            elif event["type"] == "done":
                finished = True
            else:
                continue
            bubbles = []
            if reasoning:
                bubbles.append(gr.ChatMessage(content=reasoning, metadata={"title": "Thinking"}))
            bubbles.append(gr.ChatMessage(content=answer))
            yield bubbles
            if finished:
                return
    finally:
        if not finished:  # the page left or pressed Stop
            await stop(user, ticket.generation_id)


def build_blocks() -> gr.Blocks:
    with gr.Blocks(title="Qwen 3.5 Playground · Gradio") as blocks:
        gr.Markdown("## Qwen 3.5 Playground — Gradio demo")
        choices = _served_choices()
        model = gr.Dropdown(choices=choices, value=choices[0] if choices else None, label="Model")
        thinking = gr.Checkbox(value=False, label="Thinking")
        max_tokens = gr.Slider(16, 8192, value=1024, step=16, label="Max tokens")
        gr.ChatInterface(
            respond,
            multimodal=True,
            textbox=gr.MultimodalTextbox(file_types=["image", "video"], file_count="multiple"),
            additional_inputs=[model, thinking, max_tokens],
            api_name="chat",
        )
    return blocks


async def create_app() -> Any:
    """The ASGI app serving ``/gradio``: Gradio on FastAPI, behind Django's login.

    Built on the first request, inside the running server: Gradio's startup (its queue)
    runs here, since the lifespan events of the server went to the main application.
    """
    app = FastAPI()

    @app.middleware("http")
    async def login_first(request: Request, call_next: Any) -> Any:
        # The page itself: anonymous visitors go to the login page and come back.
        page = request.method == "GET" and request.url.path.rstrip("/") == PATH
        if page and await django_user(request) is None:
            return RedirectResponse(f"{settings.LOGIN_URL_PATH}?next={PATH}/", status_code=302)
        return await call_next(request)

    blocks = build_blocks()
    gr.mount_gradio_app(app, blocks, path=PATH, auth_dependency=django_user)
    blocks.run_startup_events()
    await blocks.run_extra_startup_events()
    return app
