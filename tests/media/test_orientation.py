"""Phone photos (EXIF orientation) and phone videos (a display rotation in the container) are
upright everywhere: the reported size, the thumbnail or poster frame, and what the model sees.

The test files store a picture of four coloured quadrants as is, with an orientation tag or
display matrix saying how to turn it; Pillow's ImageOps.exif_transpose on the photo is the
reference for where each quadrant must end up, and a video with the equivalent display
matrix must end up the same.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from engines.base import ChatMessage, GenerationRequest
from engines.torch_prompt import PromptBuilder
from tests.media import files
from tests.media.test_upload import _upload, _wait_for_thumbnail

STORED = (80, 40)  # width, height of the stored picture
SIDEWAYS = {5, 6, 7, 8}  # orientations that swap width and height


def _reference_layout(orientation: int) -> dict[str, str]:
    """Where each quadrant is once the photo is turned as its EXIF tag says (Pillow)."""
    with Image.open(io.BytesIO(files.oriented_image("PNG", orientation, STORED))) as stored:
        return files.layout(np.asarray(ImageOps.exif_transpose(stored).convert("RGB")))


def _model_input(path: Path, kind: str):  # type: ignore[no-untyped-def]
    builder = PromptBuilder(tokenizer=None, processor=object(), chat_template_kwargs={})
    request = GenerationRequest("r", [ChatMessage("user", [{"type": kind, "path": str(path)}])])
    return builder.collect(request)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_model_sees_photos_and_videos_upright(orientation: int, tmp_path: Path) -> None:
    expected = _reference_layout(orientation)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(files.oriented_image("JPEG", orientation, STORED))
    (image,) = _model_input(photo, "image").images
    width, height = STORED
    assert image.size == ((height, width) if orientation in SIDEWAYS else (width, height))
    assert files.layout(np.asarray(image)) == expected
    clip = files.rotated_video(tmp_path / "clip.mp4", orientation, size=STORED)
    (frames,) = _model_input(clip, "video").videos
    sampled_height, sampled_width = frames.shape[1:3]
    assert (sampled_height > sampled_width) == (orientation in SIDEWAYS)
    for frame in (frames[0], frames[-1]):
        assert files.layout(frame) == expected


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF", "AVIF", "TIFF"])
def test_a_portrait_phone_photo_reports_its_upright_size(
    http, live_server_url, alice, fmt: str
) -> None:  # type: ignore[no-untyped-def]
    data = files.oriented_image(fmt, 6, STORED)  # stored landscape, shown portrait
    response = _upload(http(alice), live_server_url, f"portrait.{fmt.lower()}", data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (40, 80)
    assert http(alice).get(live_server_url + body["url"], timeout=30).content == data


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_a_rotated_phone_video_reports_its_upright_size(
    http, live_server_url, alice, tmp_path: Path, orientation: int
) -> None:  # type: ignore[no-untyped-def]
    clip = files.rotated_video(tmp_path / "phone.mp4", orientation, size=(64, 48))
    response = _upload(http(alice), live_server_url, "phone.mp4", clip.read_bytes())
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"]) == ((48, 64) if orientation in SIDEWAYS else (64, 48))


def test_thumbnails_and_posters_are_upright(stack, http, alice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = http(alice)
    photo = _upload(session, stack, "p.jpg", files.oriented_image("JPEG", 6, STORED)).json()
    clip = files.rotated_video(tmp_path / "phone.mp4", 6, size=STORED, seconds=2)
    video = _upload(session, stack, "v.mp4", clip.read_bytes()).json()
    for attachment in (photo, video):
        response = _wait_for_thumbnail(session, stack, attachment["id"])
        thumbnail = Image.open(io.BytesIO(response.content))
        assert thumbnail.size == (40, 80)
        assert files.layout(np.asarray(thumbnail)) == _reference_layout(6)
