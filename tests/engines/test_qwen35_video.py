"""Frame sampling as Qwen 3.5's video processor expects, on real encoded clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.qwen35.video import frame_size, sample_count, sample_indices, sample_video
from tests.media.files import encode_video


@pytest.mark.parametrize(
    "seconds, fps, expected",
    [
        (1.0, 30, 4),  # 2 frames wanted, raised to the minimum of 4
        (3.0, 25, 6),
        (7.5, 10, 14),  # 15 wanted, rounded down to an even count
        (10.0, 30, 20),
        (60.0, 30, 120),
        (500.0, 30, 768),  # capped
    ],
)
def test_sample_count_is_two_per_second_clamped_and_even(seconds, fps, expected) -> None:  # type: ignore[no-untyped-def]
    assert sample_count(int(seconds * fps), fps) == expected


def test_indices_span_the_clip_evenly() -> None:
    indices = sample_indices(300, 30.0)  # 10 s → 20 frames
    assert len(indices) == 20 and indices[0] == 0 and indices[-1] == 299
    gaps = np.diff(indices)
    assert gaps.min() >= 15 and gaps.max() <= 16


def test_frame_size_keeps_aspect_in_multiples_of_32_within_budget() -> None:
    height, width = frame_size(720, 1280, 120)
    assert height % 32 == 0 and width % 32 == 0
    assert height * width <= 768 * 32 * 32
    assert abs(width / height - 1280 / 720) < 0.1
    small_h, small_w = frame_size(48, 64, 4)  # a tiny clip is scaled up to the minimum
    assert small_h * small_w >= 128 * 32 * 32 and small_h % 32 == 0 and small_w % 32 == 0


def _grey_ramp(
    path: Path, seconds: float, fps: int, size=(96, 64), codec="libx264", container="mp4"
) -> Path:  # type: ignore[no-untyped-def]
    """Each frame is flat grey at level 2*i (mod 250): the decoded level tells which frame it is."""
    width, height = size
    frames = (
        np.full((height, width, 3), (2 * i) % 250, np.uint8) for i in range(int(seconds * fps))
    )
    options = {"g": "50", "crf": "10"} if codec == "libx264" else {}
    return encode_video(path, frames, fps=fps, container=container, codec=codec, options=options)


@pytest.mark.parametrize(
    "seconds, fps, codec, container",
    [(4.0, 25, "libx264", "mp4"), (3.0, 30, "libvpx-vp9", "webm"), (20.0, 10, "libx264", "mp4")],
)
def test_sampled_frames_are_the_right_frames(
    tmp_path: Path, seconds, fps, codec, container
) -> None:  # type: ignore[no-untyped-def]
    clip = _grey_ramp(
        tmp_path / f"ramp.{container}", seconds, fps, codec=codec, container=container
    )
    sampled = sample_video(str(clip))
    total = int(seconds * fps)
    assert sampled.total_frames == total
    assert sampled.indices == sample_indices(total, fps)
    assert sampled.frames.shape[0] == len(sampled.indices)
    assert sampled.frames.shape[1] % 32 == 0 and sampled.frames.shape[2] % 32 == 0
    levels = sampled.frames.reshape(len(sampled.indices), -1).mean(axis=1)
    expected = np.array([(2 * i) % 250 for i in sampled.indices])
    assert np.abs(levels - expected).max() < 6, (levels.round(), expected)


def test_sparse_samples_in_a_long_clip_seek(tmp_path: Path) -> None:
    clip = _grey_ramp(
        tmp_path / "long.mp4", 120.0, 2, size=(64, 64)
    )  # 240 frames, keyframe every 50
    sampled = sample_video(str(clip), fps=0.05, min_frames=4)  # 6 frames over two minutes
    levels = sampled.frames.reshape(len(sampled.indices), -1).mean(axis=1)
    expected = np.array([(2 * i) % 250 for i in sampled.indices])
    assert np.abs(levels - expected).max() < 6
