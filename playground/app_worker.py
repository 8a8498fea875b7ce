"""The app worker: ``python -m playground.app_worker [celery worker options]``.

The Django side's Celery worker (queues ``media`` and ``records``: thumbnails, the
recorder, rollups, the reaper), kept running across broker outages the same way as
the model workers (``inference.celery_runner``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.production")
    import django

    django.setup()
    from inference.celery_runner import run_worker
    from playground.celery import app

    run_worker(app, ["worker", "--queues", "media,records", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
