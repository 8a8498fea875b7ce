"""Dashboard numbers for a time range: whole hours from the rollups, the partial edge hours
from raw rows, so long ranges never scan raw usage and the totals are still exact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from playground.dashboard.models import UsageHourly, UsageRecord

SUMMED = ("input_tokens", "output_tokens", "vision_tokens", "images", "video_seconds")


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    model: str = ""
    user_id: int | None = None


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _split(filters: Filters) -> tuple[datetime, datetime]:
    """[start, end) = [start, full_start) raw + [full_start, full_end) rollups + [full_end, end) raw."""
    full_start = _hour_floor(filters.start)
    if full_start < filters.start:
        full_start += timedelta(hours=1)
    full_end = _hour_floor(filters.end)
    if full_end < full_start:
        full_end = full_start
    return full_start, full_end


def _narrow(rows: QuerySet[Any], filters: Filters) -> QuerySet[Any]:
    """Apply the optional model and user filters (both tables have the two columns)."""
    if filters.model:
        rows = rows.filter(model=filters.model)
    if filters.user_id:
        rows = rows.filter(user_id=filters.user_id)
    return rows


def _raw(filters: Filters, full_start: datetime, full_end: datetime) -> QuerySet[UsageRecord]:
    edges = Q(finished_at__gte=filters.start, finished_at__lt=min(full_start, filters.end)) | Q(
        finished_at__gte=max(full_end, filters.start), finished_at__lt=filters.end
    )
    return _narrow(UsageRecord.objects.filter(edges), filters)


def _rolled(filters: Filters, full_start: datetime, full_end: datetime) -> QuerySet[UsageHourly]:
    return _narrow(UsageHourly.objects.filter(hour__gte=full_start, hour__lt=full_end), filters)


def totals(filters: Filters) -> dict[str, Any]:
    full_start, full_end = _split(filters)
    raw = _raw(filters, full_start, full_end).aggregate(
        requests=Count("id"),
        errors=Count("id", filter=Q(finish_reason="error")),
        **{field: Sum(field) for field in SUMMED},
    )
    rolled = _rolled(filters, full_start, full_end).aggregate(
        requests=Sum("requests"), errors=Sum("errors"), **{field: Sum(field) for field in SUMMED}
    )
    result = {key: (raw[key] or 0) + (rolled[key] or 0) for key in raw}
    users = set(_rolled(filters, full_start, full_end).values_list("user_id", flat=True).distinct())
    users |= set(_raw(filters, full_start, full_end).values_list("user_id", flat=True).distinct())
    users.discard(None)
    result["active_users"] = len(users)
    result["error_rate"] = result["errors"] / result["requests"] if result["requests"] else 0.0
    return result


def per_model(filters: Filters) -> list[dict[str, Any]]:
    """Requests, tokens and outcomes per model over the range."""
    full_start, full_end = _split(filters)
    table: dict[str, dict[str, Any]] = {}
    keys = ("requests", "errors", "cancelled", "loops", "input_tokens", "output_tokens")
    for row in (
        _rolled(filters, full_start, full_end)
        .values("model")
        .annotate(**{key: Sum(key) for key in keys})
    ):
        table[row["model"]] = {key: row[key] or 0 for key in keys}
    for row in (
        _raw(filters, full_start, full_end)
        .values("model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(finish_reason="error")),
            cancelled=Count("id", filter=Q(finish_reason="cancelled")),
            loops=Count("id", filter=Q(finish_reason="loop")),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
    ):
        entry = table.setdefault(row["model"], dict.fromkeys(keys, 0))
        for key in keys:
            entry[key] += row[key] or 0
    return [{"model": model, **values} for model, values in sorted(table.items())]


def raw_rows(filters: Filters) -> QuerySet[UsageRecord]:
    """Every usage row in the range (CSV export), oldest first."""
    rows = UsageRecord.objects.filter(finished_at__gte=filters.start, finished_at__lt=filters.end)
    return _narrow(rows, filters).select_related("user").order_by("finished_at")
