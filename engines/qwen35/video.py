"""Video frames the way Qwen 3.5's video processor expects them.

Frames are sampled at 2 per second by default, at least 4 and at most 768,
always an even number (frames enter the vision encoder in pairs,
``temporal_patch_size`` = 2), spread evenly over the clip. Each frame is
resized to multiples of 32 (patch 16 × spatial merge 2) within a pixel
budget. Decoding runs through the file once with frame-threaded decoding and
converts only the frames that are kept; with sparse samples in a long clip it
seeks instead of decoding what lies between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    """Decode the sampled frames of ``path`` (resized per ``frame_size`` unless ``size`` is given)."""
    import av

    with av.open(path) as container:
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
        height, width = size or frame_size(
            stream.codec_context.height,
            stream.codec_context.width,
            len(indices),
            total_pixels=total_pixels,
        )
        wanted = {index: slot for slot, index in enumerate(indices)}
        frames = np.zeros((len(indices), height, width, 3), dtype=np.uint8)
        filled = _decode(container, stream, indices, wanted, frames, video_fps)
        if filled < len(indices):  # a short last GOP or a lying frame count: repeat the last frame
            frames[filled:] = frames[filled - 1] if filled else 0
    return SampledVideo(frames, indices, video_fps, total, len(indices) / total * video_fps)


def _decode(
    container: Any,
    stream: Any,
    indices: list[int],
    wanted: dict[int, int],
    frames: np.ndarray,
    video_fps: float,
) -> int:
    height, width = frames.shape[1:3]
    # Area averaging when shrinking (antialiased, and cheap), bicubic when enlarging.
    shrinking = height * width <= stream.codec_context.height * stream.codec_context.width
    interpolation = "AREA" if shrinking else "BICUBIC"
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
                frames[wanted[indices[target]]] = frame.reformat(
                    width=width, height=height, format="rgb24", interpolation=interpolation
                ).to_ndarray()
                filled += 1
                target += 1
            if target >= len(indices) or indices[target] - number > seek_gap:
                break
        else:
            break  # end of stream
    return filled
