"""Real encoded media made in the tests: Pillow images and PyAV videos with known properties."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from pillow_heif import register_heif_opener

register_heif_opener()


def image_bytes(
    fmt: str, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def encode_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int,
    container: str = "mp4",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames ([height, width, 3] uint8) one per 1/fps second; returns ``path``."""
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        stream.options = options or {}
        for index, pixels in enumerate(frames):
            if index == 0:
                stream.height, stream.width = pixels.shape[:2]
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def video_file(
    path: Path,
    *,
    seconds: float,
    fps: int,
    size: tuple[int, int] = (64, 48),
    container: str = "mp4",
    codec: str = "libx264",
) -> Path:
    """Encode ``seconds`` of moving colour bars; returns ``path``."""
    width, height = size

    def bars() -> Iterator[np.ndarray]:
        for i in range(int(seconds * fps)):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            pixels[:, : (i * 3) % width] = (i * 7 % 256, 128, 255 - i % 256)
            yield pixels

    return encode_video(path, bars(), fps=fps, container=container, codec=codec)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not an image")
    return buffer.getvalue()


def png_bomb() -> bytes:
    """A small file that decodes to 144 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, format="PNG")
    return buffer.getvalue()
