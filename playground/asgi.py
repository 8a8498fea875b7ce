"""ASGI entry point: HTTP (Django, plus static files) and WebSockets (Channels)."""

import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.local")
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from inference.routing import websocket_urlpatterns  # noqa: E402


def _warm_tokenizers() -> None:
    from django.conf import settings

    from inference.catalogue import get_catalogue
    from inference.prompt_tokens import warm_tokenizers

    catalogue = get_catalogue()
    warm_tokenizers([catalogue[n] for n in settings.PLAYGROUND_SERVED_MODELS if n in catalogue])


# The context-length check needs each model's tokenizer; load them off the request path.
threading.Thread(target=_warm_tokenizers, name="warm-tokenizers", daemon=True).start()

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_http),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
