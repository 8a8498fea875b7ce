"""What cameras and phones make: more formats accepted, every decoder failure a 4xx answer in
words a person understands, and the model handed a normalised picture."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engines.base import ChatMessage, GenerationRequest
from engines.media import load_image
from engines.torch_prompt import PromptBuilder
from playground.media.models import Attachment, Blob
from playground.media.probe import MediaRejected, probe
from tests.media import files
from tests.media.test_upload import _refused, _upload, _wait_for_thumbnail

EVERY_FORMAT = ("JPEG", "MPO", "PNG", "WebP", "GIF", "HEIC", "AVIF", "BMP", "TIFF", "ICO")
EVERY_CONTAINER = ("MP4", "MOV", "WebM", "MKV", "AVI")


@pytest.mark.parametrize("variant", ["unknown_flags", "unknown_fourcc", "plain"])
def test_a_dds_file_is_refused_with_415_json_listing_what_is_accepted(
    http, live_server_url, alice, variant
) -> None:  # type: ignore[no-untyped-def]
    data = files.dds_bytes(variant)
    if variant != "plain":  # the file that made Pillow's DDS plugin raise (a 500 before)
        with pytest.raises(NotImplementedError):
            Image.open(io.BytesIO(data))
    response = _upload(http(alice), live_server_url, "texture.dds", data)
    assert response.status_code == 415, response.text
    assert response.headers["Content-Type"] == "application/json"
    message = response.json()["error"]["message"]
    for name in EVERY_FORMAT + EVERY_CONTAINER:
        assert name in message, (name, message)
    assert not Attachment.objects.exists() and not Blob.objects.exists()


def test_a_damaged_video_is_refused_in_words_not_ffmpeg_text(
    http, live_server_url, alice, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = files.video_file(tmp_path / "clip.mp4", seconds=2, fps=10)
    data = files.damage_last_packets(clip)
    response = _upload(http(alice), live_server_url, "clip.mp4", data)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message == "video is damaged or truncated: part of it cannot be decoded"
    assert not Attachment.objects.exists()


def test_a_video_codec_outside_the_list_is_refused_before_decoding(
    http, live_server_url, alice, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    frames = [np.full((48, 64, 3), 90, np.uint8)] * 10
    clip = files.encode_video(
        tmp_path / "clip.avi", frames, fps=10, container="avi", codec="mjpeg", pix_fmt="yuvj420p"
    )
    _refused(
        http,
        live_server_url,
        alice,
        "clip.avi",
        clip.read_bytes(),
        415,
        "MJPEG video codec is not supported; use H.264, HEVC, VP8, VP9, AV1 or MPEG-4 Part 2",
    )


def test_every_new_format_gets_a_thumbnail(stack, http, alice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = http(alice)
    uploads = [
        (f"photo.{fmt.lower()}", files.image_bytes(fmt, size=(64, 64), color=(10, 200, 10)))
        for fmt in ("MPO", "BMP", "TIFF", "AVIF", "ICO", "HEIF")
    ]
    for container, codec, suffix in (("matroska", "libx264", "mkv"), ("avi", "mpeg4", "avi")):
        clip = files.video_file(
            tmp_path / f"clip.{suffix}", seconds=1, fps=10, container=container, codec=codec
        )
        uploads.append((clip.name, clip.read_bytes()))
    ids = []
    for name, data in uploads:
        response = _upload(session, stack, name, data)
        assert response.status_code == 201, (name, response.text)
        ids.append(response.json()["id"])
    for attachment_id in ids:
        thumb = Image.open(io.BytesIO(_wait_for_thumbnail(session, stack, attachment_id).content))
        assert thumb.format == "JPEG"


# ---- without the server: the decoders themselves ---------------------------------------


def _sample(fmt: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if fmt == "MPO":
        image.save(buffer, format="MPO", save_all=True, append_images=[image])
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def _mutations(data: bytes, count: int, seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    for trial in range(count):
        damaged = bytearray(data)
        if trial % 3 == 0:  # scattered bytes
            for _ in range(rng.randint(1, 20)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        elif trial % 3 == 1:  # a run of noise
            at = rng.randrange(len(damaged))
            damaged[at : at + 64] = rng.randbytes(64)
        else:  # cut off
            damaged = damaged[: rng.randrange(len(damaged))]
        yield bytes(damaged)


def _video_sample(tmp_path: Path, container: str, codec: str) -> bytes:
    suffix = {"matroska": "mkv"}.get(container, container)
    clip = tmp_path / f"sample.{suffix}"
    return files.video_file(clip, seconds=1, fps=10, container=container, codec=codec).read_bytes()


@pytest.mark.parametrize(
    "kind",
    [
        "JPEG", "MPO", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "BMP", "TIFF", "ICO",
        "mp4/libx264", "webm/libvpx-vp9", "matroska/libx264", "avi/mpeg4",
    ],
)  # fmt: skip
def test_damaged_files_of_every_format_are_refused_never_raised(kind: str, tmp_path: Path) -> None:
    """Byte flips, noise and truncation: the probe accepts the file or refuses it with 415 or
    422 in a sentence, and never lets a decoder's exception through (once a 500: PyAV's
    UnicodeDecodeError on damaged metadata, libheif's RuntimeError, a stream without codec)."""
    data = _video_sample(tmp_path, *kind.split("/")) if "/" in kind else _sample(kind)
    path = tmp_path / "damaged"
    for damaged in _mutations(data, 45, seed=len(kind)):
        path.write_bytes(damaged)
        try:
            probe(str(path), max_image_pixels=50_000_000, max_video_seconds=600)
        except MediaRejected as exc:
            assert exc.status in (415, 422)
            assert "Errno" not in exc.message and "avcodec" not in exc.message


