"""Uploading images and videos over real HTTP: storage, dedup, Range reads, refusals, isolation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from playground.media.models import Attachment, Blob, BlobChunk
from tests.media import files


def _upload(session, url: str, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return session.post(url + "/media/", files={"file": (name, data)}, timeout=60)


@pytest.mark.parametrize(
    "fmt, content_type",
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("HEIF", "image/heic"),
        ("MPO", "image/jpeg"),  # a phone's multi-picture JPEG
        ("AVIF", "image/avif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("ICO", "image/vnd.microsoft.icon"),
    ],
)
def test_an_image_round_trips(http, live_server_url, alice, fmt, content_type) -> None:  # type: ignore[no-untyped-def]
    data = files.image_bytes(fmt, size=(80, 60))
    response = _upload(http(alice), live_server_url, f"photo.{fmt.lower()}", data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["content_type"], body["width"], body["height"]) == (
        "image",
        content_type,
        80,
        60,
    )
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    fetched = http(alice).get(live_server_url + body["url"], timeout=30)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["Content-Type"] == content_type


@pytest.mark.parametrize(
    "container, codec, seconds, fps, content_type",
    [
        ("mp4", "libx264", 2.0, 25, "video/mp4"),
        ("webm", "libvpx-vp9", 1.5, 10, "video/webm"),
        ("matroska", "libx264", 1.5, 10, "video/x-matroska"),  # MKV is not WebM
        ("avi", "mpeg4", 1.5, 10, "video/x-msvideo"),
        ("mp4", "libsvtav1", 1.0, 10, "video/mp4"),  # AV1 (decoded by libdav1d)
    ],
)
def test_a_video_round_trips_with_its_duration_and_rate(  # type: ignore[no-untyped-def]
    http, live_server_url, alice, tmp_path: Path, container, codec, seconds, fps, content_type
) -> None:
    path = files.video_file(
        tmp_path / f"clip.{container}", seconds=seconds, fps=fps, container=container, codec=codec
    )
    data = path.read_bytes()
    session = http(alice)
    response = _upload(session, live_server_url, path.name, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "video" and body["content_type"] == content_type
    assert (body["width"], body["height"]) == (64, 48)
    assert body["duration_s"] == pytest.approx(seconds, abs=0.15)
    assert body["fps"] == pytest.approx(fps, rel=0.05)
    fetched = session.get(live_server_url + body["url"], timeout=30)
    assert fetched.content == data and fetched.headers["Content-Type"] == content_type


def test_the_same_file_is_stored_once(http, live_server_url, alice, bob) -> None:  # type: ignore[no-untyped-def]
    data = files.image_bytes("PNG", size=(33, 33))
    first = _upload(http(alice), live_server_url, "a.png", data).json()
    second = _upload(http(bob), live_server_url, "b.png", data).json()
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    assert Blob.objects.filter(sha256=first["sha256"]).count() == 1
    assert Attachment.objects.count() == 2


def test_range_reads_let_a_video_seek(http, live_server_url, alice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = files.video_file(tmp_path / "long.mp4", seconds=4, fps=30, size=(320, 240))
    data = path.read_bytes()
    url = live_server_url + _upload(http(alice), live_server_url, "long.mp4", data).json()["url"]
    session = http(alice)
    middle = session.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert middle.status_code == 206 and middle.content == data[1000:2000]
    assert middle.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = session.get(url, headers={"Range": "bytes=-500"}, timeout=30)
    assert tail.status_code == 206 and tail.content == data[-500:]
    rest = session.get(url, headers={"Range": f"bytes={len(data) - 10}-"}, timeout=30)
    assert rest.content == data[-10:]
    beyond = session.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"


def test_a_blob_spanning_chunks_reads_back_exactly(transactional_db) -> None:  # type: ignore[no-untyped-def]
    import io

    from django.core.files import File

    from playground.media import storage

    data = bytes(range(256)) * (storage.CHUNK_SIZE // 256 * 2 + 7)
    store = storage.PostgresBlobStorage()
    name = store.save("x", File(io.BytesIO(data)))
    assert BlobChunk.objects.filter(blob_id=name).count() == 3
    with store.open(name) as handle:
        handle.seek(storage.CHUNK_SIZE - 5)
        assert handle.read(10) == data[storage.CHUNK_SIZE - 5 : storage.CHUNK_SIZE + 5]


def _refused(http, url, user, name, data, status, words):  # type: ignore[no-untyped-def]
    response = _upload(http(user), url, name, data)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert words in response.json()["error"]["message"]
    assert not Attachment.objects.exists() and not Blob.objects.exists()


def test_a_zero_byte_file_is_refused(http, live_server_url, alice) -> None:  # type: ignore[no-untyped-def]
    _refused(http, live_server_url, alice, "empty.png", b"", 422, "empty")


def test_a_zip_renamed_png_is_refused(http, live_server_url, alice) -> None:  # type: ignore[no-untyped-def]
    _refused(
        http, live_server_url, alice, "holiday.png", files.zip_bytes(), 415, "not an image or video"
    )


def test_a_png_decompression_bomb_is_refused(http, live_server_url, alice) -> None:  # type: ignore[no-untyped-def]
    _refused(http, live_server_url, alice, "bomb.png", files.png_bomb(), 422, "decompression bomb")


def test_a_truncated_mp4_is_refused(http, live_server_url, alice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = files.video_file(tmp_path / "cut.mp4", seconds=2, fps=25).read_bytes()
    _refused(http, live_server_url, alice, "cut.mp4", data[: len(data) * 2 // 3], 422, "truncated")


def test_a_file_over_the_size_limit_is_refused(http, live_server_url, alice) -> None:  # type: ignore[no-untyped-def]
    # Test settings allow 8 MiB per file.
    data = files.image_bytes("PNG") + b"\0" * (8 * 1024 * 1024)
    _refused(http, live_server_url, alice, "huge.png", data, 413, "limit is 8,388,608 bytes")


def test_a_video_over_the_duration_limit_is_refused(
    http, live_server_url, alice, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # The test server allows 600 s; a 601 s clip at 1 fps and tiny size is quick to make.
    path = files.video_file(tmp_path / "long.mp4", seconds=601, fps=1, size=(32, 32))
    _refused(http, live_server_url, alice, "long.mp4", path.read_bytes(), 422, "limit is 600 s")


def test_bob_gets_404_for_alices_media(http, live_server_url, alice, bob) -> None:  # type: ignore[no-untyped-def]
    body = _upload(http(alice), live_server_url, "a.jpg", files.image_bytes("JPEG")).json()
    assert http(bob).get(live_server_url + body["url"], timeout=30).status_code == 404
    assert http(bob).get(live_server_url + "/media/not-a-uuid/", timeout=30).status_code == 404
    anonymous = requests.get(live_server_url + body["url"], timeout=30, allow_redirects=False)
    assert anonymous.status_code == 302


def _wait_for_thumbnail(session, url: str, attachment_id: str) -> requests.Response:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = session.get(f"{url}/media/{attachment_id}/thumbnail/", timeout=30)
        if response.status_code == 200:
            return response
        time.sleep(0.2)
    raise AssertionError("no thumbnail after 60 s")


def test_a_worker_makes_image_thumbnails_and_video_posters(
    stack, http, alice, bob, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    session = http(alice)
    image = _upload(
        session, stack, "wide.png", files.image_bytes("PNG", size=(1000, 500), color=(10, 200, 10))
    ).json()
    clip = files.video_file(tmp_path / "poster.mp4", seconds=2.0, fps=10, size=(128, 96))
    video = _upload(session, stack, "poster.mp4", clip.read_bytes()).json()
    thumb = Image.open(io.BytesIO(_wait_for_thumbnail(session, stack, image["id"]).content))
    assert thumb.format == "JPEG" and thumb.size == (320, 160)
    assert thumb.getpixel((160, 80))[1] > 150  # still green
    poster = Image.open(io.BytesIO(_wait_for_thumbnail(session, stack, video["id"]).content))
    assert poster.format == "JPEG" and poster.size == (128, 96)
    assert http(bob).get(f"{stack}/media/{video['id']}/thumbnail/", timeout=30).status_code == 404
    assert Attachment.objects.get(pk=image["id"]).thumbnail_id is not None
