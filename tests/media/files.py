"""Real encoded media made in the tests: Pillow images and PyAV videos with known properties."""

from __future__ import annotations

import io
import random
import struct
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
    image = Image.new("RGB", size, color)
    if fmt == "MPO":  # a phone's multi-picture JPEG: two pictures (say, a stereo pair)
        image.save(buffer, format="MPO", save_all=True, append_images=[image.copy()])
    elif fmt == "ICO":
        image.save(buffer, format="ICO", sizes=[size])
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


# Four quadrants of distinct colours: any turn or mirror of a picture shows in where they are.
QUADRANTS = {"top_left": (230, 20, 20), "top_right": (20, 200, 20), "bottom_left": (20, 20, 230)}
QUADRANT_REST = (240, 240, 240)


def quadrants(size: tuple[int, int]) -> np.ndarray:
    """[height, width, 3] pixels: red top-left, green top-right, blue bottom-left, white."""
    width, height = size
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = QUADRANT_REST
    pixels[: height // 2, : width // 2] = QUADRANTS["top_left"]
    pixels[: height // 2, width // 2 :] = QUADRANTS["top_right"]
    pixels[height // 2 :, : width // 2] = QUADRANTS["bottom_left"]
    return pixels


def quadrant_colours(pixels: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """The colour at the middle of each quadrant of an [height, width, 3] picture."""
    height, width = pixels.shape[:2]
    at = {
        "top_left": (height // 4, width // 4),
        "top_right": (height // 4, width * 3 // 4),
        "bottom_left": (height * 3 // 4, width // 4),
        "bottom_right": (height * 3 // 4, width * 3 // 4),
    }
    return {name: tuple(int(v) for v in pixels[y, x]) for name, (y, x) in at.items()}


def nearest_quadrant(colour: tuple[int, int, int]) -> str:
    named = {**QUADRANTS, "bottom_right": QUADRANT_REST}
    return min(
        named, key=lambda n: sum((a - b) ** 2 for a, b in zip(named[n], colour, strict=True))
    )


def layout(pixels: np.ndarray) -> dict[str, str]:
    """Where each of the original quadrants ended up: {place: original quadrant}."""
    return {place: nearest_quadrant(c) for place, c in quadrant_colours(pixels).items()}


def oriented_image(fmt: str, orientation: int, size: tuple[int, int] = (80, 40)) -> bytes:
    """The quadrant picture stored as is, with an EXIF orientation tag saying how to turn it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(quadrants(size)).save(buffer, format=fmt, exif=exif.tobytes())
    return buffer.getvalue()


# The display matrix (PyAV: counter-clockwise degrees, then mirrors) equal to each EXIF
# orientation, as a phone would record the same picture as video.
EXIF_AS_DISPLAY = {
    1: (0, False, False),
    2: (0, True, False),
    3: (180, False, False),
    4: (0, False, True),
    5: (90, False, True),
    6: (-90, False, False),  # a phone held upright: stored sideways, shown turned clockwise
    7: (-90, False, True),
    8: (90, False, False),
}


def rotated_video(
    path: Path,
    orientation: int,
    *,
    size: tuple[int, int] = (64, 48),
    seconds: float = 1.0,
    fps: int = 10,
    container: str = "mp4",
) -> Path:
    """The quadrant picture as H.264 video stored as is, with the display matrix of the
    EXIF ``orientation`` in the container (as phones record portrait video)."""
    degrees, hflip, vflip = EXIF_AS_DISPLAY[orientation]
    frames = [quadrants(size)] * int(seconds * fps)
    return encode_video(
        path, frames, fps=fps, container=container, rotation=(degrees, hflip, vflip)
    )


def dds_bytes(variant: str) -> bytes:
    """DirectDraw Surface files: 'plain' (an ordinary one, as Pillow writes it), or headers
    Pillow's DDS plugin refuses with NotImplementedError: 'unknown_flags' (no pixel format
    flag), 'unknown_fourcc' (a compressed format it does not implement)."""
    if variant == "plain":
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, format="DDS")
        return buffer.getvalue()
    flags, fourcc = {"unknown_flags": (0, 0), "unknown_fourcc": (0x4, 0x4F4F4F4F)}[variant]
    header = struct.pack("<3I", 0x1007, 16, 16) + struct.pack("<3I", 0, 0, 1)
    header += b"\0" * 44  # reserved
    header += struct.pack("<4I", 32, flags, fourcc, 0) + b"\0" * 16  # pixel format
    header += struct.pack("<5I", 0x1000, 0, 0, 0, 0)  # caps
    assert len(header) == 120
    return b"DDS " + struct.pack("<I", 124) + header + b"\0" * 256


def encode_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int,
    container: str = "mp4",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    rotation: tuple[int, bool, bool] | None = None,
) -> Path:
    """Encode RGB frames ([height, width, 3] uint8) one per 1/fps second; returns ``path``.

    ``rotation`` (counter-clockwise degrees, hflip, vflip) is written as the display matrix.
    """
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        stream.options = options or {}
        if rotation is not None:
            degrees, hflip, vflip = rotation
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
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


def damage_last_packets(path: Path, count: int = 4, seed: int = 0) -> bytes:
    """The file's bytes with its last ``count`` video packets overwritten with noise: the
    container opens, the end does not decode (FFmpeg: "Invalid data … avcodec_send_packet()")."""
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos]
    rng = random.Random(seed)
    for position, size in packets[-count:]:
        data[position : position + size] = bytes(rng.randrange(256) for _ in range(size))
    return bytes(data)
