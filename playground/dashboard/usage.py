"""Recording usage and maintaining the hourly rollups."""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from playground.dashboard.models import LATENCY_BUCKETS_MS, UsageHourly, UsageRecord


def record_generation(message: Any) -> UsageRecord:
    """The usage row for a finished assistant message (called with its final write)."""
    return UsageRecord.objects.create(
        user_id=message.conversation.user_id,
        model=message.model,
        conversation_id=message.conversation_id,
        message=message,
        created_at=message.created_at,
        finished_at=message.finished_at or timezone.now(),
        queue_wait_ms=message.queue_wait_ms,
        ttft_ms=message.ttft_ms,
        tpot_ms=message.tpot_ms,
        total_ms=message.total_ms,
        input_tokens=message.prompt_tokens or 0,
        output_tokens=message.output_tokens or 0,
        vision_tokens=message.vision_tokens or 0,
        images=message.images,
        video_seconds=message.video_seconds,
        finish_reason=message.finish_reason,
        error_code=message.error_code,
    )


def bucket_index(ms: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS_MS, ms)


def rebuild_rollups(start: datetime, end: datetime) -> int:
    """Recompute the hourly rows for [start, end) from raw usage rows; returns rows written.

    Idempotent: rebuilding a range replaces it, so the periodic task and a
    manual repair give the same numbers.
    """
    start = start.replace(minute=0, second=0, microsecond=0)
    groups: dict[tuple[datetime, str, int | None], dict[str, Any]] = defaultdict(
        lambda: {"histogram": [0] * (len(LATENCY_BUCKETS_MS) + 1)}
    )
    rows = UsageRecord.objects.filter(finished_at__gte=start, finished_at__lt=end).values(
        "finished_at", "model", "user_id", "finish_reason", "input_tokens", "output_tokens",
        "vision_tokens", "images", "video_seconds", "total_ms", "ttft_ms",
    )  # fmt: skip
    for row in rows.iterator(chunk_size=5000):
        hour = row["finished_at"].replace(minute=0, second=0, microsecond=0)
        group = groups[(hour, row["model"], row["user_id"])]
        group["requests"] = group.get("requests", 0) + 1
        reason = row["finish_reason"]
        group["errors"] = group.get("errors", 0) + (reason == "error")
        group["cancelled"] = group.get("cancelled", 0) + (reason == "cancelled")
        group["loops"] = group.get("loops", 0) + (reason == "loop")
        for field in ("input_tokens", "output_tokens", "vision_tokens", "images"):
            group[field] = group.get(field, 0) + row[field]
        group["video_seconds"] = group.get("video_seconds", 0.0) + row["video_seconds"]
        group["total_ms"] = group.get("total_ms", 0.0) + (row["total_ms"] or 0.0)
        if row["ttft_ms"] is not None:
            group["histogram"][bucket_index(row["ttft_ms"])] += 1
    with transaction.atomic():
        UsageHourly.objects.filter(hour__gte=start, hour__lt=end).delete()
        UsageHourly.objects.bulk_create(
            [
                UsageHourly(
                    hour=hour,
                    model=model,
                    user_id=user_id,
                    ttft_histogram=values.pop("histogram"),
                    **values,
                )  # fmt: skip
                for (hour, model, user_id), values in groups.items()
            ],
            batch_size=2000,
        )
    return len(groups)


@shared_task(name="dashboard.refresh_rollups", ignore_result=True)
def refresh_recent_rollups(hours: int = 3) -> None:
    """Periodic: rebuild the last few hours (late rows land in the right hour)."""
    now = timezone.now()
    rebuild_rollups(now - timedelta(hours=hours), now + timedelta(hours=1))
