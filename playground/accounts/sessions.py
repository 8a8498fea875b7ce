"""Who a session cookie belongs to, outside Django's request cycle (the ASGI edge, Gradio)."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings


def user_of_session(session_key: str) -> Any:
    """Django's own ``auth.get_user`` on that session, with the configured session engine
    (its backend and password-change checks): the active user, or None. Synchronous."""
    from django.contrib.auth import get_user

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    return user if user.is_authenticated and user.is_active else None
