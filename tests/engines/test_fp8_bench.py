"""The FP8 benchmarks and the GPU check script still run (tiny shapes, on this machine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def test_the_kernel_benchmark_runs_and_checks_itself() -> None:
    result = _run(sys.executable, "bench/fp8_moe.py", "--smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("smoke ")]
    assert len(rows) == 2  # 1 and 16 tokens
    assert all(float(re.search(r"cos (\S+)", row)[1]) >= 0.99 for row in rows)  # type: ignore[index]
    assert "targets met" in result.stdout


def test_the_quantiser_benchmark_reports_peak_memory_against_the_largest_shard() -> None:
    result = _run(sys.executable, "bench/fp8_quantize.py", "--layers", "4", "--experts", "32")
    assert result.returncode == 0, result.stderr
    assert "source: 4 shards" in result.stdout
    figures = dict(re.findall(r"growth / (largest shard|whole model): (\S+)", result.stdout))
    # Shard by shard: a few shards' worth at most (mapped source, output, writer's buffer),
    # and less than the whole model even with only four shards.
    assert 0 < float(figures["largest shard"]) < 4, result.stdout
    assert float(figures["whole model"]) < 1, result.stdout


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="with a GPU the script runs for real"
)
def test_the_gpu_check_refuses_clearly_without_a_gpu() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = _run("bash", "bench/gpu_check.sh", env=env)
    assert result.returncode == 2
    assert "no CUDA device" in result.stdout + result.stderr
