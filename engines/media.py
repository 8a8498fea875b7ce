"""What images and videos the system reads, and how a file becomes what a model sees.

Plain Python (no Django): the web side checks uploads and makes thumbnails with
the same code that prepares a model's input, so a phone photo's reported size,
its thumbnail and the model's picture agree.

Images open only through the Pillow plugins of the allowed formats
(``Image.open(formats=...)``): a file in any other format is never parsed by
another plugin. Videos open only through the allowed demuxers
(``format_whitelist``), and the stream probe decodes only allowed codecs
(``codec_whitelist``).

"Upright" means as a person sees it: EXIF orientation for photos (phones store
portrait photos sideways with an orientation tag), the display matrix (or a
legacy ``rotate`` tag) for videos (phones record portrait video sideways with a
rotation in the container).
"""

from __future__ import annotations

import struct
from typing import Any

import av  # FFmpeg's libraries load here, once, not during somebody's first upload
import numpy as np
from PIL import Image, ImageOps

try:  # HEIC/HEIF photos (iPhones). Installed wherever pyproject's pins are.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a worker image without pillow-heif
    pass

# Pillow's format name → the content type the file is stored and served as. MPO (the
# multi-picture JPEG many phones and stereo cameras write) is a JPEG: its first picture is
# an ordinary JPEG image, and the JPEG plugin is the one that opens it.
IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/vnd.microsoft.icon",
}
Image.init()  # registers every plugin (none is used unless named below)
IMAGE_OPENERS = tuple(
    name
    for name in ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "BMP", "TIFF", "ICO")
    if name in Image.OPEN
)
IMAGE_NAMES = "JPEG (and MPO), PNG, WebP, GIF, HEIC, AVIF, BMP, TIFF or ICO"

# FFmpeg demuxers allowed to open a video (the "mov" demuxer reads MP4 and MOV, the
# "matroska" one MKV and WebM).
VIDEO_DEMUXERS = ("mov", "mp4", "matroska", "webm", "avi")
# Video codecs by FFmpeg's codec (descriptor) name, and the decoders that read them.
VIDEO_CODECS = {
    "h264": "H.264",
    "hevc": "HEVC",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "mpeg4": "MPEG-4 Part 2",
}
VIDEO_DECODERS = ("h264", "hevc", "vp8", "vp9", "libvpx", "libvpx-vp9", "av1", "libdav1d", "mpeg4")
VIDEO_NAMES = "MP4, MOV, WebM, MKV or AVI"
CODEC_NAMES = ", ".join(list(VIDEO_CODECS.values())[:-1]) + " or " + list(VIDEO_CODECS.values())[-1]

EXIF_ORIENTATION = 0x0112

# A display matrix reduced to its 2×2 part as signs (a, b, c, d): a decoded pixel (p, q)
# is shown at (a·p + c·q, b·p + d·q), as in FFmpeg's libavutil/display.h.
Matrix = tuple[int, int, int, int]
IDENTITY: Matrix = (1, 0, 0, 1)


# ---- images ---------------------------------------------------------------------------


def open_image(path: str) -> Image.Image:
    """Open (headers only) with the allowed formats' plugins; raises UnidentifiedImageError."""
    return Image.open(path, formats=IMAGE_OPENERS)


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as shown, for an image already loaded (TIFF applies its own tag on load)."""
    width, height = image.size
    if image.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
        return height, width
    return width, height


def to_rgb(image: Image.Image) -> Image.Image:
    """The current frame as 8-bit RGB: transparency over white, 16-bit and float scaled."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = float(pixels.max()) if pixels.size else 0.0
        if image.mode == "F" and top <= 1.0:
            pixels = pixels * 255.0
        elif top > 255.0:
            pixels = pixels / 257.0  # 16-bit samples
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def upright_rgb(image: Image.Image) -> Image.Image:
    """An opened image's first frame, upright (EXIF orientation applied) and RGB."""
    image.seek(0)
    image.load()
    transposed = ImageOps.exif_transpose(image)
    return to_rgb(transposed if transposed is not None else image)


def load_image(path: str) -> Image.Image:
    """What a model (or a thumbnail) is given for an image file: upright 8-bit RGB."""
    with open_image(path) as image:
        return upright_rgb(image)


# ---- video ----------------------------------------------------------------------------


def open_video(path: str) -> Any:
    """An input container, opened only by the allowed demuxers (and probed only with the
    allowed decoders). Raises av.error.FFmpegError for anything else."""
    return av.open(
        path,
        metadata_errors="replace",  # a damaged title is not a reason to fail
        options={
            "format_whitelist": ",".join(VIDEO_DEMUXERS),
            "codec_whitelist": ",".join(VIDEO_DECODERS),
            "protocol_whitelist": "file",
        },
    )


def codec_name(stream: Any) -> str:
    """The stream's codec (``av1``, not the decoder ``libdav1d``); "" if none can decode it."""
    if stream.codec_context is None:
        return ""
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)


def display_matrix(frame: Any, stream: Any = None) -> Matrix:
    """How a decoded frame is turned to be shown: the frame's display-matrix side data
    (FFmpeg attaches the container's to every frame), else a legacy ``rotate`` tag
    (degrees clockwise) on the stream, else none."""
    for side_data in getattr(frame, "side_data", ()) or ():
        if getattr(side_data.type, "name", "") == "DISPLAYMATRIX":
            raw = bytes(side_data)
            if len(raw) >= 36:
                values = struct.unpack("<9i", raw[:36])
                signs = tuple(_sign(values[i] / 65536) for i in (0, 1, 3, 4))
                a, b, c, d = signs
                if (a and d and not b and not c) or (b and c and not a and not d):
                    return a, b, c, d
            return IDENTITY  # not a quarter turn or flip: shown as decoded
    rotate = (getattr(stream, "metadata", None) or {}).get("rotate")
    if rotate is not None:
        try:
            degrees = int(float(rotate)) % 360
        except ValueError:
            return IDENTITY
        # Clockwise rotations as display matrices (a, b, c, d).
        return {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}.get(degrees, IDENTITY)
    return IDENTITY


def _sign(value: float) -> int:
    return 0 if abs(value) < 0.5 else (1 if value > 0 else -1)


def swaps_axes(matrix: Matrix) -> bool:
    return matrix[0] == 0


def displayed_size(width: int, height: int, matrix: Matrix) -> tuple[int, int]:
    """(width, height) as shown."""
    return (height, width) if swaps_axes(matrix) else (width, height)


def upright_array(pixels: np.ndarray, matrix: Matrix) -> np.ndarray:
    """A decoded frame ([height, width, channels]) as shown."""
    a, b, c, d = matrix
    if swaps_axes(matrix):
        shown = pixels.transpose(1, 0, 2)
        if b < 0:
            shown = shown[::-1]
        if c < 0:
            shown = shown[:, ::-1]
    else:
        shown = pixels
        if a < 0:
            shown = shown[:, ::-1]
        if d < 0:
            shown = shown[::-1]
    return np.ascontiguousarray(shown)


def upright_frame(frame: Any, stream: Any = None) -> Image.Image:
    """A decoded video frame as an upright RGB image."""
    pixels = frame.to_ndarray(format="rgb24")
    return Image.fromarray(upright_array(pixels, display_matrix(frame, stream)), "RGB")
