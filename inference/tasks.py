"""The worker's Celery task: a thin wrapper that hands the job to this process's engine host."""

from __future__ import annotations

from typing import Any

from celery.exceptions import Reject

from inference import runtime
from inference.celery_app import app
from inference.jobs import GENERATE_TASK


@app.task(name=GENERATE_TASK, ignore_result=True)
def generate(job: dict[str, Any]) -> None:
    """Run one queued generation (``job``: inference.jobs.Job as JSON) on this worker's engine."""
    try:
        runtime.get_host().run_job(job)
    except runtime.Requeue:
        # Not claimed (draining, or Redis unreachable): back to the broker.
        raise Reject("requeued", requeue=True) from None
