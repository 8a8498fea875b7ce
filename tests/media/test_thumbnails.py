"""A thumbnail whose job fails is retried (Celery autoretry, with backoff), and one whose job
was lost is sent again when somebody asks for it. Real app worker, real broker."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from playground.media.models import Attachment, Blob, BlobChunk
from playground.media.services import storage
from playground.media.thumbnails import make_thumbnail
from tests.media import files
from tests.media.test_upload import _wait_for_thumbnail


def _attachment(user, data: bytes, *, with_bytes: bool) -> Attachment:  # type: ignore[no-untyped-def]
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    blob = Blob.objects.create(sha256=sha, size=len(data))
    if with_bytes:
        BlobChunk.objects.create(blob=blob, index=0, data=data)
    return Attachment.objects.create(
        owner=user,
        blob=blob,
        filename="photo.png",
        content_type="image/png",
        kind=Attachment.Kind.IMAGE,
        width=48,
        height=32,
    )


def _wait_for_log(workers, words: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if words in workers.logs("app"):
            return
        time.sleep(0.1)
    raise AssertionError(f"the app worker never logged {words!r}:\n{workers.logs('app')}")


def test_a_thumbnail_job_that_fails_once_is_retried(stack, workers, http, alice) -> None:  # type: ignore[no-untyped-def]
    data = files.image_bytes("PNG", size=(48, 32), color=(0, 0, 200))
    # The blob's bytes are not there yet (as when the database blinks): the first try fails.
    attachment = _attachment(alice, data, with_bytes=False)
    make_thumbnail.apply_async(args=[str(attachment.id)], queue=settings.MEDIA_QUEUE)
    _wait_for_log(workers, f"thumbnail for {attachment.id} failed (try 1 of")
    assert Attachment.objects.get(pk=attachment.pk).thumbnail_id is None
    BlobChunk.objects.create(blob_id=attachment.blob_id, index=0, data=data)
    response = _wait_for_thumbnail(http(alice), stack, str(attachment.id))
    assert response.headers["Content-Type"] == "image/jpeg"


def test_a_lost_thumbnail_job_is_sent_again_when_the_thumbnail_is_asked_for(
    stack, http, alice
) -> None:  # type: ignore[no-untyped-def]
    data = files.image_bytes("PNG", size=(48, 32), color=(0, 200, 0))
    attachment = _attachment(alice, data, with_bytes=True)  # uploaded, but no job was queued
    session = http(alice)
    url = f"{stack}/media/{attachment.id}/thumbnail/"
    assert session.get(url, timeout=30).status_code == 404
    time.sleep(1.0)
    assert Attachment.objects.get(pk=attachment.pk).thumbnail_id is None  # not sent: too new
    # Uploaded a while ago and still without a thumbnail: asking for it sends the job again.
    Attachment.objects.filter(pk=attachment.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    response = _wait_for_thumbnail(session, stack, str(attachment.id))
    assert response.status_code == 200
    assert storage.exists(Attachment.objects.get(pk=attachment.pk).thumbnail_id)
