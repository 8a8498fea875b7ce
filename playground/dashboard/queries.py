"""Dashboard numbers for a time range, optionally for one model or one user.

A range is read in segments: whole local days from the daily rollups, whole hours from the
hourly rollups, and the rest (partial hours, and everything after the rollups' completeness
mark) from raw rows. Totals are therefore exact; latency percentiles come from log-spaced
histograms and are reported as the upper bound of the bin holding the nearest-rank value:
never below the exact percentile and at most 10% above it.
"""

from __future__ import annotations

import time as clock
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils import timezone

from inference import state
from inference.heartbeats import list_workers, live_models
from inference.redis_clients import get_redis
from playground.chat.models import Feedback
from playground.dashboard.models import (
    LATENCY_METRICS,
    UsageDaily,
    UsageHourly,
    UsageRecord,
    UsageUserDaily,
    bin_upper_bound,
)
from playground.dashboard.usage import (
    Cell,
    bucket_expression,
    hour_ceil,
    hour_floor,
    known_complete_until,
    local_midnight,
    raw_cells,
    rollup_state,
)
from playground.generations.catalogue import get_catalogue

PERCENTILES = (50, 95, 99)
HOUR_BUCKETS_UP_TO = timedelta(hours=48)
Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    model: str = ""
    user_id: int | None = None
    kind: str = ""  # chat / api / gradio; "" = all (a kind is read from raw rows only)

    @property
    def unit(self) -> str:
        """Chart buckets: hours for ranges up to two days, local days beyond."""
        return "hour" if self.end - self.start <= HOUR_BUCKETS_UP_TO else "day"


@dataclass
class Plan:
    days: list[Interval] = field(default_factory=list)
    hours: list[Interval] = field(default_factory=list)
    raw: list[Interval] = field(default_factory=list)


def plan(filters: Filters, *, days: bool, hours: bool = True) -> Plan:
    """Which source covers which part of [start, end)."""
    result = Plan()
    known = known_complete_until(rollup_state())
    # The rollups do not split by front end: a front-end filter reads raw rows throughout.
    if filters.kind or known is None or known <= filters.start:
        result.raw.append((filters.start, filters.end))
        return result
    rolled_end = min(filters.end, known)
    if rolled_end < filters.end:
        result.raw.append((rolled_end, filters.end))
    pieces = [(filters.start, rolled_end)]
    if days:
        zone = timezone.get_current_timezone()
        first = local_midnight(filters.start, zone)
        first = first if first == filters.start else local_midnight(filters.start, zone, 1)
        last = local_midnight(rolled_end, zone)
        if first < last:
            result.days.append((first, last))
            pieces = [(filters.start, first), (last, rolled_end)]
        # A day bucket never takes an hourly row across its midnight (half-hour zones).
        pieces = [part for lo, hi in pieces for part in _split_at_midnights(lo, hi, zone)]
    for lo, hi in pieces:
        whole = (hour_ceil(lo), hour_floor(hi))
        if hours and whole[0] < whole[1]:
            result.hours.append(whole)
            result.raw += [(lo, whole[0]), (whole[1], hi)]
        else:
            result.raw.append((lo, hi))
    result.raw = [(lo, hi) for lo, hi in result.raw if lo < hi]
    return result


def _split_at_midnights(lo: datetime, hi: datetime, zone: tzinfo) -> list[Interval]:
    parts = []
    while lo < hi:
        midnight = local_midnight(lo, zone, 1)
        parts.append((lo, min(midnight, hi)))
        lo = midnight
    return parts


def _within(column: str, intervals: list[Interval]) -> Q:
    condition = Q(pk__in=[])
    for lo, hi in intervals:
        condition |= Q(**{f"{column}__gte": lo, f"{column}__lt": hi})
    return condition


def _narrow(rows: QuerySet[Any], filters: Filters) -> QuerySet[Any]:
    """Apply the optional model and user filters (every usage table has both columns), and
    the front-end filter to raw rows (feedback is counted for every front end)."""
    if filters.model:
        rows = rows.filter(model=filters.model)
    if filters.user_id:
        rows = rows.filter(user_id=filters.user_id)
    if filters.kind and rows.model is UsageRecord:
        rows = rows.filter(kind=filters.kind)
    return rows


