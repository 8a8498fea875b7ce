"""A Django Storage over PostgreSQL: content-addressed blobs in fixed-size chunks.

Names are sha256 hex digests. Saving streams the content in chunks (constant
memory) and stores a content once; opening returns a seekable file that reads
one chunk at a time, so HTTP Range requests cost only the chunks they touch.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction

from playground.media.models import Blob, BlobChunk

CHUNK_SIZE = 1024 * 1024


def sha256_of(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while block := stream.read(CHUNK_SIZE):
        digest.update(block)
        size += len(block)
    stream.seek(0)
    return digest.hexdigest(), size


class BlobReader(io.RawIOBase):
    """Read-only, seekable view of a stored blob."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.position = 0
        self._chunk_index = -1
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.blob.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.blob.size:
            return 0
        index, offset = divmod(self.position, CHUNK_SIZE)
        if index != self._chunk_index:
            self._chunk = bytes(
                BlobChunk.objects.values_list("data", flat=True).get(blob=self.blob, index=index)
            )
            self._chunk_index = index
        piece = self._chunk[offset : offset + len(buffer)]
        buffer[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)


class PostgresBlobStorage(Storage):
    def _save(self, name: str, content: File) -> str:
        sha, size = sha256_of(content)
        with transaction.atomic():
            blob, created = Blob.objects.select_for_update().get_or_create(
                sha256=sha, defaults={"size": size}
            )
            if created:
                index = 0
                while data := content.read(CHUNK_SIZE):
                    BlobChunk.objects.create(blob=blob, index=index, data=data)
                    index += 1
        return sha

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name  # content-addressed: the same name is the same content

    def _open(self, name: str, mode: str = "rb") -> File:
        blob = Blob.objects.get(sha256=name)
        return File(io.BufferedReader(BlobReader(blob), buffer_size=CHUNK_SIZE), name=name)

    def exists(self, name: str) -> bool:
        return Blob.objects.filter(sha256=name).exists()

    def size(self, name: str) -> int:
        return int(Blob.objects.values_list("size", flat=True).get(sha256=name))

    def delete(self, name: str) -> None:
        Blob.objects.filter(sha256=name, attachments__isnull=True).delete()

    def url(self, name: str | None) -> str:
        raise NotImplementedError("blobs are served through attachment URLs, which check access")
