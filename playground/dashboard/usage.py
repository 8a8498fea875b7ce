"""Recording usage, aggregating raw rows, and maintaining the rollups."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

import numpy as np
from celery import shared_task
from django.db import transaction
from django.db.models import (
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Ceil, Coalesce, Greatest, Least, Ln, Trunc
from django.utils import timezone

from playground.dashboard.models import (
    LATENCY_BINS,
    LATENCY_METRICS,
    LN_RATIO,
    RollupState,
    UsageDaily,
    UsageHourly,
    UsageRecord,
    UsageRollup,
    UsageUserDaily,
)

# Rows may be committed a little after their finished_at; an hour counts as complete
# for the rollups only this long after it ended.
LATE_WRITE_GRACE = timedelta(seconds=60)
OUTCOMES = {"errors": "error", "cancelled": "cancelled", "loops": "loop"}
SUMMED = ("input_tokens", "output_tokens", "vision_tokens", "images", "video_seconds")


def record_generation(message: Any) -> UsageRecord:
    """The usage row for a finished assistant message (called with its final write)."""
    return UsageRecord.objects.create(
        kind=message.conversation.source,
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


# --- cells: sums for one (bucket start, model), from raw rows or rollups ----------------


@dataclass
class Cell:
    start: datetime
    model: str  # "" in the all-models rows of UsageUserDaily
    user_id: int | None = None
    requests: int = 0
    errors: int = 0
    cancelled: int = 0
    loops: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    vision_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    engine_ms: float = 0.0
    last_at: datetime | None = None
    error_codes: Counter[str] = field(default_factory=Counter)
    latency: dict[str, np.ndarray] = field(
        default_factory=lambda: {m: np.zeros(LATENCY_BINS, dtype=np.int64) for m in LATENCY_METRICS}
    )

    COUNTED = ("requests", "errors", "cancelled", "loops", *SUMMED, "engine_ms")

    def add(self, other: Cell) -> None:
        for name in self.COUNTED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.last_at and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at
        self.error_codes.update(other.error_codes)
        for metric in LATENCY_METRICS:
            self.latency[metric] += other.latency[metric]

    @classmethod
    def from_rollup(cls, row: UsageRollup) -> Cell:
        cell = cls(
            row.start,
            row.model,
            getattr(row, "user_id", None),
            last_at=getattr(row, "last_at", None),
            **{name: getattr(row, name) for name in cls.COUNTED},
        )
        cell.error_codes.update(row.error_codes)
        for metric in LATENCY_METRICS:
            counts = cell.latency[metric]
            for index, count in getattr(row, metric).items():
                counts[int(index)] += count
        return cell

    def rollup_fields(self) -> dict[str, Any]:
        fields = {
            "start": self.start,
            "model": self.model,
            **{name: getattr(self, name) for name in self.COUNTED},
            "error_codes": dict(self.error_codes),
            **{
                metric: {str(i): int(n) for i, n in enumerate(self.latency[metric]) if n}
                for metric in LATENCY_METRICS
            },
        }
        if self.user_id is not None:
            fields.update(user_id=self.user_id, last_at=self.last_at)
        return fields


def bucket_expression(unit: str, zone: tzinfo) -> Trunc:
    """finished_at truncated to the hour (UTC) or to the local day in ``zone``."""
    return Trunc("finished_at", unit, tzinfo=UTC if unit == "hour" else zone)


def _latency_bin(column: str) -> Cast:
    """SQL for models.latency_bin: ceil(ln(max(ms, 1)) / ln(ratio)), clamped."""
    raw = Ceil(Ln(Greatest(F(column), Value(1.0), output_field=FloatField())) / Value(LN_RATIO))
    return Cast(Least(Greatest(raw, Value(0.0)), Value(float(LATENCY_BINS - 1))), IntegerField())


Key = tuple[datetime, str, int | None]


def raw_cells(
    rows: QuerySet[UsageRecord], bucket: Trunc, group: tuple[str, ...] = ("model",)
) -> dict[Key, Cell]:
    """Aggregate raw usage rows into cells keyed (bucket start, model, user id).

    ``group`` names the columns cells are kept apart by: "model" and/or "user_id"; a
    column left out is "" (model) or None (user) in the keys. Five grouped queries,
    whatever the row count.
    """
    cells: dict[Key, Cell] = {}
    columns = ("bucket", *group)

    def key(values: dict[str, Any]) -> Key:
        return (values["bucket"], values.get("model", ""), values.get("user_id"))

    engine = Greatest(Coalesce(F("total_ms"), 0.0) - Coalesce(F("queue_wait_ms"), 0.0), Value(0.0))
    sums = (
        rows.annotate(bucket=bucket)
        .values(*columns)
        .annotate(
            requests=Count("id"),
            **{
                name: Count("id", filter=Q(finish_reason=reason))
                for name, reason in OUTCOMES.items()
            },
            **{name: Sum(name) for name in SUMMED},
            engine_ms=Sum(engine),
            last_at=Max("finished_at"),
        )
        .order_by()
    )
    for row in sums:
        start, model, user_id = key(row)
        values = {name: row[name] for name in (*Cell.COUNTED, "last_at")}
        cells[(start, model, user_id)] = Cell(start, model, user_id, **values)
    codes = (
        rows.filter(finish_reason="error")
        .annotate(bucket=bucket)
        .values(*columns, "error_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    # Rows committed between these queries may make new keys: create them as they come.
    for row in codes:
        cells.setdefault(key(row), Cell(*key(row))).error_codes[row["error_code"] or "unknown"] += (
            row["n"]
        )
    for metric in LATENCY_METRICS:
        bins = (
            rows.exclude(**{metric: None})
            .annotate(bucket=bucket, bin=_latency_bin(metric))
            .values(*columns, "bin")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in bins:
            cells.setdefault(key(row), Cell(*key(row))).latency[metric][row["bin"]] += row["n"]
    return cells


# --- rebuilding the rollups ----------------------------------------------------------------


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def local_midnight(moment: datetime, zone: tzinfo, days_after: int = 0) -> datetime:
    day = moment.astimezone(zone).date() + timedelta(days=days_after)
    return timezone.make_aware(datetime.combine(day, time.min), zone)


def rollup_state() -> RollupState | None:
    return RollupState.objects.filter(pk=1).first()


def known_complete_until(state: RollupState | None) -> datetime | None:
    """The rollups' completeness mark, if it was built in the current time zone."""
    if state is None or state.time_zone != timezone.get_current_timezone_name():
        return None
    return state.complete_until


