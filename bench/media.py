"""Media: constant-memory upload and download, and Qwen-style video frame sampling speed.

    make bench     (or: python -m playground.devservers exec -- python bench/media.py)

(1) Uploads a 200 MB video through the real HTTP path (multipart → temporary
file → content check → PostgreSQL chunks), after a small warm-up upload, and
prints MB/s and the web process's peak RSS growth (target: under 64 MB). (2) Downloads it with 5
concurrent whole-file readers and 5 concurrent Range readers (each walks the
whole file in 8 MiB ranges, from its own starting point, as a seeking player
does), every byte checked against the file, and prints the aggregate MB/s and
the web process's peak RSS growth against the target (under 64 MB), as a
ratio. (3) Samples a 60 s 1280×720 30 fps H.264 clip at 2 fps with
engines.qwen35.video and, in the same run, with qwen-vl-utils' fetch_video
(decord backend) on the same clip: seconds for each, speed over real time, the
ratio, and whether the frame indices agree (targets: ≥ 20× real time, no
slower than qwen-vl-utils).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _stack import ROOT, bench_stack

BENCH_DIR = ROOT / ".data" / "bench"
RSS_TARGET_MB = 64
RANGE_STEP = 8 * 1024 * 1024


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


def _warm_up_clip(path: Path) -> Path:
    from tests.media.files import video_file

    return path if path.exists() else video_file(path, seconds=1, fps=10, size=(1280, 720))


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


class _PeakRss:
    """Samples a process's RSS every 20 ms while in the ``with`` block."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.baseline = _settled_rss(process)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1e6


def _web_process(url: str) -> Any:
    import psutil

    port = url.rsplit(":", 1)[1]
    return next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "playground.asgi:application" in (p.info["cmdline"] or [])
        and port in (p.info["cmdline"] or [])
    )


def _session(user: Any) -> Any:
    import requests

    from tests.helpers import session_cookie

    session = requests.Session()
    session.cookies.set("sessionid", session_cookie(user))
    session.cookies.set("csrftoken", "k" * 32)
    return session


def bench_upload(url: str, megabytes: int) -> tuple[bool, dict[str, Any] | None, Path]:
    from django.contrib.auth.models import User

    video = _noise_video(BENCH_DIR / f"noise-{megabytes}mb.mp4", megabytes)
    size_mb = video.stat().st_size / 1e6
    server = _web_process(url)
    # The server loads the served models' tokenizers in the background at start (for the
    # context check); measure the upload against a settled process, not that warm-up.
    user = User.objects.get_or_create(username="bench-upload")[0]
    session = _session(user)
    # A small video first: the first upload of a process pays once for lazy set-up (FFmpeg's
    # decoders, Pillow's plugins, the upload path's imports, a database connection); the
    # measure is what an upload costs a running server.
    small = _warm_up_clip(BENCH_DIR / "warm-up.mp4")
    warm = session.post(
        url + "/media/",
        files={"file": (small.name, small.read_bytes())},
        headers={"X-CSRFToken": "k" * 32},
        timeout=60,
    )
    assert warm.status_code == 201, warm.text
    body = _Multipart(video, "benchboundary")
    with _PeakRss(server) as rss:
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
    print(f"\n== upload of a {size_mb:.0f} MB video (HTTP → content check → PostgreSQL) ==")
    print(
        f"status {response.status_code}; {size_mb / elapsed:.1f} MB/s ({elapsed:.1f} s); "
        f"web process peak RSS growth {rss.growth_mb:.1f} MB (target < {RSS_TARGET_MB} MB)"
    )
    ok = response.status_code == 201 and rss.growth_mb < RSS_TARGET_MB
    return ok, (response.json() if response.status_code == 201 else None), video


def bench_downloads(url: str, attachment: dict[str, Any], video: Path, readers: int = 5) -> bool:
    """``readers`` whole-file readers and ``readers`` Range readers at once, every byte checked."""
    from django.contrib.auth.models import User

    user = User.objects.get(username="bench-upload")
    size = video.stat().st_size
    target = url + attachment["url"]
    server = _web_process(url)

    def whole(_: int) -> int:
        digest = hashlib.sha256()
        with _session(user).get(target, stream=True, timeout=600) as response:
            assert response.status_code == 200, response.status_code
            for block in response.iter_content(1024 * 1024):
                digest.update(block)
        assert digest.hexdigest() == attachment["sha256"], "a whole download differs"
        return size

    def ranges(index: int) -> int:
        session, done = _session(user), 0
        first = index * size // readers // RANGE_STEP * RANGE_STEP
        starts = list(range(first, size, RANGE_STEP)) + list(range(0, first, RANGE_STEP))
        with open(video, "rb") as local:
            for start in starts:
                end = min(start + RANGE_STEP, size) - 1
                response = session.get(
                    target, headers={"Range": f"bytes={start}-{end}"}, timeout=600
                )
                assert response.status_code == 206, response.status_code
                assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
                local.seek(start)
                assert response.content == local.read(end - start + 1), "a range differs"
                done += end - start + 1
        return done

    with _PeakRss(server) as rss, ThreadPoolExecutor(2 * readers) as pool:
        started = time.perf_counter()
        jobs = [pool.submit(whole, i) for i in range(readers)]
        jobs += [pool.submit(ranges, i) for i in range(readers)]
        moved = sum(job.result() for job in jobs)
        elapsed = time.perf_counter() - started
    ratio = rss.growth_mb / RSS_TARGET_MB
    print(
        f"\n== {readers} whole + {readers} Range downloads at once of a {size / 1e6:.0f} MB video =="
    )
    print(
        f"{moved / 1e6:.0f} MB served in {elapsed:.1f} s = {moved / 1e6 / elapsed:.0f} MB/s, "
        f"all bytes checked; web process RSS {rss.baseline / 1e6:.0f} MB before, "
        f"peak growth {rss.growth_mb:.1f} MB = {ratio:.2f} of the target (< {RSS_TARGET_MB} MB)"
    )
    return ratio < 1


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
    parser.add_argument("--readers", type=int, default=5, help="of each kind (whole, Range)")
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    ok = True if args.skip_sampling else bench_sampling()
    with bench_stack((), fake_rate=100.0) as (url, _pool):
        uploaded, attachment, video = bench_upload(url, args.megabytes)
        ok &= uploaded
        ok &= attachment is not None and bench_downloads(url, attachment, video, args.readers)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")


if __name__ == "__main__":
    main()
