"""ASGI entry point: HTTP (Django, plus static files) and WebSockets (Channels)."""

import asyncio
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.local")
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from playground.arena.routing import websocket_urlpatterns as arena_sockets  # noqa: E402
from playground.generations.routing import websocket_urlpatterns  # noqa: E402

django_and_static = ASGIStaticFilesHandler(django_http)
_gradio: Any = None
_gradio_lock = asyncio.Lock()


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/gradio`` goes to the Gradio app (built on first use), the rest to Django."""
    global _gradio
    path = scope.get("path", "")
    if path == "/gradio" or path.startswith("/gradio/"):
        if _gradio is None:  # the lock only while it is built, not on every request
            async with _gradio_lock:
                if _gradio is None:
                    from playground.gradio_app import create_app

                    _gradio = await create_app()
        await _gradio(scope, receive, send)
        return
    await django_and_static(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + arena_sockets))
        ),
    }
)
