"""Upload (multipart, JSON answers) and download (HTTP Range) of media."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET, require_POST

from playground.generations import quotas
from playground.http import json_error
from playground.media import services
from playground.media.blob_urls import blob_of
from playground.media.models import Attachment, Blob
from playground.media.probe import MediaRejected
from playground.media.storage import CHUNK_SIZE

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
def download(request: HttpRequest, attachment_id: str) -> HttpResponse:
    attachment = services.get_attachment(request.user, attachment_id)
    if attachment is None:
        return json_error(404, "not found")
    return serve_attachment(request, attachment)


def serve_attachment(request: HttpRequest, attachment: Attachment) -> HttpResponse:
    """The file's bytes, honouring HTTP Range (the caller has checked who may see it)."""
    size = attachment.blob.size
    start, end = 0, size - 1
    status = 200
    header = request.headers.get("Range")
    if header:
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
        _read(attachment.blob.sha256, start, end - start + 1),
        status=status,
        content_type=attachment.content_type,
    )
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(end - start + 1)
    response["Cache-Control"] = "private, max-age=3600"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _range_not_satisfiable(size: int) -> HttpResponse:
    response = json_error(416, "requested range not satisfiable")
    response["Content-Range"] = f"bytes */{size}"
    return response


def _read(sha256: str, start: int, length: int) -> Iterator[bytes]:
    with services.storage.open(sha256) as handle:
        handle.seek(start)
        while length > 0:
            block = handle.read(min(CHUNK_SIZE, length))
            if not block:
                return
            length -= len(block)
            yield block


@require_GET
async def blob(request: HttpRequest, token: str) -> HttpResponse:
    """A stored file by signed URL, for model workers (which have no database or session)."""
    sha256 = blob_of(token)
    if sha256 is None:
        return json_error(403, "this link is invalid or has expired")
    size = await Blob.objects.filter(pk=sha256).values_list("size", flat=True).afirst()
    if size is None:
        return json_error(404, "not found")
    response = StreamingHttpResponse(_aread(sha256, size), content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    return response


async def _aread(sha256: str, size: int) -> AsyncIterator[bytes]:
    # Async: under ASGI a sync iterator would be read whole into memory first.
    chunks = _read(sha256, 0, size)
    while True:
        block = await sync_to_async(_next_block)(chunks)
        if block is None:
            return
        yield block


def _next_block(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


@login_required
@require_GET
def thumbnail(request: HttpRequest, attachment_id: str) -> HttpResponse:
    attachment = services.get_attachment(request.user, attachment_id)
    if attachment is None or not attachment.thumbnail_id:
        return json_error(404, "not found")
    with services.storage.open(attachment.thumbnail_id) as handle:
        response = HttpResponse(handle.read(), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
