"""The workers' Celery app: no Django. ``python -m inference.worker`` runs it.

Jobs wait in the broker until an engine can admit them: each worker takes at
most as many jobs as its engine has batch slots (threads pool sized to the
engine, prefetch of one per thread, and ``acks_late`` so a job is only gone
from the broker once its generation is closed).
"""

from __future__ import annotations

import os

from celery import Celery

from inference.redis_clients import redis_url

app = Celery("inference")
app.conf.update(
    # The broker may be a Redis of its own (CELERY_BROKER_URL); by default it is REDIS_URL.
    broker_url=os.environ.get("CELERY_BROKER_URL") or redis_url(),
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    # Redis gone for a while: keep reconnecting instead of exiting with in-flight work.
    broker_connection_max_retries=None,
    worker_hijack_root_logger=False,
    worker_cancel_long_running_tasks_on_connection_loss=False,
)
