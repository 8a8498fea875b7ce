"""Celery beat for the playground: ``python -m playground.beat [celery beat options]``.

Sends the periodic jobs (``CELERY_BEAT_SCHEDULE``: the usage rollups, the reaper) to
the app worker; exactly one per deployment. The same as ``celery -A playground beat``,
with the app's logging: one line at start (pid, schedule file, broker, what it sends and
how often) instead of Celery's banner, and one line per Redis outage and recovery
(``inference.process``) instead of an error per retry.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger("playground.beat")


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.production")
    import django

    django.setup()
    from celery.signals import beat_init
    from django.conf import settings

    from inference.process import RedisWatch, quiet_celery, safe_url
    from playground.app_worker import with_loglevel
    from playground.celery import app

    quiet_celery()

    @beat_init.connect(weak=False)
    def started(sender: Any = None, **kwargs: Any) -> None:
        jobs = ", ".join(
            f"{name} {_every(entry['schedule'])}"
            for name, entry in sorted(settings.CELERY_BEAT_SCHEDULE.items())
        )
        log.info(
            "beat started: pid %s, schedule %s, broker %s, sends %s",
            os.getpid(),
            getattr(sender, "schedule_filename", "") or "(memory)",
            safe_url(app.conf.broker_url or ""),
            jobs,
        )

    watch = RedisWatch(
        "beat", {"Redis": settings.REDIS_URL, "broker": app.conf.broker_url}, settings.REDIS_URL
    ).start()
    try:
        app.start(["--quiet", "beat", *with_loglevel(argv)])
    finally:
        watch.stop()


def _every(schedule: Any) -> str:
    return f"every {schedule:g} s" if isinstance(schedule, int | float) else str(schedule)


if __name__ == "__main__":
    main(sys.argv[1:])
