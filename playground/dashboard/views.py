"""The staff usage dashboard (first part): totals and the per-model table for a range, CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from playground.dashboard.queries import Filters, per_model, raw_rows, totals

RANGES = {"today": 0, "7d": 7, "30d": 30}


def _staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("staff only")


def _filters(request: HttpRequest) -> tuple[Filters, str]:
    """today / 7d / 30d (in the server's time zone), or custom ?start=YYYY-MM-DD&end=YYYY-MM-DD."""
    now = timezone.localtime()
    choice = request.GET.get("range", "7d")
    if choice == "custom":
        try:
            start_day = datetime.fromisoformat(request.GET["start"]).date()
            end_day = datetime.fromisoformat(request.GET["end"]).date()
        except (KeyError, ValueError):
            start_day, end_day, choice = now.date() - timedelta(days=7), now.date(), "7d"
        start = timezone.make_aware(datetime.combine(start_day, time.min))
        end = timezone.make_aware(datetime.combine(end_day + timedelta(days=1), time.min))
    else:
        days = RANGES.get(choice, 7)
        start = timezone.make_aware(datetime.combine(now.date() - timedelta(days=days), time.min))
        if choice == "today":
            start = timezone.make_aware(datetime.combine(now.date(), time.min))
        end = now + timedelta(seconds=1)
    user = request.GET.get("user", "")
    return Filters(
        start, end, request.GET.get("model", ""), int(user) if user.isdigit() else None
    ), choice


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    _staff(request)
    filters, choice = _filters(request)
    context = {
        "filters": filters,
        "range": choice,
        "totals": totals(filters),
        "models": per_model(filters),
    }
    return render(request, "dashboard/index.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def export_usage_csv(request: HttpRequest) -> StreamingHttpResponse:
    _staff(request)
    filters, _choice = _filters(request)
    writer = csv.writer(_Echo())
    columns = ["finished_at", "user", "model", "finish_reason", "error_code", "queue_wait_ms",
               "ttft_ms", "tpot_ms", "total_ms", "input_tokens", "output_tokens", "vision_tokens",
               "images", "video_seconds"]  # fmt: skip

    def lines() -> Iterator[str]:
        yield writer.writerow(columns)
        for row in raw_rows(filters).iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    row.finished_at.isoformat(),
                    row.user.username if row.user else "",
                    row.model,
                    row.finish_reason,
                    row.error_code,
                    row.queue_wait_ms,
                    row.ttft_ms,
                    row.tpot_ms,
                    row.total_ms,
                    row.input_tokens,
                    row.output_tokens,
                    row.vision_tokens,
                    row.images,
                    row.video_seconds,
                ]  # fmt: skip
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="usage.csv"'
    return response
