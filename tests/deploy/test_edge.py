"""The request-body edge (playground.edge) against the live server, with real clients: raw
sockets (to show the answer comes before the body is sent, and for chunked bodies) and
httpx. Test settings: 8 MiB files, so uploads may send 9 MiB; 2,000,000 bytes for the API;
2.5 MB (Django's DATA_UPLOAD_MAX_MEMORY_SIZE) for everything else."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from playground.api.models import ApiKey
from playground.media.models import Attachment
from tests.helpers import session_cookie

MiB = 1024 * 1024


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-response"
        body += chunk
    return int(status_line.split()[1]), headers, json.loads(body)


def _answer_to_headers_alone(url: str, method: str, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    """Send only the request line and headers (a body is announced, none of it is sent)
    and read the answer: the server decided without reading any body."""
    with _connect(url) as sock:
        sock.sendall(_head(method, path, headers))
        return _read_response(sock)


def test_an_over_limit_content_length_is_answered_413_before_the_body_is_sent(
    live_server_url, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    cookie = f"sessionid={session_cookie(alice)}"
    ten_gib = str(10 * 1024**3)
    status, headers, body = _answer_to_headers_alone(
        live_server_url,
        "POST",
        "/media/",
        {
            "Content-Length": ten_gib,
            "Cookie": cookie,
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert (status, headers["content-type"]) == (413, "application/json")
    limit = settings.UPLOAD_MAX_BODY_BYTES
    assert body["error"]["message"] == (
        f"the request body is {10 * 1024**3:,} bytes; the limit is {limit:,} bytes"
        f" (files up to {8 * MiB:,} bytes)"
    )
    # Any other path: Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB.
    status, _, body = _answer_to_headers_alone(
        live_server_url, "POST", "/accounts/login/", {"Content-Length": str(3 * MiB)}
    )
    assert status == 413 and "limit is 2,621,440 bytes" in body["error"]["message"]
    # The API: its own limit, in the OpenAI shape, whoever asks.
    status, _, body = _answer_to_headers_alone(
        live_server_url, "POST", "/v1/chat/completions", {"Content-Length": "2000001"}
    )
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert body["error"]["type"] == "invalid_request_error"
    assert not Attachment.objects.exists()


def test_a_chunked_body_is_cut_off_at_the_limit(live_server_url, alice, transactional_db) -> None:  # type: ignore[no-untyped-def]
    """No Content-Length: the server counts what arrives and answers 413 once past the
    limit, having read no more than that (the client may stop sending)."""
    limit = settings.UPLOAD_MAX_BODY_BYTES  # 9 MiB
    chunk = b"x" * (256 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _connect(live_server_url) as sock:
        sock.sendall(
            _head(
                "POST",
                "/media/",
                {
                    "Transfer-Encoding": "chunked",
                    "Content-Type": "multipart/form-data; boundary=b",
                    "Cookie": f"sessionid={session_cookie(alice)}",
                },
            )
        )
        sent = 0
        answered = False
        deadline = time.monotonic() + 60
        while sent < 4 * limit and time.monotonic() < deadline:
            # Past the limit, give the answer a moment to come back before sending more.
            wait = 0.1 if sent > limit else 0
            if select.select([sock], [], [], wait)[0]:
                answered = True
                break
            sock.sendall(framed)
            sent += len(chunk)
        status, _, body = _read_response(sock)
    assert answered, f"no answer after {sent:,} bytes"
    assert status == 413
    assert f"over {limit:,} bytes" in body["error"]["message"]
    # The answer came right after the limit was crossed, not after the whole body.
    assert limit < sent <= limit + 8 * MiB, sent
    assert not Attachment.objects.exists()


def test_uploads_without_a_session_are_refused_before_the_body(
    live_server_url, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    form = {"Content-Length": str(5 * MiB), "Content-Type": "multipart/form-data; boundary=b"}
    for cookie in ("", "sessionid=not-a-session"):
        for path in ("/media/", "/gradio/gradio_api/upload"):
            headers = {**form, "Cookie": cookie} if cookie else form
            status, _, body = _answer_to_headers_alone(live_server_url, "POST", path, headers)
            assert status == 401, (path, cookie, body)
            assert body["error"]["message"] == "log in to upload files"
    # A real client, a real (small) file: the same answer.
    response = httpx.post(
        live_server_url + "/media/", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n")}, timeout=30
    )
    assert response.status_code == 401 and response.json()["error"]["status"] == 401
    # Once logged in, the same request reaches the view (which refuses the fake PNG).
    response = httpx.post(
        live_server_url + "/media/",
        files={"file": ("a.png", b"\x89PNG\r\n\x1a\n")},
        cookies={"sessionid": session_cookie(alice), "csrftoken": "x" * 32},
        headers={"X-CSRFToken": "x" * 32},
        timeout=30,
    )
    assert response.status_code in (415, 422), response.text
    assert not Attachment.objects.exists()


def test_the_api_refuses_bodies_without_a_valid_key_before_reading_them(
    live_server_url, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    announced = {"Content-Length": "1500000", "Content-Type": "application/json"}
    status, _, body = _answer_to_headers_alone(
        live_server_url, "POST", "/v1/chat/completions", announced
    )
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    status, _, body = _answer_to_headers_alone(
        live_server_url,
        "POST",
        "/v1/chat/completions",
        {**announced, "Authorization": "Bearer qp-not-a-key"},
    )
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    # A valid key passes the edge: the view answers (here: not JSON).
    _, key = ApiKey.issue(alice, "edge")
    response = httpx.post(
        live_server_url + "/v1/chat/completions",
        content=b"not json",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 400 and "not valid JSON" in response.text


def test_a_real_client_sending_the_whole_over_limit_body_still_reads_the_413(
    live_server_url, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    """httpx writes the whole body before it reads: the server drops the rest unread (no
    buffering) and the answer is there when the client looks."""
    with httpx.Client(timeout=30) as client:
        response = client.post(live_server_url + "/accounts/login/", content=b"x" * (3 * MiB))
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/accounts/login/", "/static/playground/app.css"])
def test_requests_without_bodies_are_untouched(live_server_url, path: str) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(live_server_url + path, timeout=30).status_code == 200
