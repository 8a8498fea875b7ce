"""A worker's media download: by URL over real HTTP, checked by hash, cached by content."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engines.base import EngineError
from inference.media_cache import local_copy

BODY = b"\x89PNG fake bytes " * 1000


class _Files(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits += 1
        self.send_response(403 if "expired" in self.path else 200)
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def _part(url: str, sha: str | None = None) -> dict[str, str]:
    return {"type": "image", "sha256": sha or hashlib.sha256(BODY).hexdigest(), "url": url,
            "content_type": "image/png"}  # fmt: skip


def test_a_file_is_fetched_once_and_checked(server: str, tmp_path: Path) -> None:
    _Files.hits = 0
    path = local_copy(_part(server + "/blob/1/"), tmp_path)
    assert path.read_bytes() == BODY and path.suffix == ".png"
    assert local_copy(_part(server + "/blob/1/"), tmp_path) == path
    assert _Files.hits == 1  # the second time it came from the cache
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    "url, sha, limit, why",
    [
        ("/blob/1/", "0" * 64, None, "hash mismatch"),
        ("/expired/", None, None, "expired"),
        ("/blob/1/", None, 100, "larger than allowed"),
        ("file:///etc/passwd", None, None, "web URL"),
    ],
)
def test_bad_media_fail_the_request_and_leave_nothing(
    server: str, tmp_path: Path, url: str, sha: str | None, limit: int | None, why: str
) -> None:
    full = url if url.startswith("file:") else server + url
    with pytest.raises(EngineError) as failed:
        local_copy(_part(full, sha), tmp_path, max_bytes=limit)
    assert failed.value.code == "media_unavailable" and why in failed.value.message
    assert not list(tmp_path.iterdir())
