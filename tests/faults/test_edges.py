"""Failure paths on the main test stack: bad numbers that bypass the edge, a socket that
asks for too much, a worker that must not need Django, a launcher that restarts the dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.jobs import GENERATE_TASK
from playground.chat.models import Message
from playground.devservers import Supervisor
from playground.generations.service import create_conversation
from tests.helpers import ROOT, ChatSocket, WorkerPool

pytestmark = pytest.mark.slow

# Blocks Django (and the web side) before anything else runs: the worker must not need it.
NO_DJANGO = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('django', 'playground', 'channels', 'psycopg'):\n"
    "            raise ImportError(f'{name} is blocked in a model worker')\n"
    "sys.meta_path.insert(0, Block())\n"
    "from inference.worker import main\n"
    "main(sys.argv[1:])\n"
)


def test_a_worker_runs_with_only_redis_and_its_catalogue_entry(
    stack, alice, service_env, redis_client, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in service_env.items() if k not in ("DATABASE_URL",)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    pool = WorkerPool(env, tmp_path, redis_client)
    pool.start(
        "fake-doomed",
        [sys.executable, "-c", NO_DJANGO, "--model", "fake-doomed", "--loglevel", "INFO"],
    )
    try:
        pool.wait_online(("fake-doomed",), timeout=60)
        conversation = create_conversation(alice, "fake-doomed")
        with ChatSocket(stack, alice) as ws:
            gid = ws.generate(conversation.id, "hello", params={"max_tokens": 7})["generation_id"]
            events = ws.events_until_done(gid)
        assert events[-1]["finish_reason"] == "length"
        reply = Message.objects.get(pk=gid)  # stored by the Django side from `done`
        assert (reply.status, reply.content) == ("done", "t0 t1 t2 t3 t4 t5 t6 ")
        assert reply.worker.startswith("fake-doomed@")
        assert "blocked" not in pool.logs("fake-doomed")
    finally:
        pool.stop()


def test_a_bad_job_that_bypasses_the_edge_fails_alone(stack, alice) -> None:  # type: ignore[no-untyped-def]
    from playground.celery import app

    conversation = create_conversation(alice, "smollm2")
    bad = Message.objects.create(
        conversation=conversation, role="assistant", status="queued", model="smollm2"
    )
    with ChatSocket(stack, alice) as ws:
        good = ws.generate(conversation.id, "Name three colours.", params={"max_tokens": 40})[
            "generation_id"
        ]
        # Straight onto the worker's queue, as a buggy or hostile sender would.
        app.send_task(
            GENERATE_TASK,
            args=[
                {
                    "generation_id": str(bad.id),
                    "model": "smollm2",
                    "messages": [{"role": "user", "content": "hi"}],
                    "params": {"top_k": 1e30, "seed": 2**64},
                }
            ],
            queue="model.smollm2",
        )
        events = ws.events_until_done(good, timeout=120)
    assert events[-1]["finish_reason"] in ("stop", "length")
    assert not [e for e in events if e["type"] == "error"]
    deadline = time.monotonic() + 30
    while Message.objects.get(pk=bad.pk).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Message.objects.get(pk=bad.pk).error_code == "invalid_request"
    assert Message.objects.get(pk=good).status == "done"


def test_every_accepted_generation_reaches_the_socket_or_the_frame_is_refused(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        for i in range(70):  # long replies: none ends while the frames arrive
            ws.send(
                {
                    "type": "generate",
                    "conversation_id": str(conversation.id),
                    "content": f"n{i}",
                    "params": {"max_tokens": 100_000},
                    "client_ref": i,
                }
            )
        accepted: dict[str, int] = {}
        refused: dict[int, dict] = {}  # type: ignore[type-arg]
        streaming: set[str] = set()
        deadline = time.monotonic() + 180
        while len(accepted) + len(refused) < 70 or streaming != set(accepted):
            assert time.monotonic() < deadline, (len(accepted), len(refused), len(streaming))
            event = ws.recv(timeout=60)
            if event["type"] == "accepted":
                accepted[event["generation_id"]] = event["client_ref"]
            elif event["type"] == "error" and "generation_id" not in event:
                refused[event["client_ref"]] = event
            elif event["type"] == "delta":
                streaming.add(event["generation_id"])
        for generation_id in accepted:
            ws.send({"type": "stop", "generation_id": generation_id})
        done = set()
        while done != set(accepted):  # every accepted one ends on this socket
            assert time.monotonic() < deadline + 60, len(done)
            event = ws.recv(timeout=60)
            if event["type"] == "done":
                done.add(event["generation_id"])
    assert len(accepted) == 64  # PLAYGROUND_MAX_STREAMS_PER_SOCKET
    assert len(refused) == 6 and {e["code"] for e in refused.values()} == {"too_many_streams"}
    assert set(accepted.values()).isdisjoint(refused)


def test_the_web_process_never_loads_torch_or_transformers(stack) -> None:  # type: ignore[no-untyped-def]
    import psutil

    port = stack.rsplit(":", 1)[1]
    (server,) = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "uvicorn" in " ".join(p.info["cmdline"] or []) and port in (p.info["cmdline"] or [])
    ]
    maps = Path(f"/proc/{server.pid}/maps").read_text()
    assert "libtorch" not in maps and "transformers" not in maps
    # Nor does importing the whole web side.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, django; django.setup(); import playground.asgi, playground.urls;"
            " print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings.test"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_the_launcher_restarts_a_process_that_dies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    supervisor = Supervisor(dict(os.environ), cwd=tmp_path)
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        first = supervisor.procs["sleeper"].pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not supervisor.check() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert supervisor.procs["sleeper"].pid != first
        assert supervisor.procs["sleeper"].poll() is None
    finally:
        supervisor.stop()


def test_a_worker_fetches_media_by_signed_url_and_forged_links_are_refused(
    stack, alice, client
) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import urllib.error
    import urllib.request

    from django.core.files.uploadedfile import SimpleUploadedFile

    from playground.media.blob_urls import signed_blob_url
    from tests.media import files

    client.force_login(alice)
    data = files.image_bytes("PNG")
    response = client.post("/media/", {"file": SimpleUploadedFile("photo.png", data)})
    assert response.status_code == 201, response.content
    sha = hashlib.sha256(data).hexdigest()
    url = signed_blob_url(sha)
    with urllib.request.urlopen(url, timeout=10) as fetched:
        assert fetched.read() == data
    forged = url.replace(url.rstrip("/").rsplit(":", 1)[-1], "AAAAAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 403


def test_a_trtllm_worker_serves_an_engine_directory(
    stack, alice, service_env, redis_client, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`python -m inference.worker --model NAME` with the catalogue pointing at an engine
    directory by environment (PLAYGROUND_ENGINE_DIR), on FAKE tensorrt_llm (tests/fakes):
    the same Django-free worker NVIDIA's container would run."""
    from engines.qwen35.synth import ensure_synthesised
    from engines.trtllm.build import build_engine_dir

    checkpoint = ensure_synthesised(
        ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl", moe=True, vision=True
    )
    engines = tmp_path / "engines"
    build_engine_dir("qwen3.5-35b-a3b", "h200", 1, "bf16", engines / "35b-h200", checkpoint)
    log = tmp_path / "fake-trtllm.jsonl"
    env = {k: v for k, v in service_env.items() if k not in ("DATABASE_URL",)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        PLAYGROUND_ENGINE_DIR=str(engines),
        PYTHONPATH=f"{ROOT / 'tests' / 'fakes'}{os.pathsep}{ROOT}",
        FAKE_TRTLLM_LOG=str(log),
    )
    pool = WorkerPool(env, tmp_path, redis_client)
    model = "qwen3.5-35b-a3b"
    pool.start(model, [sys.executable, "-c", NO_DJANGO, "--model", model, "--loglevel", "INFO"])
    try:
        pool.wait_online((model,), timeout=90)
        conversation = create_conversation(alice, model)
        with ChatSocket(stack, alice) as ws:
            gid = ws.generate(conversation.id, "hello", params={"max_tokens": 5}, thinking=False)[
                "generation_id"
            ]
            events = ws.events_until_done(gid)
        assert events[-1]["finish_reason"] == "length"
        reply = Message.objects.get(pk=gid)
        assert (reply.status, reply.content) == ("done", "tok0 tok1 tok2 tok3 tok4 ")
        assert reply.worker.startswith(f"{model}@")
        calls = [line for line in log.read_text().splitlines() if '"generate"' in line]
        assert len(calls) == 1 and '"max_tokens": 5' in calls[0]
    finally:
        pool.stop()
