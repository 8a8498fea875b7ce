"""bench/load.py's smoke run: 20 chat sockets for 20 s, then every stored reply checked.

The bench brings up its own server and workers; here they get a private Redis and a
database of their own, so the run never touches the suite's stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.faults.servers import PrivateRedis

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_load_bench_smoke_run_streams_and_checks_every_stored_reply(tmp_path: Path) -> None:
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    database = settings.DATABASES["default"]["NAME"].removeprefix("test_") + "_load_smoke"
    env = {**os.environ, "REDIS_URL": redis_server.url, "PLAYGROUND_BENCH_DATABASE": database}
    command = [sys.executable, "bench/load.py", "--duration", "20", "--streams", "20"]
    try:
        result = subprocess.run(
            [*command, "--sample", "5"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
        )
    finally:
        redis_server.stop()
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    assert "load: OK" in out
    assert "20 chat sockets for 20 s" in out
    # Samples every 5 s: delivered rate, errors so far, the three processes' memory and CPU.
    samples = re.findall(
        r"^\s*\d+ s\s+\d+ tokens/s\s+\d+ replies/min\s+0 errors \| client\s+[\d.]+ MB\s+\d+%"
        r" \| web\s+[\d.]+ MB\s+\d+% \| model worker\s+[\d.]+ MB\s+\d+%"
        r" \| app worker\s+[\d.]+ MB\s+\d+% \| load average [\d.]+$",
        out,
        re.M,
    )
    assert len(samples) >= 3, out
    delivered = re.search(r"delivered: (\d+) tokens/s, (\d+) replies/min \((\d+) replies", out)
    assert delivered is not None, out
    tokens_per_s, replies = int(delivered[1]), int(delivered[3])
    assert tokens_per_s > 0 and replies >= 20  # each stream finished at least one reply
    assert "errors: 0" in out
    assert f"stored replies equal to what was streamed: {replies} of {replies} " in out
    assert "(mismatches 0, unfinished 0)" in out