def _bucket_start(moment: datetime, unit: str, zone: tzinfo) -> datetime:
    """The chart bucket holding ``moment``, computed in Python for every source alike (so
    PostgreSQL's and Python's time zone data can never disagree on a bucket's key)."""
    return hour_floor(moment) if unit == "hour" else local_midnight(moment, zone)


def cells(filters: Filters) -> dict[tuple[datetime, str], Cell]:
    """Sums and latency histograms per (chart bucket, model) over the range.

    A one-user view reads that user's daily rows (there are no per-user hourly rollups,
    so its partial days come from raw rows).
    """
    zone = timezone.get_current_timezone()
    unit = filters.unit
    segments = plan(filters, days=unit == "day", hours=not filters.user_id)
    result: dict[tuple[datetime, str], Cell] = {}

    def merge(cell: Cell) -> None:
        start = _bucket_start(cell.start, unit, zone)
        key = (start, cell.model)
        if key in result:
            result[key].add(cell)
        else:
            cell.start, cell.user_id = start, None
            result[key] = cell

    if segments.days:
        if filters.user_id:
            daily: QuerySet[Any] = UsageUserDaily.objects.filter(user_id=filters.user_id)
            daily = daily.filter(model=filters.model) if filters.model else daily.exclude(model="")
        else:
            daily = _narrow(UsageDaily.objects.all(), filters)
        for row in daily.filter(_within("start", segments.days)):
            merge(Cell.from_rollup(row))
    if segments.hours:
        for row in _narrow(UsageHourly.objects.filter(_within("start", segments.hours)), filters):
            merge(Cell.from_rollup(row))
    if segments.raw:
        rows = _narrow(UsageRecord.objects.filter(_within("finished_at", segments.raw)), filters)
        for cell in raw_cells(rows, bucket_expression(unit, zone)).values():
            merge(cell)
    return result


@dataclass
class UserActivity:
    total: int
    per_bucket: dict[datetime, int]
    table: list[dict[str, Any]]  # every active user, most tokens first


def user_activity(filters: Filters) -> UserActivity:
    """Active users (in all and per chart bucket) and per-user sums, from daily rollups + raw."""
    zone = timezone.get_current_timezone()
    segments = plan(filters, days=filters.unit == "day", hours=False)
    per_bucket: Counter[datetime] = Counter()
    table: dict[int, dict[str, Any]] = {}
    sums = {
        "requests": Sum("requests"),
        "errors": Sum("errors"),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "last_at": Max("last_at"),
    }
    sources: list[tuple[QuerySet[Any], Any, dict[str, Any]]] = []
    if segments.days:  # the all-models rows, or the one model's
        daily = UsageUserDaily.objects.filter(_within("start", segments.days), model=filters.model)
        if filters.user_id:
            daily = daily.filter(user_id=filters.user_id)
        sources.append((daily, F("start"), sums))
    if segments.raw:
        raw = _narrow(
            UsageRecord.objects.filter(_within("finished_at", segments.raw), user__isnull=False),
            filters,
        )
        counts = {
            "requests": Count("id"),
            "errors": Count("id", filter=Q(finish_reason="error")),
            "input_tokens": Sum("input_tokens"),
            "output_tokens": Sum("output_tokens"),
            "last_at": Max("finished_at"),
        }
        sources.append((raw, bucket_expression(filters.unit, zone), counts))
    for rows, bucket, aggregates in sources:
        buckets = (
            rows.annotate(bucket_start=bucket)
            .values_list("bucket_start")
            .annotate(n=Count("user", distinct=True))
            .order_by()
        )
        for start, n in buckets:
            per_bucket[_bucket_start(start, filters.unit, zone)] += n
        for row in rows.values("user").annotate(**aggregates).order_by():
            entry = table.setdefault(
                row["user"], {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0}
            )
            for key in ("requests", "errors", "input_tokens", "output_tokens"):
                entry[key] += row[key] or 0
            entry["last_at"] = max(entry.get("last_at", row["last_at"]), row["last_at"])
    names = dict(get_user_model().objects.filter(id__in=table).values_list("id", "username"))
    rows_out = [
        {"user_id": user_id, "username": names.get(user_id, "?"), **values,
         "tokens": values["input_tokens"] + values["output_tokens"]}
        for user_id, values in table.items()
    ]  # fmt: skip
    rows_out.sort(key=lambda r: (-r["tokens"], r["username"]))
    return UserActivity(len(table), dict(per_bucket), rows_out)


