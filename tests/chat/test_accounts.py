"""Login throttling (django-axes) and the signup modes, over real HTTP against live servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from playground.devservers import free_port
from tests.helpers import ROOT, LiveServer


def _form(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return token[1]


def _login(session: requests.Session, base: str, username: str, password: str) -> requests.Response:
    token = _form(session, base + "/accounts/login/")
    return session.post(
        base + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": base + "/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )


def test_failed_logins_lock_that_account_from_that_address(live_server_url, alice, bob) -> None:  # type: ignore[no-untyped-def]
    attacker = requests.Session()
    for _ in range(4):
        failed = _login(attacker, live_server_url, "alice", "wrong-password")
        assert failed.status_code == 200 and "didn't match" in failed.text
    # The fifth failure locks the pair (AXES_FAILURE_LIMIT = 5) ...
    fifth = _login(attacker, live_server_url, "alice", "wrong-password")
    assert fifth.status_code == 429
    # ... and the next try is refused even with the right password: a readable page.
    locked = _login(attacker, live_server_url, "alice", "alice-password-1")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text and "Try again in" in locked.text
    # Another account from the same address is not locked.
    other = _login(requests.Session(), live_server_url, "bob", "bob-password-1")
    assert other.status_code == 302
    # An operator can unlock it (django-axes' command), and then the right password works.
    reset = manage("axes_reset_username", "alice")
    assert reset.returncode == 0, reset.stderr
    assert (
        _login(requests.Session(), live_server_url, "alice", "alice-password-1").status_code == 302
    )


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` against the test database."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )


def _env() -> dict[str, str]:
    from django.conf import settings

    from tests.conftest import _test_database_url

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "playground.settings.test",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }


@pytest.fixture
def server_with_mode(transactional_db, service_env, tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def]
    servers: list[LiveServer] = []

    def start(mode: str) -> str:
        port = free_port()
        log = tmp_path / f"asgi-{mode}.log"
        server = LiveServer.start(
            port,
            {
                **service_env,
                "DATABASE_URL": _env()["DATABASE_URL"],
                "PLAYGROUND_SIGNUP_MODE": mode,
            },
            log,
        )
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def _signup(session: requests.Session, base: str, username: str, **extra: str) -> requests.Response:
    token = _form(session, base + "/accounts/signup/")
    return session.post(
        base + "/accounts/signup/",
        data={
            "username": username,
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
            "csrfmiddlewaretoken": token,
            **extra,
        },
        headers={"Referer": base + "/accounts/signup/"},
        allow_redirects=False,
        timeout=30,
    )


def test_open_signup_creates_an_account(live_server_url, transactional_db) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    created = _signup(requests.Session(), live_server_url, "carol")
    assert created.status_code == 302 and User.objects.filter(username="carol").exists()


def test_invite_only_signup_takes_each_code_once(server_with_mode) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    base = server_with_mode("invite")
    made = manage("invite", "create", "--count", "2", "--note", "test")
    assert made.returncode == 0, made.stderr
    first, second = made.stdout.split()
    page = requests.get(base + "/accounts/signup/", timeout=30).text
    assert 'name="invite_code"' in page

    refused = _signup(requests.Session(), base, "dave")
    assert refused.status_code == 200 and "This field is required" in refused.text
    wrong = _signup(requests.Session(), base, "dave", invite_code="not-a-code")
    assert "not valid or has been used" in wrong.text
    assert not User.objects.filter(username="dave").exists()

    assert _signup(requests.Session(), base, "dave", invite_code=first).status_code == 302
    reused = _signup(requests.Session(), base, "erin", invite_code=first)
    assert "not valid or has been used" in reused.text
    assert not User.objects.filter(username="erin").exists()
    assert _signup(requests.Session(), base, "erin", invite_code=second).status_code == 302
    from playground.accounts.models import InviteCode

    assert InviteCode.objects.get(code=first).used_by.username == "dave"  # type: ignore[union-attr]


def test_closed_signup_says_so_and_creates_nothing(server_with_mode) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    base = server_with_mode("closed")
    page = requests.get(base + "/accounts/signup/", timeout=30)
    assert page.status_code == 403 and "Signup is closed" in page.text
    session = requests.Session()
    session.get(base + "/accounts/login/", timeout=30)  # a CSRF cookie
    posted = session.post(
        base + "/accounts/signup/",
        data={
            "username": "mallory",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": base + "/accounts/signup/"},
        timeout=30,
    )
    assert posted.status_code == 403 and "Signup is closed" in posted.text
    assert not User.objects.filter(username="mallory").exists()
