"""Upload (multipart, JSON answers) and download of media.

Downloads stream asynchronously: an async iterator reads one stored chunk at a
time on the request's database thread, and the ASGI server sends it before the
next is read (a synchronous iterator would be read whole into memory under
ASGI). They answer HTTP Range requests (206 with Content-Range, 416 outside the
file; If-Range honoured) and conditional requests (ETag: the content's sha256;
Last-Modified: the upload time).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_GET, require_POST

from playground.generations import quotas
from playground.http import json_error
from playground.media import services
from playground.media.blob_urls import blob_of
from playground.media.models import Attachment, Blob, BlobChunk
from playground.media.probe import MediaRejected
from playground.media.storage import CHUNK_SIZE

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
READ_SIZE = 256 * 1024  # bytes per database read while streaming
# An attachment still without a thumbnail this long after upload has lost its job
# (a worker killed mid-task): the thumbnail view sends it again, at most once a minute.
THUMBNAIL_RESEND_AFTER = timedelta(seconds=30)
THUMBNAIL_RESEND_EVERY_S = 60


@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return json_error(401, "log in to upload files")
    files = request.FILES.getlist("file")
    if len(files) != 1:
        return json_error(422, "send exactly one file, in the form field 'file'")
    try:
        quotas.check_upload(request.user, files[0].size or 0)
    except quotas.RateLimited as exc:
        response = json_error(429, exc.message)
        response["Retry-After"] = str(exc.retry_after)
        return response
    try:
        attachment = services.ingest_upload(request.user, files[0])
    except MediaRejected as exc:
        return json_error(exc.status, exc.message)
    return JsonResponse(services.attachment_json(attachment), status=201)


@login_required
@require_GET
async def download(request: HttpRequest, attachment_id: str) -> HttpResponse:
    user = await request.auser()
    attachment = await sync_to_async(services.get_attachment)(user, attachment_id)
    if attachment is None:
        return json_error(404, "not found")
    return serve_attachment(request, attachment)


def serve_attachment(request: HttpRequest, attachment: Attachment) -> HttpResponse:
    """The file's bytes, streamed, honouring HTTP Range (the caller has checked who may
    see it: a shared conversation's page)."""
    return _ranged(
        request,
        attachment.blob.sha256,
        attachment.blob.size,
        attachment.content_type,
        attachment.created_at,
        cache_control="private, max-age=3600",
    )


@require_GET
async def blob(request: HttpRequest, token: str) -> HttpResponse:
    """A stored file by signed URL, for model workers (which have no database or session)."""
    sha256 = blob_of(token)
    if sha256 is None:
        return json_error(403, "this link is invalid or has expired")
    found = await Blob.objects.filter(pk=sha256).values_list("size", "created_at").afirst()
    if found is None:
        return json_error(404, "not found")
    size, created_at = found
    return _ranged(
        request,
        sha256,
        size,
        "application/octet-stream",
        created_at,
        cache_control="private, no-store",
    )


def _ranged(
    request: HttpRequest,
    sha256: str,
    size: int,
    content_type: str,
    modified: datetime,
    *,
    cache_control: str,
) -> HttpResponse:
    """A streamed answer for a stored file: whole, one Range, or a conditional 304/412."""
    etag = f'"{sha256}"'
    last_modified = int(modified.timestamp())
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(last_modified),
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
    }
    conditional = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if conditional is not None:
        for name, value in headers.items():
            conditional[name] = value
        return conditional
    start, end, status = 0, size - 1, 200
    header = request.headers.get("Range")
    if header and _if_range_holds(request.headers.get("If-Range"), etag, last_modified):
        match = RANGE.match(header.strip())
        if not match or (not match[1] and not match[2]):
            return _range_not_satisfiable(size)
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # suffix range: the last N bytes
            start = max(0, size - int(match[2]))
        if start >= size or start > end:
            return _range_not_satisfiable(size)
        status = 206
    response = StreamingHttpResponse(
        _stream(sha256, start, end - start + 1), status=status, content_type=content_type
    )
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(end - start + 1)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _if_range_holds(if_range: str | None, etag: str, last_modified: int) -> bool:
    """RFC 9110 13.1.5: the Range applies only if the validator still matches."""
    if not if_range:
        return True
    if if_range.startswith('"') or if_range.startswith("W/"):
        return if_range == etag  # strong comparison; a weak tag never matches
    date = parse_http_date_safe(if_range)
    return date is not None and date == last_modified


def _range_not_satisfiable(size: int) -> HttpResponse:
    response = json_error(416, "requested range not satisfiable")
    response["Content-Range"] = f"bytes */{size}"
    return response


async def _stream(sha256: str, start: int, length: int) -> AsyncIterator[bytes]:
    """Bytes [start, start + length) of a blob, at most one stored chunk in memory at a time."""
    position, end = start, start + length
    try:
        while position < end:
            block = await sync_to_async(_read_block)(sha256, position, end - position)
            if not block:
                return
            position += len(block)
            yield block
    finally:
        # Under ASGI each request reads on a thread of its own, so its connection would
        # not be reused; close it now rather than leave it to CONN_MAX_AGE.
        await sync_to_async(_close_connection)()


def _close_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def _read_block(sha256: str, position: int, most: int) -> bytes:
    """Up to ``most`` bytes from ``position``, never past the end of a stored chunk nor more
    than READ_SIZE: PostgreSQL reads only that slice of the chunk (media do not compress, so
    their chunks are stored uncompressed), and a reader holds a few READ_SIZEs at most."""
    index, offset = divmod(position, CHUNK_SIZE)
    length = min(most, READ_SIZE, CHUNK_SIZE - offset)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT substring(data FROM %s FOR %s) FROM {BlobChunk._meta.db_table} "
            "WHERE blob_id = %s AND index = %s",
            [offset + 1, length, sha256, index],
        )
        row = cursor.fetchone()
    return bytes(row[0]) if row is not None else b""


@login_required
@require_GET
def thumbnail(request: HttpRequest, attachment_id: str) -> HttpResponse:
    attachment = services.get_attachment(request.user, attachment_id)
    if attachment is None:
        return json_error(404, "not found")
    if not attachment.thumbnail_id:
        if timezone.now() - attachment.created_at > THUMBNAIL_RESEND_AFTER:
            _resend_thumbnail_job(str(attachment.id))
        return json_error(404, "not found")
    with services.storage.open(attachment.thumbnail_id) as handle:
        response = HttpResponse(handle.read(), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _resend_thumbnail_job(attachment_id: str) -> None:
    from inference.redis_clients import get_redis

    key = f"media:thumbnail-resent:{attachment_id}"
    try:
        first = get_redis().set(key, "1", nx=True, ex=THUMBNAIL_RESEND_EVERY_S)
    except Exception:  # Redis down: the broker is too, so there is nothing to resend to
        return
    if first:
        services.enqueue_thumbnail(attachment_id)