def _collected(path: Path, kind: str = "image"):  # type: ignore[no-untyped-def]
    """What the engine hands the model's processor for one attachment."""
    builder = PromptBuilder(tokenizer=None, processor=object(), chat_template_kwargs={})
    request = GenerationRequest("r", [ChatMessage("user", [{"type": kind, "path": str(path)}])])
    return builder.collect(request)


@pytest.mark.parametrize("fmt", ["JPEG", "MPO", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "BMP", "TIFF", "ICO"])  # fmt: skip
def test_the_model_gets_an_rgb_picture_from_every_format(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "picture"
    path.write_bytes(files.image_bytes(fmt, size=(64, 48), color=(200, 30, 30)))
    (image,) = _collected(path).images
    assert image.mode == "RGB" and image.size == (64, 48)
    red, green, blue = image.getpixel((32, 24))
    assert red > 150 and green < 90 and blue < 90


def test_transparency_becomes_white_and_16_bit_samples_are_scaled(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    clear.putpixel((0, 0), (255, 0, 0, 255))
    clear.save(tmp_path / "clear.png")
    picture = load_image(str(tmp_path / "clear.png"))
    assert picture.getpixel((4, 4)) == (255, 255, 255) and picture.getpixel((0, 0)) == (255, 0, 0)
    deep = Image.fromarray(np.full((8, 8), 40_000, np.uint16))  # 16-bit grey, 61% bright
    deep.save(tmp_path / "deep.png")
    assert load_image(str(tmp_path / "deep.png")).getpixel((4, 4)) == (155, 155, 155)


@pytest.mark.parametrize(
    "container, codec", [("matroska", "libx264"), ("avi", "mpeg4"), ("mp4", "libsvtav1")]
)
def test_the_model_gets_frames_from_every_container(container, codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "clip"
    path.write_bytes(_video_sample(tmp_path, container, codec))
    (frames,) = _collected(path, "video").videos
    assert frames.ndim == 4 and frames.shape[0] >= 2 and frames.shape[-1] == 3
