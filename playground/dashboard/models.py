"""Usage accounting: one row per generation, and hourly rollups the dashboards read."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# Latency histogram bucket upper bounds (ms); the last bucket is open-ended.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class UsageRecord(models.Model):
    """Written once, when a generation ends (never per token)."""

    class Kind(models.TextChoices):
        CHAT = "chat"
        API = "api"

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
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.finished_at:%Y-%m-%d %H:%M} {self.finish_reason}"


class UsageHourly(models.Model):
    """Sums per (hour, model, user), rebuilt from UsageRecord rows; latencies as histograms."""

    hour = models.DateTimeField()
    model = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    loops = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    vision_tokens = models.BigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    video_seconds = models.FloatField(default=0.0)
    total_ms = models.FloatField(default=0.0)
    ttft_histogram = models.JSONField(default=list)  # counts per LATENCY_BUCKETS_MS (+ overflow)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "model", "user"], name="usage_hourly_unique")
        ]
        indexes = [models.Index(fields=["hour", "model"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model} {self.requests} requests"
