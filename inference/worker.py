"""Start a model worker: ``python -m inference.worker --model NAME``.

Needs only ``REDIS_URL`` and the model's catalogue entry (built in, or from
the JSON file ``PLAYGROUND_CATALOGUE``); never Django or a database, so a GPU
host runs it alone, e.g. inside NVIDIA's TensorRT-LLM image. The engine is
loaded before the worker consumes its first job. The pool is threads, as many
as the engine's batch: a job is taken from the broker only when the engine can
admit it. SIGTERM drains: in-flight generations get ``PLAYGROUND_DRAIN_S`` to
finish, then are closed with their text so far. A CPU engine uses
``PLAYGROUND_CPU_THREADS`` threads (``make run`` gives each worker its share of the
cores; default: every core this process may use) and idle threads sleep
(``engines.cpu``).

Its log: one line when it is ready to take jobs (model, pid, concurrency, queue,
broker), one when Redis or the broker is lost and one when it is back
(``inference.process``); no Celery banner.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="catalogue name of the model to serve")
    parser.add_argument("--catalogue", help="JSON catalogue file (default: $PLAYGROUND_CATALOGUE)")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    if args.catalogue:
        os.environ["PLAYGROUND_CATALOGUE"] = args.catalogue
    logging.basicConfig(
        level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Before anything imports torch: OpenMP reads its settings once, when it is loaded.
    from engines.cpu import configure_threads

    configure_threads()

    import inference.tasks  # noqa: F401  (registers the task)
    from inference.catalogue import load_default_catalogue
    from inference.celery_app import app
    from inference.celery_runner import run_worker
    from inference.config import get_config
    from inference.jobs import RECORD_QUEUE, RECORD_TASK
    from inference.process import RedisWatch, announce_when_ready, quiet_celery
    from inference.redis_clients import redis_url
    from inference.runtime import EngineHost

    quiet_celery()

    catalogue = load_default_catalogue()
    if args.model not in catalogue:
        sys.exit(f"unknown model {args.model!r}; catalogue has: {', '.join(catalogue)}")
    spec = catalogue[args.model]

    def send_record(generation_id: str, record: dict[str, Any]) -> None:
        # By name: the recorder lives on the Django side, which this process never imports.
        app.send_task(
            RECORD_TASK,
            args=[generation_id, record],
            queue=RECORD_QUEUE,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    config = get_config()
    watch = RedisWatch(
        "model worker",
        {"Redis": redis_url(), "broker": app.conf.broker_url},
        redis_url(),
        model=spec.name,
        interval_s=max(1.0, config.heartbeat_interval_s),
    ).start()
    host = EngineHost.start(spec, config, send_record)
    announce_when_ready(
        f"model worker {spec.name}",
        concurrency=f"{host.slots} threads",
        backend=host.announcement["backend"],
    )

    def drain() -> None:  # Celery's warm shutdown then waits for the tasks to end
        threading.Thread(target=host.drain, name="drain", daemon=True).start()

    try:
        run_worker(
            app,
            [
                "--quiet",  # no banner: announce_when_ready logs one line instead
                "worker",
                "--queues",
                spec.queue,
                "--pool",
                "threads",
                "--concurrency",
                str(host.slots),
                "--hostname",
                f"{spec.name}@%h.{os.getpid()}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                args.loglevel,
            ],
            on_shutdown=drain,
        )
    finally:
        watch.stop()
        host.stop()


if __name__ == "__main__":
    main()
