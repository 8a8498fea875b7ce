"""The Django side's Celery app (settings from Django's, namespace ``CELERY_``).

It runs the app worker's jobs — thumbnails, usage rollups, the recorder
(``generations.record``), the reaper and the purge of deleted conversations —
and sends generation jobs to the model workers by task name
(``inference.generate``); model workers run their own Django-free app
(``inference.celery_app``).

DJANGO_SETTINGS_MODULE is chosen by the entry point (manage.py, asgi.py, the app
worker), not by importing this module: it is imported with the ``playground``
package, before pytest-django or an operator picks settings, and by `make run`'s
launcher, whose children must not inherit a choice it never made. The one entry
point that is this module is the ``celery`` command (``celery -A playground beat``,
``celery -A playground inspect ping``): there, as everywhere, production is the default.
"""

import os
import sys
from pathlib import Path

from celery import Celery


def _run_by_the_celery_command() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.split(".")[0] == "celery":  # python -m celery
        return True
    return bool(sys.argv) and Path(sys.argv[0]).name == "celery"


if _run_by_the_celery_command():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings.production")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["playground.media"], related_name="thumbnails")
app.autodiscover_tasks(["playground.dashboard"], related_name="usage")
app.autodiscover_tasks(["playground.generations"], related_name="recorder")
app.autodiscover_tasks(["playground.generations"], related_name="reaper")
app.autodiscover_tasks(["playground.chat"], related_name="conversations")
