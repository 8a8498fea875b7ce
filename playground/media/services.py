"""Taking in an upload: check it by content, store its bytes once, record the attachment."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from playground.media.models import Attachment, Blob
from playground.media.probe import MediaRejected, probe
from playground.media.storage import PostgresBlobStorage

storage = PostgresBlobStorage()
logger = logging.getLogger(__name__)


def limits() -> dict[str, Any]:
    return settings.MEDIA_LIMITS


def ingest_upload(user: Any, upload: UploadedFile) -> Attachment:
    """Validate and store ``upload`` for ``user``; ``MediaRejected`` leaves nothing stored."""
    limit = limits()
    if upload.size == 0:
        raise MediaRejected(422, "the file is empty")
    if upload.size is not None and upload.size > limit["MAX_FILE_BYTES"]:
        raise MediaRejected(
            413,
            f"the file is {upload.size:,} bytes; the limit is {limit['MAX_FILE_BYTES']:,} bytes",
        )
    path = upload.temporary_file_path()  # always on disk (TemporaryFileUploadHandler)
    info = probe(
        path,
        max_image_pixels=limit["MAX_IMAGE_PIXELS"],
        max_video_seconds=limit["MAX_VIDEO_SECONDS"],
    )
    with transaction.atomic():
        sha = storage.save("upload", upload)
        attachment = Attachment.objects.create(
            owner=user,
            blob=Blob.objects.get(sha256=sha),
            filename=(upload.name or "upload")[:255],
            content_type=info.content_type,
            kind=info.kind,
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            fps=info.fps,
            codec=info.codec,
        )
        transaction.on_commit(lambda: enqueue_thumbnail(str(attachment.id)))
    return attachment


def enqueue_thumbnail(attachment_id: str) -> None:
    """Send the thumbnail job. If the broker refuses, the upload still stands: the
    thumbnail view sends the job again when the thumbnail is asked for."""
    from playground.media.thumbnails import make_thumbnail

    try:
        make_thumbnail.apply_async(args=[attachment_id], queue=settings.MEDIA_QUEUE)
    except Exception:
        logger.warning("could not queue the thumbnail of %s", attachment_id, exc_info=True)


def get_attachment(user: Any, attachment_id: Any) -> Attachment | None:
    """The user's attachment, or None (also for someone else's: the two look the same)."""
    import uuid

    try:
        pk = uuid.UUID(str(attachment_id))
    except ValueError:
        return None
    return Attachment.objects.select_related("blob").filter(pk=pk, owner_id=user.pk).first()


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": str(attachment.id),
        "kind": attachment.kind,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.blob.size,
        "sha256": attachment.blob.sha256,
        "width": attachment.width,
        "height": attachment.height,
        "duration_s": attachment.duration_s,
        "fps": attachment.fps,
        "url": f"/media/{attachment.id}/",
        "thumbnail_url": f"/media/{attachment.id}/thumbnail/" if attachment.thumbnail_id else None,
    }
