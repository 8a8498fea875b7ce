"""What a file really is, judged by its content (never its name), and whether it is whole.

Images: anything Pillow decodes (JPEG, PNG, WebP, GIF's first frame, HEIC
through the pillow-heif plugin), with a
decompression-bomb limit on pixels. Video: containers and codecs PyAV decodes
(MP4/H.264, WebM/VP9, MOV), probed for duration, size and frame rate; the
first and last frames are decoded so a truncated file is caught.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()  # HEIC/HEIF photos (phones) through Pillow

IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIF": "image/heic",
}
VIDEO_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/webm"}
VIDEO_CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"}


class MediaRejected(Exception):
    """A file we will not store. ``status`` is the HTTP status: 413, 415 or 422."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image | video
    content_type: str
    width: int
    height: int
    duration_s: float | None = None
    fps: float | None = None
    codec: str = ""


def probe(path: str, *, max_image_pixels: int, max_video_seconds: float) -> MediaInfo:
    image = _probe_image(path, max_image_pixels)
    if image is not None:
        return image
    return _probe_video(path, max_video_seconds)


def _probe_image(path: str, max_pixels: int) -> MediaInfo | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                kind = image.format or ""
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaRejected(
                        422, f"image is {width}×{height} pixels; the limit is {max_pixels:,} pixels"
                    )
                image.load()  # decodes everything: truncated or corrupt data fails here
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected(
            422, "image is too large to decode safely (decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaRejected(422, f"image is damaged or truncated ({exc})") from None
    if kind not in IMAGE_TYPES:
        raise MediaRejected(
            415, f"{kind or 'this'} images are not supported; use JPEG, PNG, WebP or GIF"
        )
    return MediaInfo("image", IMAGE_TYPES[kind], width, height)


def _probe_video(path: str, max_seconds: float) -> MediaInfo:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError):
        if _looks_like_video(path):
            raise MediaRejected(422, "video is damaged or truncated (cannot be opened)") from None
        raise MediaRejected(
            415, "not an image or video we can read (JPEG, PNG, WebP, GIF, MP4, WebM, MOV)"
        ) from None
    with container:
        content_type = VIDEO_CONTAINERS.get(container.format.name)
        streams = container.streams.video
        if content_type is None or not streams:
            raise MediaRejected(
                415, "not an image or video we can read (JPEG, PNG, WebP, GIF, MP4, WebM, MOV)"
            )
        stream = streams[0]
        codec = stream.codec_context.name
        if codec not in VIDEO_CODECS:
            raise MediaRejected(415, f"{codec} video is not supported; use H.264, HEVC, VP9 or AV1")
        duration = _duration_s(container, stream)
        if duration is None or duration <= 0:
            raise MediaRejected(422, "video has no duration; it may be truncated")
        if duration > max_seconds:
            raise MediaRejected(
                422, f"video is {duration:.1f} s long; the limit is {max_seconds:g} s"
            )
        fps = float(stream.average_rate or stream.guessed_rate or 0) or None
        try:
            first = next(container.decode(stream))
            # Seek near the end and decode: a cut-off file fails here, not in a worker later.
            time_base = stream.time_base or Fraction(1, 1_000_000)
            container.seek(int(max(0.0, duration - 0.5) / time_base), stream=stream)
            last = None
            for frame in container.decode(stream):
                last = frame
        except (av.error.FFmpegError, StopIteration) as exc:
            raise MediaRejected(422, f"video is damaged or truncated ({exc})") from None
        if last is None:
            raise MediaRejected(422, "video is damaged or truncated (no frames near the end)")
        return MediaInfo("video", content_type, first.width, first.height, duration, fps, codec)


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _looks_like_video(path: str) -> bool:
    """MP4/MOV ('ftyp' box) or Matroska/WebM (EBML magic) by their first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"
