"""API keys: shown once, stored as a SHA-256 hash (keys are 256 random bits, so a fast hash
is the right one: there is nothing to brute-force), revocable."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

PREFIX = "qp-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    hashed = models.CharField(max_length=64, unique=True)
    shown = models.CharField(
        max_length=16, help_text="the key's first characters, to tell keys apart"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.shown}…)"

    @classmethod
    def active(cls, key: str) -> ApiKey | None:
        """The unrevoked key ``key`` (as sent: ``Authorization: Bearer <key>``) of an active
        user, with that user; None for anything else."""
        return (
            cls.objects.select_related("user")
            .filter(hashed=hash_key(key.strip()), revoked_at__isnull=True, user__is_active=True)
            .first()
        )

    @classmethod
    def issue(cls, user: object, name: str) -> tuple[ApiKey, str]:
        """A new key for ``user``: (the stored row, the key itself, never stored)."""
        key = PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user, name=name[:100] or "key", hashed=hash_key(key), shown=key[:10]
        )
        return row, key
