"""docker/Caddyfile: valid for Caddy with and without TLS, and, run by a real Caddy in front
of the live test server, serving collected static files itself, proxying pages and
WebSockets, and refusing bodies past the app's limits. `make test` installs Debian's Caddy
(`make compose`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from playground.devservers import free_port
from tests.helpers import ROOT, ChatSocket

CADDYFILE = ROOT / "docker" / "Caddyfile"


def _caddy() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("caddy is not installed: `make test` installs Debian's (make compose)")
    return caddy


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    # Caddy keeps certificates and autosaved config under HOME / XDG folders.
    return {
        **os.environ,
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        **extra,
    }


@pytest.mark.parametrize("site", [":80", "chat.example.com"])
def test_the_caddyfile_is_valid_with_and_without_tls(site: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [_caddy(), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=_env(tmp_path, SITE_ADDRESS=site, WEB_UPSTREAM="127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


@pytest.fixture
def proxy(live_server_url: str, tmp_path: Path) -> Iterator[str]:
    """Caddy on a free port in front of the live server, serving statics collected the way
    compose's "collectstatic" service collects them."""
    static = tmp_path / "static"
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "playground.settings.test",
            "DJANGO_STATIC_ROOT": str(static),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    upstream = urlsplit(live_server_url).netloc
    log = tmp_path / "caddy.log"
    env = _env(
        tmp_path,
        SITE_ADDRESS=f":{port}",
        CADDY_ADMIN=f"localhost:{free_port()}",
        WEB_UPSTREAM=upstream,
        STATIC_ROOT=str(static),
        PLAYGROUND_MAX_UPLOAD_BODY_BYTES=str(settings.UPLOAD_MAX_BODY_BYTES),
        PLAYGROUND_API_MAX_BODY_BYTES=str(settings.API_MAX_BODY_BYTES),
        PLAYGROUND_MAX_REQUEST_BODY_BYTES=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [_caddy(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        # Caddy's first health check of the upstream (GET /healthz) has answered.
        while time.monotonic() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10).status_code == 200:
                break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_caddy_serves_static_files_itself_and_proxies_the_rest(proxy: str) -> None:
    css = httpx.get(proxy + "/static/playground/app.css", headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200 and "--accent" in css.text
    # Served by Caddy from the collected files: uvicorn never saw it.
    assert css.headers["server"] == "Caddy"
    assert css.headers["cache-control"] == "public, max-age=3600"
    assert css.headers["content-encoding"] == "gzip"
    icon = httpx.get(proxy + "/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.headers["cache-control"] == "public, max-age=3600"
    page = httpx.get(proxy + "/accounts/login/")
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.text
    assert page.headers["server"] == "Caddy, uvicorn"


def test_websockets_pass_through_the_proxy(proxy: str, alice) -> None:  # type: ignore[no-untyped-def]
    with ChatSocket(proxy, alice) as ws:
        ws.send({"type": "no-such-frame"})
        frame = ws.recv(timeout=30)
    assert frame["type"] == "error" and frame["code"] == "unknown_type"


def test_the_proxy_refuses_bodies_past_the_apps_limits(proxy: str) -> None:
    # Announced: the app answers from the headers, through the proxy.
    too_big = httpx.post(proxy + "/accounts/login/", content=b"x" * (3 * 1024 * 1024))
    assert too_big.status_code == 413

    # Chunked (no Content-Length): Caddy stops at the same limit.
    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b"x" * (256 * 1024)

    chunked = httpx.post(proxy + "/accounts/login/", content=chunks())
    assert chunked.status_code == 413
    anonymous = httpx.post(proxy + "/media/", files={"file": ("a.png", b"\x89PNG\r\n")})
    assert anonymous.status_code == 401


def test_streamed_replies_pass_through_unbuffered(stack: str, proxy: str, alice) -> None:  # type: ignore[no-untyped-def]
    """100 tokens at 100 tokens/s: through the proxy the first arrives long before the last."""
    from playground.api.models import ApiKey

    _, key = ApiKey.issue(alice, "proxy")
    body = {
        "model": "fake-rate",
        "messages": [{"role": "user", "content": "Count."}],
        "max_tokens": 100,
        "stream": True,
    }
    arrivals = []
    with httpx.stream(
        "POST",
        proxy + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic())
    assert len(arrivals) > 5
    assert arrivals[-1] - arrivals[0] > 0.5  # spread over the second it took, not in one burst
