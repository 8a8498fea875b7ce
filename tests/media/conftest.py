"""A real HTTP client logged in as a user, with the CSRF token Django expects."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import session_cookie

CSRF = "k" * 32


@pytest.fixture
def http(live_server_url, transactional_db):  # type: ignore[no-untyped-def]
    def for_user(user):  # type: ignore[no-untyped-def]
        session = requests.Session()
        session.cookies.set("sessionid", session_cookie(user))
        session.cookies.set("csrftoken", CSRF)
        session.headers["X-CSRFToken"] = CSRF
        return session

    return for_user