def usage_rows(filters: Filters) -> QuerySet[UsageRecord]:
    """The raw usage rows in the range, with the model and user filters."""
    rows = UsageRecord.objects.filter(finished_at__gte=filters.start, finished_at__lt=filters.end)
    return _narrow(rows, filters)


def failures(filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent failed generations in the range."""
    return list(
        usage_rows(filters)
        .filter(finish_reason="error")
        .order_by("-finished_at")
        .values(
            "finished_at", "model", "error_code", "conversation_id",
            username=F("user__username"), error_message=F("message__error_message"),
        )[:limit]
    )  # fmt: skip


def feedback(filters: Filters) -> dict[str, dict[str, int]]:
    """Thumbs up and down per model, for feedback given in the range."""
    rows = Feedback.objects.filter(created_at__gte=filters.start, created_at__lt=filters.end)
    counts = (
        _narrow(rows, filters)
        .values("model")
        .annotate(up=Count("id", filter=Q(value=1)), down=Count("id", filter=Q(value=-1)))
        .order_by()
    )
    return {row["model"]: {"up": row["up"], "down": row["down"]} for row in counts}


# --- turning cells into what the page shows -------------------------------------------


def percentile(histogram: np.ndarray, p: int) -> float | None:
    """Upper bound of the bin holding the nearest-rank p-th percentile (None if empty)."""
    n = int(histogram.sum())
    if n == 0:
        return None
    rank = max(1, -(-p * n // 100))
    return bin_upper_bound(int(np.searchsorted(np.cumsum(histogram), rank)))


def _gpus(model: str) -> float:
    spec = get_catalogue().get(model)
    return float(spec.info.get("gpus", 1)) if spec else 1.0


def totals(all_cells: dict[tuple[datetime, str], Cell], users: UserActivity) -> dict[str, Any]:
    total = Cell(timezone.now(), "")
    gpu_ms = 0.0
    for model, cell in by_model(all_cells).items():
        total.add(cell)
        gpu_ms += cell.engine_ms * _gpus(model)
    return {
        **{name: getattr(total, name) for name in Cell.COUNTED},
        "active_users": users.total,
        "error_rate": total.errors / total.requests if total.requests else 0.0,
        "gpu_seconds": gpu_ms / 1000,
    }


def by_model(all_cells: dict[tuple[datetime, str], Cell]) -> dict[str, Cell]:
    """The cells of every bucket summed per model."""
    summed: dict[str, Cell] = {}
    for cell in all_cells.values():
        summed.setdefault(cell.model, Cell(cell.start, cell.model)).add(cell)
    return summed


def per_model(
    all_cells: dict[tuple[datetime, str], Cell], thumbs: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    summed = by_model(all_cells)
    rows = []
    for model in sorted(set(summed) | set(thumbs)):
        cell = summed.get(model) or Cell(timezone.now(), model)
        requests = cell.requests
        row: dict[str, Any] = {
            "model": model,
            "requests": requests,
            "input_tokens": cell.input_tokens,
            "output_tokens": cell.output_tokens,
            "errors": cell.errors,
            "error_rate": cell.errors / requests if requests else 0.0,
            "cancel_rate": cell.cancelled / requests if requests else 0.0,
            "loops": cell.loops,
            "thumbs_up": thumbs.get(model, {}).get("up", 0),
            "thumbs_down": thumbs.get(model, {}).get("down", 0),
        }
        for metric in ("ttft_ms", "tpot_ms"):
            for p in PERCENTILES:
                row[f"{metric}_p{p}"] = percentile(cell.latency[metric], p)
        rows.append(row)
    return rows


def bucket_starts(filters: Filters) -> list[datetime]:
    zone = timezone.get_current_timezone()
    if filters.unit == "hour":
        moment, step = hour_floor(filters.start), None
    else:
        moment, step = local_midnight(filters.start, zone), 1
    starts = []
    while moment < filters.end:
        starts.append(moment)
        moment = moment + timedelta(hours=1) if step is None else local_midnight(moment, zone, 1)
    return starts


def series(
    filters: Filters, all_cells: dict[tuple[datetime, str], Cell], users: UserActivity
) -> dict[str, Any]:
    """Chart data: one value per bucket (None where a percentile has no samples)."""
    starts = bucket_starts(filters)
    index = {start: i for i, start in enumerate(starts)}
    n = len(starts)
    requests: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    tokens: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    errors: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    merged = [Cell(start, "") for start in starts]
    for (start, model), cell in sorted(all_cells.items()):
        i = index[start]
        requests[model][i] += cell.requests
        tokens[model][i] += cell.input_tokens + cell.output_tokens
        for code, count in cell.error_codes.items():
            errors[code][i] += count
        merged[i].add(cell)
    fmt = "%b %d %H:%M" if filters.unit == "hour" else "%b %d"
    return {
        "unit": filters.unit,
        "time_zone": timezone.get_current_timezone_name(),
        "labels": [timezone.localtime(start).strftime(fmt) for start in starts],
        "requests": dict(requests),
        "tokens": dict(tokens),
        "errors": dict(errors),
        "active_users": [users.per_bucket.get(start, 0) for start in starts],
        **{
            metric: {
                f"p{p}": [percentile(c.latency[metric], p) for c in merged] for p in PERCENTILES
            }
            for metric in LATENCY_METRICS
        },
    }


def live_status() -> dict[str, Any]:
    """Workers online (heartbeats), in-flight generations and queue depth, per model.

    Listed: every model with a live worker or queued jobs, and every configured one
    (``available`` false when no worker serves it)."""
    client = get_redis()
    workers = list_workers(client)
    live = live_models(client, workers)
    now = clock.time()
    models = []
    for spec in get_catalogue().values():
        mine = live.get(spec.name, {})
        depth = state.queue_depth(client, spec.name)
        if not (mine or depth or spec.deployed):
            continue
        models.append(
            {
                "model": spec.name,
                "available": bool(mine),
                "workers": mine.get("workers", 0),
                "in_flight": mine.get("in_flight", 0),
                "capacity": mine.get("capacity", 0),
                "queue_depth": depth,
            }
        )
    return {
        "models": models,
        "workers": [
            {
                "worker_id": w.get("worker_id", ""),
                "model": w.get("model", ""),
                "backend": w.get("spec", {}).get("backend", ""),
                "max_batch": w.get("spec", {}).get("max_batch"),
                "context_length": w.get("spec", {}).get("context_length"),
                "gpus": w.get("spec", {}).get("gpus"),
                "version": w.get("spec", {}).get("version"),
                "draining": bool(w.get("draining")),
                "in_flight": int(w.get("in_flight", 0)),
                "seen_s_ago": round(max(0.0, now - float(w.get("last_seen", now))), 1),
            }
            for w in workers
        ],
    }


def by_front_end(filters: Filters) -> list[dict[str, Any]]:
    """Requests and tokens per front end (chat, api, gradio) in the range, from raw rows."""
    rows = UsageRecord.objects.filter(finished_at__gte=filters.start, finished_at__lt=filters.end)
    if filters.model:
        rows = rows.filter(model=filters.model)
    if filters.user_id is not None:
        rows = rows.filter(user_id=filters.user_id)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    return list(
        rows.values("kind")
        .annotate(
            requests=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
        .order_by("kind")
    )
