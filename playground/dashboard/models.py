"""Usage accounting: one row per generation, and the rollups the dashboards read.

Rollups are per (hour, model) and per (local day, model), with latency histograms, plus
per (local day, model, user) for the user tables. ``RollupState`` says up to when they are
complete; everything after that instant is read from raw rows, so numbers are always exact.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models

# Latency histograms: bin k holds values in (RATIO**(k-1), RATIO**k] ms, bin 0 holds ≤ 1 ms
# and the last bin everything above RATIO**(BINS-2) ms (about 44 hours, far beyond any
# generation). Reporting a percentile as its bin's upper bound is never below the exact
# value and at most 10% above.
LATENCY_RATIO = 1.1
LATENCY_BINS = 200
LN_RATIO = math.log(LATENCY_RATIO)
LATENCY_METRICS = ("ttft_ms", "tpot_ms", "queue_wait_ms")


def latency_bin(ms: float) -> int:
    """The histogram bin of a latency (the same formula as the SQL in ``usage.py``)."""
    return min(max(math.ceil(math.log(max(ms, 1.0)) / LN_RATIO), 0), LATENCY_BINS - 1)


def bin_upper_bound(index: int) -> float:
    return LATENCY_RATIO**index


class UsageRecord(models.Model):
    """Written once, when a generation ends (never per token)."""

    class Kind(models.TextChoices):
        CHAT = "chat"
        API = "api"
        GRADIO = "gradio"
        ARENA = "arena"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CHAT)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    model = models.CharField(max_length=100)
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL
    )
    message = models.OneToOneField(
        "chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    created_at = models.DateTimeField()  # request enqueued
    finished_at = models.DateTimeField(db_index=True)
    queue_wait_ms = models.FloatField(null=True)
    ttft_ms = models.FloatField(null=True)
    tpot_ms = models.FloatField(null=True)
    total_ms = models.FloatField(null=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    vision_tokens = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField(default=0.0)
    finish_reason = models.CharField(max_length=32)
    error_code = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["model", "finished_at"]),
            models.Index(fields=["user", "finished_at"]),
            # "The last 50 failures" reads this small index backwards.
            models.Index(
                fields=["finished_at"],
                condition=models.Q(finish_reason="error"),
                name="usage_errors_by_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.finished_at:%Y-%m-%d %H:%M} {self.finish_reason}"


class UsageRollup(models.Model):
    """Sums for one bucket and model, rebuilt from raw rows (never updated in place)."""

    start = models.DateTimeField()  # bucket start (an hour, or a local midnight)
    model = models.CharField(max_length=100)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    loops = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    vision_tokens = models.BigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField(default=0.0)
    engine_ms = models.FloatField(default=0.0)  # total minus queue wait, summed
    error_codes = models.JSONField(default=dict)  # {code: count}
    # Latency histograms, one per LATENCY_METRICS entry, sparse: {"bin": count}.
    ttft_ms = models.JSONField(default=dict)
    tpot_ms = models.JSONField(default=dict)
    queue_wait_ms = models.JSONField(default=dict)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H}:00 {self.model} {self.requests} requests"


class UsageHourly(UsageRollup):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "model"], name="usage_hourly_key")]


class UsageDaily(UsageRollup):
    """Days are local days in ``RollupState.time_zone`` (settings.TIME_ZONE when built)."""

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "model"], name="usage_daily_key")]


class UsageUserDaily(UsageRollup):
    """Per local day and user: one row per model, and one with model "" for all models.

    The all-models rows keep the user tables small (a row per active user and day); the
    per-model rows serve a one-user view, and a one-model view of the user tables.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["start", "model", "user"], name="usage_user_daily_key")
        ]
        indexes = [models.Index(fields=["user", "start"])]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d} {self.model or 'all models'} user {self.user_id}"


class RollupState(models.Model):
    """One row: rollups hold every usage row that finished before ``complete_until``."""

    complete_until = models.DateTimeField(null=True)
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"rollups complete until {self.complete_until} ({self.time_zone})"
