"""The app worker: ``python -m playground.app_worker [celery worker options]``.

The Django side's Celery worker (queues ``media`` and ``records``: thumbnails, the
recorder, rollups, the reaper), kept running across broker outages the same way as
the model workers (``inference.celery_runner``). It logs one line when it is ready and
one per Redis outage and recovery (``inference.process``), no Celery banner.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.production")
    import django

    django.setup()
    from django.conf import settings

    from inference.celery_runner import run_worker
    from inference.process import RedisWatch, announce_when_ready, quiet_celery
    from playground.celery import app

    quiet_celery()
    watch = RedisWatch(
        "app worker",
        {"Redis": settings.REDIS_URL, "broker": app.conf.broker_url},
        settings.REDIS_URL,
    ).start()
    announce_when_ready("app worker")
    try:
        run_worker(app, ["--quiet", "worker", "--queues", "media,records", *with_loglevel(argv)])
    finally:
        watch.stop()


def with_loglevel(argv: list[str]) -> list[str]:
    """``argv`` with ``--loglevel`` defaulting to the settings' root level (Celery's own
    default, WARNING, would hide the start line)."""
    if any(a in ("-l", "--loglevel") or a.startswith("--loglevel=") for a in argv):
        return argv
    from django.conf import settings

    return [*argv, "--loglevel", str(settings.LOGGING.get("root", {}).get("level", "INFO"))]


if __name__ == "__main__":
    main(sys.argv[1:])
