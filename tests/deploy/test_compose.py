"""docker-compose.yml validated by a compose CLI (Debian's docker-compose: `config` needs no
daemon), with and without the "gpu" profile; the GPU worker image's pins."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GPU_WORKERS = {"worker-gpu-a", "worker-gpu-b"}


def _config(*profile: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is not installed: `make test` installs Debian's")
    result = subprocess.run(
        [compose, *profile, "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SECRET_KEY": "test-only", **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_the_default_stack_is_valid_and_leaves_gpu_workers_to_their_profile() -> None:
    services = _config()["services"]
    assert {"postgres", "redis", "web", "worker-smollm2", "worker-app", "beat"} <= set(services)
    for name, service in services.items():
        # `up` without --profile gpu starts none of the GPU workers.
        assert ("profiles" in service) == (name in GPU_WORKERS), name
    assert all(services[name]["profiles"] == ["gpu"] for name in GPU_WORKERS)


def test_the_gpu_profile_runs_tensorrt_llm_workers_without_django() -> None:
    config = _config("--profile", "gpu", env={"GPU_MODEL_A": "qwen3.5-397b-a17b-fp8"})
    services = config["services"]
    web = services["web"]
    assert web["environment"]["PLAYGROUND_ENGINE_DIR"] == "/engines"
    assert any(v.endswith(":/engines:ro") for v in web["volumes"])  # lists their models
    for name in GPU_WORKERS:
        worker = services[name]
        assert worker["build"]["dockerfile"] == "docker/worker-trtllm.Dockerfile"
        assert worker["build"]["args"]["TRTLLM_IMAGE"].startswith(
            "nvcr.io/nvidia/tensorrt-llm/release:"
        )
        assert worker["command"][:4] == ["python", "-m", "inference.worker", "--model"]
        # Only Redis and the engines: no database, no Django settings, no secret key.
        assert set(worker["environment"]) == {
            "REDIS_URL",
            "PLAYGROUND_DATA_DIR",
            "PLAYGROUND_ENGINE_DIR",
        }
        assert any(v.endswith(":/engines:rw") for v in worker["volumes"])
        device = worker["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        health = worker["healthcheck"]["test"]
        assert health[:4] == ["CMD", "python", "-m", "inference.health"]
        assert health[-1] == worker["command"][-1]  # checks the model it serves
        assert worker["restart"] == "unless-stopped"
    assert services["worker-gpu-a"]["command"][-1] == "qwen3.5-397b-a17b-fp8"


def test_the_worker_image_installs_no_django_and_the_same_pins() -> None:
    dockerfile = (ROOT / "docker" / "worker-trtllm.Dockerfile").read_text()
    assert "FROM ${TRTLLM_IMAGE}" in dockerfile
    assert "COPY playground" not in dockerfile and "pip install --no-deps ." in dockerfile
    pins = dict(
        re.findall(
            r"^([\w-]+)==(\S+)$",
            (ROOT / "docker" / "worker-trtllm.requirements.txt").read_text(),
            re.M,
        )
    )
    project = dict(
        re.findall(r'"([\w-]+)(?:\[\w+\])?==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    )
    assert pins and "django" not in {p.lower() for p in pins}
    for package, version in pins.items():
        assert project[package] == version, package
