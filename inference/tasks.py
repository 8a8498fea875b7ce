"""Celery tasks: thin wrappers that hand ids to the worker's engine host."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inference import runtime


@shared_task(name="inference.generate", ignore_result=True)
def generate(generation_id: str, job: dict[str, Any]) -> None:
    """Run one queued generation (``job``: prompt messages and sampling) on this worker's engine."""
    runtime.get_host().run_generation(generation_id, job)


@shared_task(name="inference.reap_lost_generations", ignore_result=True)
def reap_lost_generations() -> None:
    """Periodic (Celery beat, on the media queue): close replies whose worker died."""
    from inference.reaper import reap_lost_generations as reap

    reap()
