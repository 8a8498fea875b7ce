"""A real HTTP client logged in as a user, with the CSRF token Django expects."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers import session_cookie

CSRF = "k" * 32


@pytest.fixture
def http(live_server_url, workers, transactional_db):  # type: ignore[no-untyped-def]
    """Uploads queue thumbnails, so the app worker (``workers``) runs to make them."""

    def for_user(user):  # type: ignore[no-untyped-def]
        session = requests.Session()
        session.cookies.set("sessionid", session_cookie(user))
        session.cookies.set("csrftoken", CSRF)
        session.headers["X-CSRFToken"] = CSRF
        return session

    yield for_user
    # Let the app worker finish the thumbnails these uploads queued: a thumbnail written
    # while the test database is flushed can deadlock the flush.
    from playground.media.models import Attachment

    deadline = time.monotonic() + 20
    while Attachment.objects.filter(thumbnail__isnull=True).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
