"""docker-compose.yml validated by a compose CLI (Debian's docker-compose: `config` needs no
daemon), with and without the "gpu" profile: restart policies, health checks, the proxy in
front, the body limits the app and the proxy share, and `check --deploy` with the web
service's environment; the GPU worker image's pins."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GPU_WORKERS = {"worker-gpu-a", "worker-gpu-b"}
ONE_SHOT = {"migrate", "collectstatic"}
MODEL_WORKERS = {"worker-smollm2": "smollm2", "worker-qwen35-tiny": "qwen3.5-tiny"}
BODY_LIMITS = (
    "PLAYGROUND_MAX_UPLOAD_BODY_BYTES",
    "PLAYGROUND_API_MAX_BODY_BYTES",
    "PLAYGROUND_MAX_REQUEST_BODY_BYTES",
)


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
    assert {
        "postgres",
        "redis",
        "migrate",
        "collectstatic",
        "web",
        "proxy",
        "worker-smollm2",
        "worker-qwen35-tiny",
        "worker-app",
        "beat",
    } <= set(services)
    for name, service in services.items():
        # `up` without --profile gpu starts none of the GPU workers.
        assert ("profiles" in service) == (name in GPU_WORKERS), name
    assert all(services[name]["profiles"] == ["gpu"] for name in GPU_WORKERS)


def test_services_restart_and_every_worker_has_a_health_check() -> None:
    services = _config("--profile", "gpu")["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        else:
            assert service["restart"] == "unless-stopped", name
    for name, model in MODEL_WORKERS.items():
        worker = services[name]
        assert worker["command"] == ["python", "-m", "inference.worker", "--model", model]
        assert worker["healthcheck"]["test"] == [
            "CMD", "python", "-m", "inference.health", "--model", model,
        ]  # fmt: skip
        # Django-free: Redis and the data folder only.
        assert set(worker["environment"]) == {"REDIS_URL", "PLAYGROUND_DATA_DIR"}
    app_check = " ".join(services["worker-app"]["healthcheck"]["test"])
    assert "celery -A playground inspect ping" in app_check
    assert "healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "healthcheck" in services["proxy"]


def test_only_the_proxy_publishes_ports_and_it_serves_static_files() -> None:
    services = _config()["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["proxy"]
    proxy, web = services["proxy"], services["web"]
    assert {p["target"] for p in proxy["ports"]} == {80, 443}
    assert proxy["image"].startswith("caddy:")
    assert any(v.endswith(":/etc/caddy/Caddyfile:ro") for v in proxy["volumes"])
    assert proxy["environment"]["SITE_ADDRESS"] == ":80"  # TLS: a domain name here
    assert proxy["environment"]["WEB_UPSTREAM"] == "web:8000"
    assert proxy["depends_on"]["web"] == {"condition": "service_healthy"}
    assert proxy["depends_on"]["collectstatic"] == {"condition": "service_completed_successfully"}
    # collectstatic fills the volume the proxy serves /static/ from.
    static = services["collectstatic"]
    assert static["environment"]["DJANGO_STATIC_ROOT"] == "/static"
    assert "static:/static:rw" in static["volumes"]
    assert "static:/srv/static:ro" in proxy["volumes"]
    assert proxy["environment"]["STATIC_ROOT"] == "/srv/static"
    # Uvicorn takes the scheme and the client's address from the proxy's headers.
    command = web["command"]
    assert "--proxy-headers" in command
    assert command[command.index("--forwarded-allow-ips") + 1] == "*"


def test_the_proxy_and_the_app_share_the_body_limits() -> None:
    services = _config()["services"]
    proxy = services["proxy"]["environment"]
    # The numbers the app's settings enforce with the web service's environment...
    enforced = _settings(
        services["web"]["environment"],
        "UPLOAD_MAX_BODY_BYTES API_MAX_BODY_BYTES DATA_UPLOAD_MAX_MEMORY_SIZE",
    )
    # ... are the proxy's, and the Caddyfile's own defaults.
    assert enforced == [int(proxy[name]) for name in BODY_LIMITS]
    caddyfile = (ROOT / "docker" / "Caddyfile").read_text()
    for name in BODY_LIMITS:
        assert f"{{${name}:{proxy[name]}}}" in caddyfile, name
    # An operator's change reaches both.
    changed = _config(
        env={"PLAYGROUND_MAX_UPLOAD_BYTES": "1000", "PLAYGROUND_MAX_UPLOAD_BODY_BYTES": "2000"}
    )["services"]
    assert changed["proxy"]["environment"]["PLAYGROUND_MAX_UPLOAD_BODY_BYTES"] == "2000"
    for name in ("web", "worker-app", "collectstatic"):
        app = changed[name]["environment"]
        assert {k: app[k] for k in BODY_LIMITS} == {
            k: changed["proxy"]["environment"][k] for k in BODY_LIMITS
        }, name


def _container_env(environment: dict[str, Any]) -> dict[str, str]:
    """What a process in the container sees: the service's variables (unset ones, which
    compose passes on only when the shell has them, left out) on a bare PATH."""
    env = {k: str(v) for k, v in environment.items() if v is not None}
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}


def _settings(environment: dict[str, Any], names: str) -> list[Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, json; django.setup(); from django.conf import settings;"
            f" print(json.dumps([getattr(settings, n) for n in {names.split()!r}]))",
        ],
        cwd=ROOT,
        env=_container_env(environment),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    values: list[Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def test_check_deploy_passes_with_the_web_services_environment() -> None:
    """`manage.py check --deploy --fail-level WARNING` as the web container would run it,
    with compose's defaults (and a real secret key: compose refuses to start without one)."""
    key = secrets.token_urlsafe(50)
    web = _config(env={"DJANGO_SECRET_KEY": key})["services"]["web"]
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == "playground.settings.production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_container_env(web["environment"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # The hosts the proxy's health checks and the workers' media fetches use are allowed.
    hosts = _settings(web["environment"], "ALLOWED_HOSTS")[0]
    assert {"localhost", "127.0.0.1", "web"} <= set(hosts)


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    compose = shutil.which("docker-compose")
    assert compose is not None
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [compose, "config"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode != 0 and "set DJANGO_SECRET_KEY" in result.stderr


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
