"""Video frames the way Qwen 3.5's video processor expects them.

Frames are sampled at 2 per second by default, at least 4 and at most 768,
always an even number (frames enter the vision encoder in pairs,
``temporal_patch_size`` = 2), spread evenly over the clip. Each frame is
resized to multiples of 32 (patch 16 × spatial merge 2) within a pixel
budget. Decoding runs through the file once with frame-threaded decoding and
converts only the frames that are kept; with sparse samples in a long clip it
seeks instead of decoding what lies between. Frames come out upright: a phone's
portrait video (stored sideways with a display rotation) is turned as a player would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.media import (
    IDENTITY,
    Matrix,
    display_matrix,
    displayed_size,
    open_video,
    swaps_axes,
    upright_array,
)

FRAME_FACTOR = 2
DEFAULT_FPS = 2.0
MIN_FRAMES = 4
MAX_FRAMES = 768
SEEK_GAP_S = 4.0  # further apart than this (in the clip), seek rather than decode through


def sample_count(
    total_frames: int,
    video_fps: float,
    fps: float = DEFAULT_FPS,
    min_frames: int = MIN_FRAMES,
    max_frames: int = MAX_FRAMES,
) -> int:
    """How many frames to sample: ``fps`` per second, clamped, even, at most the clip's."""
    low = math.ceil(min_frames / FRAME_FACTOR) * FRAME_FACTOR
    high = math.floor(min(max_frames, total_frames) / FRAME_FACTOR) * FRAME_FACTOR
    wanted = total_frames / video_fps * fps
    count = min(max(wanted, low), high, total_frames)
    count = math.floor(count / FRAME_FACTOR) * FRAME_FACTOR
    if count < FRAME_FACTOR:
        raise ValueError(f"a clip of {total_frames} frames is too short to sample")
    return int(count)


def sample_indices(total_frames: int, video_fps: float, **limits: Any) -> list[int]:
    """Frame indices to keep, evenly spread from the first frame to the last."""
    count = sample_count(total_frames, video_fps, **limits)
    return [int(i) for i in np.linspace(0, total_frames - 1, count).round()]


def frame_size(
    height: int,
    width: int,
    count: int,
    *,
    factor: int = 32,
    min_pixels: int = 128 * 32 * 32,
    max_pixels: int = 768 * 32 * 32,
    total_pixels: int | None = None,
) -> tuple[int, int]:
    """Resized (height, width): multiples of ``factor``, aspect kept, within the pixel budget.

    ``total_pixels`` (the video processor's ``longest_edge``) caps the whole
    clip: each pair of frames gets its share.
    """
    if total_pixels is not None:
        max_pixels = max(
            min(max_pixels, total_pixels * FRAME_FACTOR // count), int(min_pixels * 1.05)
        )
    new_h = max(factor, round(height / factor) * factor)
    new_w = max(factor, round(width / factor) * factor)
    if new_h * new_w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        new_h = max(factor, math.floor(height / scale / factor) * factor)
        new_w = max(factor, math.floor(width / scale / factor) * factor)
    elif new_h * new_w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        new_h = math.ceil(height * scale / factor) * factor
        new_w = math.ceil(width * scale / factor) * factor
    return new_h, new_w


@dataclass
class SampledVideo:
    frames: np.ndarray  # [count, height, width, 3] uint8 RGB
    indices: list[int]
    video_fps: float
    total_frames: int
    sample_fps: float


def sample_video(
    path: str,
    fps: float = DEFAULT_FPS,
    *,
    size: tuple[int, int] | None = None,
    total_pixels: int | None = None,
    **limits: Any,
) -> SampledVideo:
    """Decode the sampled frames of ``path``, upright (the container's display rotation
    applied), resized per ``frame_size`` unless ``size`` (height, width, as shown) is given."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: both cores decode
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise ValueError(f"{path} has no frame rate")
        video_fps = float(rate)
        if stream.frames:
            total = stream.frames
        elif stream.duration is not None and stream.time_base is not None:
            total = round(float(stream.duration * stream.time_base) * video_fps)
        else:  # WebM keeps the duration on the container only
            total = round((container.duration or 0) / 1_000_000 * video_fps)
        indices = sample_indices(total, video_fps, fps=fps, **limits)
        kept = _KeptFrames(stream, len(indices), size, total_pixels)
        filled = _decode(container, stream, indices, kept)
        frames = kept.array()
        if filled < len(indices):  # a short last GOP or a lying frame count: repeat the last frame
            frames[filled:] = frames[filled - 1] if filled else 0
    return SampledVideo(frames, indices, video_fps, total, len(indices) / total * video_fps)


class _KeptFrames:
    """The sampled frames, upright and at one size. The first decoded frame fixes the
    display matrix (FFmpeg attaches the container's to every frame), hence the size."""

    def __init__(
        self, stream: Any, count: int, size: tuple[int, int] | None, total_pixels: int | None
    ) -> None:
        self.stream, self.count, self.size, self.total_pixels = stream, count, size, total_pixels
        self.coded = (stream.codec_context.height, stream.codec_context.width)
        self.frames: np.ndarray | None = None
        self.matrix = IDENTITY
        self.scaled = (0, 0)  # (width, height) to scale a decoded frame to, before turning it
        self.interpolation = "AREA"

    def _setup(self, matrix: Matrix) -> np.ndarray:
        self.matrix = matrix
        coded_h, coded_w = self.coded
        shown_w, shown_h = displayed_size(coded_w, coded_h, matrix)
        height, width = self.size or frame_size(
            shown_h, shown_w, self.count, total_pixels=self.total_pixels
        )
        self.scaled = (height, width) if swaps_axes(matrix) else (width, height)
        # Area averaging when shrinking (antialiased, and cheap), bicubic when enlarging.
        self.interpolation = "AREA" if height * width <= coded_h * coded_w else "BICUBIC"
        self.frames = np.zeros((self.count, height, width, 3), dtype=np.uint8)
        return self.frames

    def put(self, slot: int, frame: Any) -> None:
        frames = self.frames
        if frames is None:
            frames = self._setup(display_matrix(frame, self.stream))
        width, height = self.scaled
        pixels = frame.reformat(
            width=width, height=height, format="rgb24", interpolation=self.interpolation
        ).to_ndarray()
        frames[slot] = upright_array(pixels, self.matrix)

    def array(self) -> np.ndarray:
        return self.frames if self.frames is not None else self._setup(IDENTITY)


def _decode(
    container: Any,
    stream: Any,
    indices: list[int],
    kept: _KeptFrames,
) -> int:
    video_fps = float(stream.average_rate or stream.guessed_rate)
    wanted = {index: slot for slot, index in enumerate(indices)}
    start_pts = stream.start_time or 0
    filled = 0
    target = 0  # position in `indices` of the next frame to keep
    seek_gap = SEEK_GAP_S * video_fps
    while target < len(indices):
        if target and indices[target] - indices[target - 1] > seek_gap:
            seconds = indices[target] / video_fps
            container.seek(
                start_pts + int(seconds / stream.time_base), stream=stream, backward=True
            )
        for frame in container.decode(stream):
            number = (
                round((frame.pts - start_pts) * stream.time_base * video_fps)
                if frame.pts is not None
                else None
            )
            if number is None or number < indices[target]:
                continue
            while target < len(indices) and indices[target] <= number:
                kept.put(wanted[indices[target]], frame)
                filled += 1
                target += 1
            if target >= len(indices) or indices[target] - number > seek_gap:
                break
        else:
            break  # end of stream
    return filled
