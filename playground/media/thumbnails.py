"""Thumbnails for images and poster frames for videos, made by a Celery worker (never in a request)."""

from __future__ import annotations

import io
import tempfile

from celery import shared_task
from django.core.files import File
from PIL import Image

from playground.media.models import Attachment, Blob
from playground.media.storage import PostgresBlobStorage

THUMBNAIL_EDGE = 320
storage = PostgresBlobStorage()


def poster_frame(path: str) -> Image.Image:
    """A frame a tenth of the way in (the first frame is often black), as RGB."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            container.seek(int(stream.duration * 0.1), stream=stream)
        for frame in container.decode(stream):
            return frame.to_image().convert("RGB")
    raise ValueError("video has no frames")


def make_thumbnail_jpeg(attachment: Attachment) -> bytes:
    with storage.open(attachment.blob_id) as source, tempfile.NamedTemporaryFile() as local:
        while block := source.read(1024 * 1024):
            local.write(block)
        local.flush()
        if attachment.kind == Attachment.Kind.VIDEO:
            image = poster_frame(local.name)
        else:
            with Image.open(local.name) as opened:
                image = opened.convert("RGB")
    image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


@shared_task(name="media.make_thumbnail", ignore_result=True)
def make_thumbnail(attachment_id: str) -> None:
    """Store a JPEG thumbnail (poster frame for video) for the attachment."""
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None or attachment.thumbnail_id:
        return
    sha = storage.save("thumbnail", File(io.BytesIO(make_thumbnail_jpeg(attachment))))
    Attachment.objects.filter(pk=attachment_id).update(thumbnail=Blob.objects.get(sha256=sha))
