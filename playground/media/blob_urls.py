"""Short-lived signed URLs for stored files, so a model worker fetches media without the
database: the job carries ``/media/blob/<token>/``, where the token signs the file's
sha256 and the time it was made (Django's TimestampSigner, keyed by SECRET_KEY)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "playground.media.blob"


def signed_blob_url(sha256: str) -> str:
    token = signing.TimestampSigner(salt=SALT).sign(sha256)
    return settings.PLAYGROUND_INTERNAL_URL.rstrip("/") + reverse("media:blob", args=[token])


def blob_of(token: str) -> str | None:
    """The sha256 a token names, or None if it is forged or older than its lifetime."""
    try:
        return signing.TimestampSigner(salt=SALT).unsign(
            token, max_age=settings.MEDIA_LIMITS["BLOB_URL_TTL_S"]
        )
    except signing.BadSignature:  # includes SignatureExpired
        return None
