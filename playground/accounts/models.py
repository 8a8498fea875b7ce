"""Invite codes for PLAYGROUND_SIGNUP_MODE=invite."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_code() -> str:
    return secrets.token_urlsafe(12)


class InviteCode(models.Model):
    """One account per code; the admin or `manage.py invite create` makes them."""

    code = models.CharField(max_length=64, unique=True, default=new_code)
    note = models.CharField(max_length=200, blank=True, help_text="who it is for")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_by = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invite",
    )
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.code} ({'used' if self.used_by_id else 'unused'})"
