"""Downloads stream (no whole file in the web process), answer Range and conditional requests."""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psutil
import pytest
import requests
from django.core.files import File

from playground.media.models import Attachment, Blob
from playground.media.storage import PostgresBlobStorage
from tests.helpers import logged_in_session
from tests.media import files
from tests.media.test_upload import _upload

MB = 1_000_000


def _stored_video(user, size: int) -> tuple[Attachment, bytes]:  # type: ignore[no-untyped-def]
    """A stored attachment of ``size`` random bytes, written straight into the blob store
    (the test server's upload limit is 8 MiB). Its thumbnail is set so nothing waits for one."""
    data = random.Random(size).randbytes(size)
    sha = PostgresBlobStorage().save("bench", File(io.BytesIO(data)))
    blob = Blob.objects.get(pk=sha)
    attachment = Attachment.objects.create(
        owner=user,
        blob=blob,
        filename="big.mp4",
        content_type="video/mp4",
        kind=Attachment.Kind.VIDEO,
        width=64,
        height=48,
        thumbnail=blob,
    )
    return attachment, data


def _server_process(url: str) -> psutil.Process:
    port = str(urlsplit(url).port)
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "playground.asgi:application" in cmdline and port in cmdline:
            return process
    raise AssertionError("the live server's process was not found")


def test_concurrent_downloads_stream_without_holding_the_file(
    live_server_url, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    """Six readers of a 48 MB file (three whole, three ranges) at once: the web process grows
    by far less than one copy of the file. Read whole into memory (a synchronous iterator
    under ASGI), it grew by about 6 × 48 MB."""
    attachment, data = _stored_video(alice, 48 * MB)
    url = f"{live_server_url}/media/{attachment.id}/"
    server = _server_process(live_server_url)
    session = logged_in_session(live_server_url, alice)
    session.get(url, headers={"Range": "bytes=0-99"}, timeout=30)  # warm the code path
    baseline = server.memory_info().rss
    peak = baseline
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.01)

    def fetch(start: int | None) -> str:
        reader = logged_in_session(live_server_url, alice)
        headers = {"Range": f"bytes={start}-"} if start is not None else {}
        digest = hashlib.sha256()
        with reader.get(url, headers=headers, stream=True, timeout=60) as response:
            assert response.status_code == (206 if start is not None else 200)
            for block in response.iter_content(256 * 1024):
                digest.update(block)
        return digest.hexdigest()

    watcher = threading.Thread(target=watch)
    watcher.start()
    starts = [None, None, None, 5 * MB + 17, 20 * MB, 47 * MB]
    try:
        with ThreadPoolExecutor(len(starts)) as pool:
            digests = list(pool.map(fetch, starts))
    finally:
        stop.set()
        watcher.join()
    expected = [hashlib.sha256(data[s or 0 :]).hexdigest() for s in starts]
    assert digests == expected
    growth = (peak - baseline) / MB
    assert growth < 32, f"the web process grew by {growth:.0f} MB while streaming"


def test_a_slow_reader_does_not_make_the_server_buffer_the_file(
    live_server_url, alice, transactional_db
) -> None:  # type: ignore[no-untyped-def]
    attachment, data = _stored_video(alice, 40 * MB)
    url = f"{live_server_url}/media/{attachment.id}/"
    server = _server_process(live_server_url)
    baseline = server.memory_info().rss
    session = logged_in_session(live_server_url, alice)
    with session.get(url, stream=True, timeout=60) as response:
        first = response.raw.read(1024 * 1024)
        time.sleep(1.5)  # the reader stalls; the server must wait, not read ahead
        grown = (server.memory_info().rss - baseline) / MB
        rest = response.raw.read()
    assert first + rest == data
    assert grown < 16, f"the web process grew by {grown:.0f} MB for one stalled reader"


def test_downloads_carry_validators_and_answer_conditional_requests(
    http, live_server_url, alice
) -> None:  # type: ignore[no-untyped-def]
    data = files.image_bytes("PNG", size=(50, 50))
    body = _upload(http(alice), live_server_url, "a.png", data).json()
    session = http(alice)
    url = live_server_url + body["url"]
    full = session.get(url, timeout=30)
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    assert etag == f'"{body["sha256"]}"' and full.headers["Accept-Ranges"] == "bytes"
    again = session.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    since = session.get(url, headers={"If-Modified-Since": modified}, timeout=30)
    assert since.status_code == 304
    # If-Range: the range only while the file is the same one; otherwise the whole file.
    same = session.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=30)
    assert same.status_code == 206 and same.content == data[:10]
    other = session.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=30)
    assert other.status_code == 200 and other.content == data
    dated = session.get(url, headers={"Range": "bytes=0-9", "If-Range": modified}, timeout=30)
    assert dated.status_code == 206
    mangled = session.get(url, headers={"Range": "bytes=5-2"}, timeout=30)
    assert mangled.status_code == 416 and mangled.headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("start, end", [(0, 0), (1_048_570, 1_048_580), (2_000_000, None)])
def test_the_signed_blob_url_streams_ranges_too(
    live_server_url, alice, transactional_db, start, end
) -> None:  # type: ignore[no-untyped-def]
    from playground.media.blob_urls import signed_blob_url

    attachment, data = _stored_video(alice, 3 * MB)
    url = signed_blob_url(attachment.blob_id)  # on the live server (PLAYGROUND_INTERNAL_URL)
    assert url.startswith(live_server_url)
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Type"] == "application/octet-stream"
    wanted = f"bytes={start}-{'' if end is None else end}"
    part = requests.get(url, headers={"Range": wanted}, timeout=30)
    stop = len(data) if end is None else end + 1
    assert part.status_code == 206 and part.content == data[start:stop]
    assert part.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(data)}"
