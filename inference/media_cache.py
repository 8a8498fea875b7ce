"""Media for the engine, fetched by the worker over HTTP: no database on a GPU host.

A job's media parts carry the file's sha256 and a short-lived signed URL on the
web side. The worker downloads each file once, checks its hash, and keeps it
in a local cache by content (atomic rename, so two threads or processes never
see half a file).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from engines.base import EngineError
from inference.config import env_int

SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/avif": ".avif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "image/vnd.microsoft.icon": ".ico",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}
BLOCK = 1024 * 1024


def local_copy(
    part: dict[str, Any], cache_dir: Path, timeout_s: float = 60.0, max_bytes: int | None = None
) -> Path:
    """The local path of a media part's file, downloading and checking it if needed."""
    sha256 = str(part["sha256"])
    path = cache_dir / f"{sha256}{SUFFIXES.get(str(part.get('content_type', '')), '')}"
    if path.exists():
        return path
    url = str(part.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise EngineError("media_unavailable", "an attachment reached the worker without a web URL")
    limit = (
        max_bytes if max_bytes is not None else env_int("PLAYGROUND_MAX_UPLOAD_BYTES", 512 * 2**20)
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{id(part)}.part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            size = 0
            while block := response.read(BLOCK):
                size += len(block)
                if size > limit:
                    raise EngineError("media_unavailable", "an attachment is larger than allowed")
                digest.update(block)
                out.write(block)
    except EngineError:
        partial.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        why = "its link expired" if exc.code in (403, 410) else f"HTTP {exc.code}"
        raise EngineError("media_unavailable", f"could not fetch an attachment ({why})") from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise EngineError("media_unavailable", f"could not fetch an attachment: {exc}") from None
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise EngineError("media_unavailable", "an attachment arrived damaged (hash mismatch)")
    os.replace(partial, path)
    return path


def local_content(content: Any, cache_dir: Path) -> Any:
    """A message's content with media parts turned into ``{"type", "path"}`` for the engine."""
    if isinstance(content, str):
        return content
    return [
        {"type": part["type"], "path": str(local_copy(part, cache_dir))}
        if part.get("type") in ("image", "video")
        else part
        for part in content
    ]
