"""Thumbnails for images and poster frames for videos, made by a Celery worker (never in a request).

Upright, as the model sees the file (engines.media): EXIF orientation for
photos, the display rotation for videos. A job that fails (the database
blinked, the worker was short of memory) is retried with exponential backoff;
the thumbnail view also re-sends the job for an attachment still without one
after a while (a job lost with its worker), at most once a minute.
"""

from __future__ import annotations

import io
import logging
import tempfile
from typing import Any

from celery import shared_task
from django.core.files import File
from PIL import Image

from engines.media import load_image, open_video, upright_frame
from playground.media.models import Attachment, Blob
from playground.media.storage import PostgresBlobStorage

THUMBNAIL_EDGE = 320
MAX_RETRIES = 6  # backoff 1, 2, 4, 8, 16, 32 s (with jitter, capped at 60 s)
storage = PostgresBlobStorage()
logger = logging.getLogger(__name__)


def poster_frame(path: str) -> Image.Image:
    """A frame a tenth of the way in (the first frame is often black), upright, as RGB."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            container.seek(int(stream.duration * 0.1), stream=stream)
        for frame in container.decode(stream):
            return upright_frame(frame, stream)
    raise ValueError("video has no frames")


def make_thumbnail_jpeg(attachment: Attachment) -> bytes:
    with storage.open(attachment.blob_id) as source, tempfile.NamedTemporaryFile() as local:
        while block := source.read(1024 * 1024):
            local.write(block)
        local.flush()
        if attachment.kind == Attachment.Kind.VIDEO:
            image = poster_frame(local.name)
        else:
            image = load_image(local.name)
    image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


@shared_task(
    bind=True,
    name="media.make_thumbnail",
    ignore_result=True,
    autoretry_for=(Exception,),
    max_retries=MAX_RETRIES,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
)
def make_thumbnail(self: Any, attachment_id: str) -> None:
    """Store a JPEG thumbnail (poster frame for video) for the attachment."""
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None or attachment.thumbnail_id:
        return
    try:
        jpeg = make_thumbnail_jpeg(attachment)
    except Exception as exc:
        logger.warning(
            "thumbnail for %s failed (try %d of %d): %s",
            attachment_id,
            self.request.retries + 1,
            MAX_RETRIES + 1,
            exc,
        )
        raise
    sha = storage.save("thumbnail", File(io.BytesIO(jpeg)))
    Attachment.objects.filter(pk=attachment_id).update(thumbnail=Blob.objects.get(sha256=sha))
