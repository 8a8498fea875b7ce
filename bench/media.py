"""Media: constant-memory upload into PostgreSQL, and Qwen-style video frame sampling speed.

    make bench     (or: python -m playground.devservers exec -- python bench/media.py)

(1) Uploads a 200 MB video through the real HTTP path (multipart → temporary
file → content check → PostgreSQL chunks) and prints MB/s and the web
process's peak RSS growth (target: under 64 MB). (2) Samples a 60 s
1280×720 30 fps H.264 clip at 2 fps with engines.qwen35.video and, in the
same run, with qwen-vl-utils' fetch_video (decord backend) on the same clip:
seconds for each, speed over real time, the ratio, and whether the frame
indices agree (targets: ≥ 20× real time, no slower than qwen-vl-utils).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from _stack import ROOT, bench_stack

BENCH_DIR = ROOT / ".data" / "bench"


def _noise_video(path: Path, megabytes: int) -> Path:
    """Lossless H.264 of random noise: about 2.8 MB per 1280×720 frame."""
    import numpy as np

    from tests.media.files import encode_video

    if path.exists() and path.stat().st_size >= megabytes * 1_000_000:
        return path
    rng = np.random.default_rng(0)
    count = megabytes * 1_000_000 // (1280 * 720 * 3) + 2
    frames = (rng.integers(0, 256, (720, 1280, 3), np.uint8) for _ in range(count))
    options = {"qp": "0", "preset": "ultrafast"}
    return encode_video(path, frames, fps=30, pix_fmt="yuv444p", options=options)


def _clip_60s(path: Path) -> Path:
    """A moving gradient, 60 s of 1280×720 at 30 fps, ordinary H.264 settings."""
    import numpy as np

    from tests.media.files import encode_video

    if path.exists():
        return path
    base = np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None].repeat(720, 0).repeat(3, 2)
    frames = (np.roll(base, i * 8, axis=1) for i in range(60 * 30))
    return encode_video(path, frames, fps=30, options={"preset": "veryfast", "crf": "23"})


class _Multipart:
    """A multipart body read from disk piece by piece, with a known length (no RAM copy)."""

    def __init__(self, path: Path, boundary: str) -> None:
        self.head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.file = open(path, "rb")  # noqa: SIM115 (closed by the caller)
        self.size = len(self.head) + path.stat().st_size + len(self.tail)
        self.stage = 0

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        if self.stage == 0:
            self.stage = 1
            return self.head
        if self.stage == 1:
            block = self.file.read(n if n > 0 else 1 << 20)
            if block:
                return block
            self.stage = 2
            return self.tail
        return b""


def _settled_rss(process, quiet_s: float = 3.0, limit_s: float = 120.0) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    last, since = process.memory_info().rss, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        rss = process.memory_info().rss
        if abs(rss - last) > 2_000_000:
            last, since = rss, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return rss
    return process.memory_info().rss


def bench_upload(url: str, megabytes: int) -> bool:
    import psutil
    import requests
    from django.contrib.auth.models import User

    from tests.helpers import session_cookie

    video = _noise_video(BENCH_DIR / f"noise-{megabytes}mb.mp4", megabytes)
    size_mb = video.stat().st_size / 1e6
    server = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "playground.asgi:application" in " ".join(p.info["cmdline"] or [])
        and str(url.rsplit(":", 1)[1]) in " ".join(p.info["cmdline"] or [])
    )
    # The server loads the served models' tokenizers in the background at start (for the
    # context check); measure the upload against a settled process, not that warm-up.
    baseline = _settled_rss(server)
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=sample)
    watcher.start()
    user = User.objects.get_or_create(username="bench-upload")[0]
    session = requests.Session()
    session.cookies.set("sessionid", session_cookie(user))
    session.cookies.set("csrftoken", "k" * 32)
    body = _Multipart(video, "benchboundary")
    started = time.perf_counter()
    response = session.post(
        url + "/media/",
        data=body,
        headers={
            "Content-Type": "multipart/form-data; boundary=benchboundary",
            "X-CSRFToken": "k" * 32,
        },
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    body.file.close()
    stop.set()
    watcher.join()
    growth = (peak - baseline) / 1e6
    print(f"\n== upload of a {size_mb:.0f} MB video (HTTP → content check → PostgreSQL) ==")
    print(
        f"status {response.status_code}; {size_mb / elapsed:.1f} MB/s ({elapsed:.1f} s); "
        f"web process peak RSS growth {growth:.1f} MB (target < 64 MB)"
    )
    return response.status_code == 201 and growth < 64


def bench_sampling() -> bool:
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
    from engines.qwen35.video import sample_video

    clip = _clip_60s(BENCH_DIR / "clip-60s-720p30.mp4")
    started = time.perf_counter()
    ours = sample_video(str(clip))
    ours_s = time.perf_counter() - started
    print("\n== frame sampling: 60 s 1280×720 30 fps H.264 at 2 fps ==")
    print(
        f"engines.qwen35.video: {len(ours.indices)} frames {ours.frames.shape[1]}×{ours.frames.shape[2]} "
        f"in {ours_s:.2f} s = {60 / ours_s:.0f}× real time"
    )
    try:
        from qwen_vl_utils.vision_process import fetch_video
    except ImportError:
        print("qwen-vl-utils is not installed: no comparison")
        return 60 / ours_s >= 20
    started = time.perf_counter()
    video, metadata = fetch_video(
        {"video": str(clip), "fps": 2.0}, image_patch_size=16, return_video_metadata=True
    )
    theirs_s = time.perf_counter() - started
    same = list(metadata["frames_indices"]) == ours.indices
    print(
        f"qwen-vl-utils fetch_video (decord): {video.shape[0]} frames {video.shape[2]}×{video.shape[3]} "
        f"in {theirs_s:.2f} s = {60 / theirs_s:.0f}× real time"
    )
    print(
        f"ours / qwen-vl-utils time ratio = {ours_s / theirs_s:.2f} (≤ 1 is faster); frame indices agree: {same}"
    )
    return 60 / ours_s >= 20 and ours_s <= theirs_s and same


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--skip-sampling", action="store_true")
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    ok = True if args.skip_sampling else bench_sampling()
    with bench_stack((), fake_rate=100.0) as (url, _pool):
        ok &= bench_upload(url, args.megabytes)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")


if __name__ == "__main__":
    main()
