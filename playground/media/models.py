"""Uploaded images and videos. Bytes live in PostgreSQL, content-addressed, in chunks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Blob(models.Model):
    """One distinct content (sha256). Stored once however many uploads share it."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} bytes)"


class BlobChunk(models.Model):
    """A fixed-size slice of a blob; a Range read touches only the chunks it needs."""

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "index"], name="blob_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.blob_id}[{self.index}]"


class Attachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    codec = models.CharField(max_length=32, blank=True)
    # A JPEG thumbnail (poster frame for video), made by a worker after upload.
    thumbnail = models.ForeignKey(
        Blob, null=True, blank=True, on_delete=models.SET_NULL, related_name="thumbnail_of"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.filename}"
