"""The Django side's Celery app (settings from Django's, namespace ``CELERY_``).

It runs the app worker's jobs — thumbnails, usage rollups, the recorder
(``generations.record``), the reaper and the purge of deleted conversations —
and sends generation jobs to the model workers by task name
(``inference.generate``); model workers run their own Django-free app
(``inference.celery_app``).

DJANGO_SETTINGS_MODULE is chosen by the entry point (manage.py, asgi.py),
never here: this module is imported with the ``playground`` package, before
pytest-django or an operator picks settings.
"""

from celery import Celery

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["playground.media"], related_name="thumbnails")
app.autodiscover_tasks(["playground.dashboard"], related_name="usage")
app.autodiscover_tasks(["playground.generations"], related_name="recorder")
app.autodiscover_tasks(["playground.generations"], related_name="reaper")
app.autodiscover_tasks(["playground.chat"], related_name="conversations")
