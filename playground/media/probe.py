"""What a file really is, judged by its content (never its name), and whether it is whole.

The format is checked against the allow-list before anything is decoded:
images open only through the allowed formats' Pillow plugins, which read the
header alone (engines.media.IMAGE_OPENERS: JPEG and MPO, PNG, WebP, GIF,
HEIC, AVIF, BMP, TIFF, ICO); the pixel count is checked next (a
decompression-bomb limit), and only then is the image decoded whole, so a
truncated or corrupt file is caught here. Videos open only through the allowed
demuxers (MP4/MOV, Matroska/WebM, AVI) with only the allowed decoders probing
them; the codec is checked before any frame is decoded, then the first frame
and a frame near the end are decoded. Sizes are as shown: EXIF orientation for
photos, the display rotation for videos.

Every failure becomes a ``MediaRejected`` with a sentence a person
understands; the decoders' own messages go to the log, never to the user.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from PIL import Image, UnidentifiedImageError

from engines.media import (
    CODEC_NAMES,
    IMAGE_NAMES,
    IMAGE_TYPES,
    VIDEO_CODECS,
    VIDEO_NAMES,
    codec_name,
    display_matrix,
    displayed_size,
    open_image,
    open_video,
    oriented_size,
)

logger = logging.getLogger(__name__)

ACCEPTED = f"accepted are {IMAGE_NAMES} images and {VIDEO_NAMES} videos in {CODEC_NAMES}"
UNREADABLE = f"not an image or video we can read; {ACCEPTED}"
DAMAGED_IMAGE = "image is damaged or truncated: it cannot be decoded"
DAMAGED_VIDEO = "video is damaged or truncated: part of it cannot be decoded"

# ISO base media files whose major brand says "still image" (HEIC, AVIF): never a video.
IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


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
    try:
        image = _probe_image(path, max_image_pixels)
        if image is not None:
            return image
        return _probe_video(path, max_video_seconds)
    except MediaRejected:
        raise
    except MemoryError:
        raise MediaRejected(422, "the file needs too much memory to decode") from None
    except Exception:  # any decoder's failure is the file's fault, never a 500
        logger.warning("an upload could not be decoded", exc_info=True)
        raise MediaRejected(422, "the file is damaged: it cannot be decoded") from None


def _probe_image(path: str, max_pixels: int) -> MediaInfo | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_image(path) as image:  # headers only, allowed formats only
                content_type = IMAGE_TYPES.get(image.format or "")
                if content_type is None:  # a plugin's variant we do not serve
                    raise MediaRejected(415, f"{image.format} images are not supported; {ACCEPTED}")
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaRejected(
                        422, f"image is {width}×{height} pixels; the limit is {max_pixels:,} pixels"
                    )
                image.load()  # decodes everything: truncated or corrupt data fails here
                width, height = oriented_size(image)
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected(
            422, "image is too large to decode safely (decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        if _sniff(path) == "image":  # a HEIC/AVIF container Pillow cannot read
            raise MediaRejected(422, DAMAGED_IMAGE) from None
        return None
    except MemoryError:
        raise
    except Exception:  # OSError, SyntaxError, ValueError, NotImplementedError, struct.error…
        logger.info("image decoder failed", exc_info=True)
        raise MediaRejected(422, DAMAGED_IMAGE) from None
    return MediaInfo("image", content_type, width, height)


def _probe_video(path: str, max_seconds: float) -> MediaInfo:
    try:
        container = open_video(path)  # the allowed demuxers only
    except (av.error.FFmpegError, OSError):
        logger.info("video container could not be opened", exc_info=True)
        if _sniff(path) == "video":
            raise MediaRejected(422, "video is damaged or truncated: it cannot be opened") from None
        raise MediaRejected(415, UNREADABLE) from None
    with container:
        streams = container.streams.video
        if not streams:
            if _sniff(path) == "video":
                raise MediaRejected(422, "video is damaged: no picture track can be found in it")
            raise MediaRejected(415, f"the file has no picture; {ACCEPTED}")
        stream = streams[0]
        codec = codec_name(stream)
        if codec not in VIDEO_CODECS:  # before decoding a single frame
            raise MediaRejected(
                415, f"{codec.upper() or 'this'} video codec is not supported; use {CODEC_NAMES}"
            )
        content_type = _video_type(container.format.name, path)
        duration = _duration_s(container, stream)
        if duration is None or duration <= 0:
            raise MediaRejected(422, "video has no duration; it may be truncated")
        if duration > max_seconds:
            raise MediaRejected(
                422, f"video is {duration:.1f} s long; the limit is {max_seconds:g} s"
            )
        fps = float(stream.average_rate or stream.guessed_rate or 0) or None
        try:
            first = next(container.decode(stream), None)
            if first is None:
                raise MediaRejected(422, "video has no frames that can be decoded")
            # Seek near the end and decode: a cut-off file fails here, not in a worker later.
            time_base = stream.time_base or Fraction(1, 1_000_000)
            container.seek(int(max(0.0, duration - 0.5) / time_base), stream=stream)
            last = None
            for frame in container.decode(stream):
                last = frame
        except av.error.FFmpegError:
            logger.info("video decoder failed", exc_info=True)  # FFmpeg's words: the log only
            raise MediaRejected(422, DAMAGED_VIDEO) from None
        if last is None:
            raise MediaRejected(422, "video is damaged or truncated: its end cannot be decoded")
        width, height = displayed_size(first.width, first.height, display_matrix(first, stream))
        return MediaInfo("video", content_type, width, height, duration, fps, codec)


def _video_type(demuxer: str, path: str) -> str:
    names = set(demuxer.split(","))
    if "matroska" in names:
        return "video/webm" if _ebml_doctype(path) == "webm" else "video/x-matroska"
    if "avi" in names:
        return "video/x-msvideo"
    return "video/mp4"  # MP4 and MOV (browsers play H.264 MOV served as MP4)


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _sniff(path: str) -> str | None:
    """'image' or 'video' for ISO media (by major brand), Matroska/WebM and AVI, by their
    first bytes; None for anything else."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in IMAGE_BRANDS else "video"
    if head[:4] == EBML_MAGIC or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    return None


def _ebml_doctype(path: str) -> str:
    """The DocType of a Matroska file's EBML header: 'webm' or 'matroska'."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    if head[:4] != EBML_MAGIC:
        return ""
    size, position = _vint(head, 4)
    end = min(len(head), position + size)
    while position < end:
        length = _vint_length(head[position])
        element = head[position : position + length]
        size, position = _vint(head, position + length)
        if element == b"\x42\x82":  # DocType
            return head[position : position + size].split(b"\0", 1)[0].decode("ascii", "replace")
        position += size
    return ""


def _vint_length(first: int) -> int:
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 9  # invalid: ends the scan


def _vint(data: bytes, position: int) -> tuple[int, int]:
    """An EBML variable-size integer at ``position``: (value, position after it)."""
    if position >= len(data):
        return 0, len(data) + 1
    length = _vint_length(data[position])
    value = data[position] & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    return value, position + length