def rebuild_rollups(start: datetime, end: datetime) -> int | None:
    """Recompute every rollup touching [start, end) from raw rows; returns hourly rows written,
    or None when another rebuild is running (this one is skipped, not queued behind it).

    Idempotent: rebuilding a range replaces it. The completeness mark only moves when the
    rebuilt range joins up with what was already complete, so a partial repair never
    makes the dashboard read rollups that miss rows. Rows are read up to one instant taken
    before the first query, and the mark never passes that instant.
    """
    zone = timezone.get_current_timezone()
    # Whole local days, and the whole UTC hours covering them (a day can start on a half hour).
    days = (local_midnight(start, zone), local_midnight(end - timedelta(microseconds=1), zone, 1))
    hours = (hour_floor(days[0]), hour_ceil(days[1]))
    # Created in its own short transaction, so readers never wait on a long rebuild.
    RollupState.objects.get_or_create(pk=1)
    with transaction.atomic():
        state = RollupState.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            return None
        cutoff = timezone.now()
        known = known_complete_until(state)
        if known is None:
            joins_up = not UsageRecord.objects.filter(finished_at__lt=hours[0]).exists()
            if joins_up:  # a first or time-zone-changing build: every older rollup is stale
                for table in (UsageHourly, UsageDaily, UsageUserDaily):
                    table.objects.all().delete()
        else:
            joins_up = hours[0] <= known
        written = _rebuild(UsageHourly, "hour", zone, hours[0], hours[1], cutoff)
        _rebuild(UsageDaily, "day", zone, days[0], days[1], cutoff)
        _rebuild(UsageUserDaily, "day", zone, days[0], days[1], cutoff)
        if joins_up:
            mark = min(hours[1], hour_floor(cutoff - LATE_WRITE_GRACE))
            state.complete_until = max(mark, known) if known else mark
            state.time_zone = timezone.get_current_timezone_name()
            state.save()
    return written


def _rebuild(
    table: type[UsageRollup],
    unit: str,
    zone: tzinfo,
    lo: datetime,
    hi: datetime,
    cutoff: datetime,
) -> int:
    rows = UsageRecord.objects.filter(finished_at__gte=lo, finished_at__lt=min(hi, cutoff))
    bucket = bucket_expression(unit, zone)
    if table is UsageUserDaily:
        rows = rows.filter(user__isnull=False)
        cells = [*raw_cells(rows, bucket, ("model", "user_id")).values(),
                 *raw_cells(rows, bucket, ("user_id",)).values()]  # fmt: skip
    else:
        cells = list(raw_cells(rows, bucket).values())
    table.objects.filter(start__gte=lo, start__lt=hi).delete()
    table.objects.bulk_create([table(**cell.rollup_fields()) for cell in cells], batch_size=2000)
    return len(cells)


def refresh_rollups(now: datetime | None = None) -> int | None:
    """Bring the rollups up to date: from the completeness mark (or the first row) to now.

    The last few hours are always rebuilt as well, so rows written late land in their hour.
    """
    now = now or timezone.now()
    known = known_complete_until(rollup_state())
    if known is None:
        first = UsageRecord.objects.order_by("finished_at").values_list("finished_at", flat=True)
        start = first.first() or now
    else:
        start = min(known, now - timedelta(hours=3))
    return rebuild_rollups(start, now)


@shared_task(name="dashboard.refresh_rollups", ignore_result=True)
def refresh_rollups_task() -> None:
    """Celery beat runs this every few minutes (settings.CELERY_BEAT_SCHEDULE)."""
    refresh_rollups()
