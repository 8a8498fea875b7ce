"""The Celery app. Settings come from Django's, namespace ``CELERY_``.

DJANGO_SETTINGS_MODULE is chosen by the entry point (manage.py, asgi.py,
``python -m inference.worker``), never here: this module is imported with the
``playground`` package, before pytest-django or an operator picks settings.
"""

from celery import Celery

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["inference"])
app.autodiscover_tasks(["playground.media"], related_name="thumbnails")
app.autodiscover_tasks(["playground.dashboard"], related_name="usage")
