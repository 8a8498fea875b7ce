"""The production settings are what the entry points default to, and they are safe: a
server started with no DJANGO_SETTINGS_MODULE shows no URL list on a 404, logs an
ordinary 403 in one line, sends secure cookies and HSTS behind a TLS proxy, serves a
favicon; without DJANGO_SECRET_KEY nothing starts; `check --deploy` passes."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from playground.devservers import free_port
from tests.helpers import ROOT, LiveServer, session_cookie


def _production_env(service_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in service_env.items() if k != "DJANGO_SETTINGS_MODULE"}
    # The test process's key, so that its sessions are valid on this server too.
    env["DJANGO_SECRET_KEY"] = settings.SECRET_KEY
    return env


@pytest.fixture
def production_server(service_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    log = tmp_path / "asgi.log"
    server = LiveServer.start(port, _production_env(service_env), log)
    try:
        yield server
    finally:
        server.stop()


def test_a_server_without_settings_runs_production(
    production_server: LiveServer, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    url = production_server.url
    with httpx.Client(base_url=url, timeout=30) as client:
        missing = client.get("/no-such-page/")
        assert missing.status_code == 404
        assert "URLconf" not in missing.text and "urlpatterns" not in missing.text
        assert "DEBUG = True" not in missing.text

        login = client.get("/accounts/login/")
        assert login.status_code == 200
        csrf = login.headers["set-cookie"]
        assert "csrftoken=" in csrf and "Secure" in csrf
        # No HSTS over plain HTTP; behind a TLS proxy (X-Forwarded-Proto from an address
        # uvicorn trusts: FORWARDED_ALLOW_IPS) it is there, and the scheme is https.
        assert "strict-transport-security" not in login.headers
        proxied = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
        assert proxied.headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )

        icon = client.get("/favicon.ico", follow_redirects=True)
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"

        # Two ordinary 403s: a non-staff user on the dashboard (PermissionDenied), and a
        # form posted without its CSRF token.
        cookie = {"Cookie": f"sessionid={session_cookie(alice)}"}
        assert client.get("/dashboard/", headers=cookie).status_code == 403
        refused = client.post("/accounts/login/", data={"username": "a", "password": "b"})
        assert refused.status_code == 403
    time.sleep(0.5)  # the log lines are written after the answers
    log = production_server.log.read_text()
    assert "Forbidden (Permission denied): /dashboard/" in log
    assert "Forbidden (CSRF cookie not set.): /accounts/login/" in log
    assert "Traceback" not in log, log
    assert "Not Found: /favicon.ico" not in log


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _bare_env(**extra: str) -> dict[str, str]:
    """The environment of a shell with none of the playground's variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PLAYGROUND_", "DATABASE_"))
    }
    return {**env, **extra}


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = _manage(_bare_env(DATABASE_URL="postgres://u@127.0.0.1:5432/db"), "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    # The ASGI application too (what uvicorn imports).
    imported = subprocess.run(
        [sys.executable, "-c", "import playground.asgi"],
        cwd=ROOT,
        env=_bare_env(DATABASE_URL="postgres://u@127.0.0.1:5432/db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode != 0 and "DJANGO_SECRET_KEY is not set" in imported.stderr


def test_check_deploy_passes_with_the_production_settings() -> None:
    env = _bare_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://u@127.0.0.1:5432/db",
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
