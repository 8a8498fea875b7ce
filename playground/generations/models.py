"""Quota overrides per user and per group (the defaults are settings.PLAYGROUND_QUOTAS)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class QuotaOverride(models.Model):
    """For one user or one group: each limit left empty keeps the default; 0 is unlimited.

    A user's own override wins; among their groups the most generous value counts.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quota",
    )
    group = models.OneToOneField(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="quota"
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    concurrent = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    upload_bytes_per_day = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="quota_for_a_user_or_a_group",
            )
        ]

    def __str__(self) -> str:
        return f"quota for {self.user or self.group}"
