""".dockerignore keeps a developer's machine out of the images: the build context is listed by
the matcher docker-compose itself builds with (docker-py's ``exclude_paths``, in the Python
that runs Debian's docker-compose; no Docker daemon needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What docker-py's APIClient.build does with a context folder (docker/api/build.py).
LIST_CONTEXT = """
import json, os, sys
from docker.utils.build import exclude_paths
root = sys.argv[1]
with open(os.path.join(root, ".dockerignore")) as f:
    patterns = [l.strip() for l in f.read().splitlines()]
patterns = [p for p in patterns if p and p[0] != "#"]
print(json.dumps(sorted(exclude_paths(root, patterns, dockerfile="Dockerfile"))))
"""


def _context(root: Path) -> set[str]:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is not installed: `make test` installs Debian's")
    interpreter = Path(compose).read_text(errors="replace").splitlines()[0].removeprefix("#!")
    result = subprocess.run(
        [*interpreter.split(), "-c", LIST_CONTEXT, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


KEPT = [
    "Dockerfile",
    "pyproject.toml",
    "README.md",  # the GPU worker image copies it
    "manage.py",
    "playground/settings/base.py",
    "inference/worker.py",
    "engines/__init__.py",
    "frontend/package.json",
    "frontend/templates/base.html",
    "frontend/static/favicon.svg",
    "docker/Caddyfile",
    "docker/worker-trtllm.requirements.txt",
]
LEFT_OUT = [
    ".data/pg/base/1/1259",  # the embedded database: users, password hashes, chats
    ".data/redis.rdb",
    ".data/models/qwen3.5-tiny-moe-vl/model.safetensors",
    ".venv/bin/python",
    ".git/HEAD",
    ".ci/run",
    ".env",
    ".env.production",
    "frontend/node_modules/chart.js/dist/chart.umd.js",
    "playground/__pycache__/asgi.cpython-311.pyc",
    "inference/__pycache__/worker.cpython-311.pyc",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/x.json",
    ".ruff_cache/0.17.5/x",
    "qwen35_playground.egg-info/PKG-INFO",
    "tests/conftest.py",
    "bench/media.py",
    "server.log",
]


def test_the_build_context_leaves_out_data_environments_and_caches(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    for name in KEPT + LEFT_OUT:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    context = _context(tmp_path)
    assert set(KEPT) <= context
    assert not set(LEFT_OUT) & context
    for folder in (".data", ".venv", ".git", "frontend/node_modules", "tests"):
        assert not any(p == folder or p.startswith(folder + "/") for p in context), folder


def test_the_real_context_is_only_the_projects_sources() -> None:
    context = _context(ROOT)
    assert {"Dockerfile", "pyproject.toml", "playground/asgi.py", "docker/Caddyfile"} <= context
    for path in context:
        first = path.split("/")[0]
        assert first not in {".data", ".venv", ".git", ".pytest_cache", "tests"}, path
        assert "__pycache__" not in path and "node_modules" not in path, path
