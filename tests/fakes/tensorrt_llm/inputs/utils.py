"""FAKE ``tensorrt_llm.inputs.utils``: ``VideoData``, a video's frames with their metadata,
as the Qwen VL input processors read them (``video_data.frames``, ``.metadata``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class VideoData:
    frames: Any
    metadata: dict[str, Any]
