"""Start a Celery worker that serves one model: ``python -m inference.worker --model NAME``.

The engine is loaded before the worker consumes its first task. The pool is
threads, not prefork: every task thread shares the one loaded engine (and a
CUDA context is never forked).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="catalogue name of the model to serve")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.local")
    import django

    django.setup()
    from django.conf import settings

    from inference.catalogue import get_catalogue
    from inference.runtime import EngineHost
    from playground.celery import app

    catalogue = get_catalogue()
    if args.model not in catalogue:
        sys.exit(f"unknown model {args.model!r}; catalogue has: {', '.join(catalogue)}")
    spec = catalogue[args.model]
    host = EngineHost.start(spec)
    concurrency = args.concurrency or settings.INFERENCE["WORKER_CONCURRENCY"]
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                spec.queue,
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{spec.name}@%h.{os.getpid()}",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                args.loglevel,
            ]
        )
    finally:
        host.stop()


if __name__ == "__main__":
    main()
