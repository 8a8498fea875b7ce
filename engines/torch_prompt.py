"""Turning a chat request into model inputs: token ids, and pixels for vision-language models.

Runs in a worker thread (never on the scheduler thread, which would stall
every stream in the batch, nor on the event loop). Images are made upright
8-bit RGB (engines.media) and go through the checkpoint's image processor;
videos are sampled the way Qwen 3.5 expects (engines.qwen35.video, frames
upright too) and go through its video processor. Sampled frames are
cached by file, so a follow-up question about the same video does not decode
it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.base import ChatMessage, EngineError, GenerationRequest

FRAME_CACHE_SIZE = 16


@dataclass
class PreparedPrompt:
    input_ids: list[int]
    vision: dict[str, Any] = field(default_factory=dict)  # tensors for the model's forward
    vision_tokens: int = 0


@dataclass
class CollectedMedia:
    messages: list[dict[str, Any]] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)  # PIL images, RGB
    videos: list[Any] = field(default_factory=list)  # sampled frames per video
    video_metadata: list[dict[str, Any]] = field(default_factory=list)


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    return list(message.content)


class PromptBuilder:
    def __init__(
        self, tokenizer: Any, processor: Any | None, chat_template_kwargs: Mapping[str, Any]
    ) -> None:
        self.tokenizer = tokenizer
        self.processor = processor
        self.chat_template_kwargs = dict(chat_template_kwargs)
        self._frames: OrderedDict[str, Any] = OrderedDict()
        self._frames_lock = threading.Lock()
        self.frame_cache_hits = 0

    def collect(self, request: GenerationRequest) -> CollectedMedia:
        """The chat messages with media replaced by placeholders, and the media loaded."""
        collected = CollectedMedia()
        for message in request.messages:
            parts = []
            for part in _parts(message):
                kind = part.get("type")
                if kind in ("image", "video"):
                    if self.processor is None:
                        raise EngineError(
                            "media_not_supported", "this model cannot see images or videos"
                        )
                    if kind == "image":
                        collected.images.append(self._image(part["path"]))
                    else:
                        sampled = self.sampled_video(part["path"])
                        collected.videos.append(sampled.frames)
                        collected.video_metadata.append(
                            {
                                "fps": sampled.video_fps,
                                "total_num_frames": sampled.total_frames,
                                "frames_indices": sampled.indices,
                                "duration": sampled.total_frames / sampled.video_fps,
                            }
                        )
                    parts.append({"type": kind})
                else:
                    parts.append({"type": "text", "text": part.get("text", "")})
            content: Any = (
                parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts
            )
            collected.messages.append({"role": message.role, "content": content})
        return collected

    def chat_text(self, request: GenerationRequest, collected: CollectedMedia) -> str:
        """The prompt as text, chat template applied (media as their placeholders)."""
        options = {**self.chat_template_kwargs, **request.chat_options}
        text: str = self.tokenizer.apply_chat_template(
            collected.messages, add_generation_prompt=True, tokenize=False, **options
        )
        return text

    def build(self, request: GenerationRequest) -> PreparedPrompt:
        collected = self.collect(request)
        messages, images, videos = collected.messages, collected.images, collected.videos
        metadata = collected.video_metadata
        options = {**self.chat_template_kwargs, **request.chat_options}
        if not images and not videos:
            encoded = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, **options
            )
            ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
            return PreparedPrompt([int(i) for i in ids])
        assert self.processor is not None  # media parts were refused above otherwise
        text = self.chat_text(request, collected)
        inputs = self.processor(
            text=[text],
            images=images or None,
            videos=videos or None,
            videos_kwargs={"do_sample_frames": False, "video_metadata": metadata} if videos else {},
            return_tensors="pt",
        )
        ids = inputs.pop("input_ids")[0].tolist()
        config = self.processor.tokenizer
        pads = {
            config.convert_tokens_to_ids("<|image_pad|>"),
            config.convert_tokens_to_ids("<|video_pad|>"),
        }
        return PreparedPrompt(ids, dict(inputs), sum(1 for i in ids if i in pads))

    def count_text_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens without decoding media (each image or video counts as its placeholder)."""
        messages = []
        for message in request.messages:
            parts = [
                {"type": p["type"]}
                if p.get("type") in ("image", "video")
                else {"type": "text", "text": p.get("text", "")}
                for p in _parts(message)
            ]
            simple = len(parts) == 1 and parts[0]["type"] == "text"
            messages.append(
                {"role": message.role, "content": parts[0]["text"] if simple else parts}
            )
        options = {**self.chat_template_kwargs, **request.chat_options}
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, **options
        )
        return len(encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)

    def _image(self, path: str) -> Any:
        from engines.media import load_image

        return load_image(path)  # upright (EXIF orientation), first frame, 8-bit RGB

    def sampled_video(self, path: str) -> Any:
        from engines.qwen35.video import sample_video

        key = str(Path(path).resolve())
        with self._frames_lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                self.frame_cache_hits += 1
                return self._frames[key]
        video_config = getattr(self.processor, "video_processor", None)
        total_pixels = None
        if video_config is not None and isinstance(getattr(video_config, "size", None), dict):
            total_pixels = video_config.size.get("longest_edge")
        sampled = sample_video(path, total_pixels=total_pixels)
        with self._frames_lock:
            self._frames[key] = sampled
            while len(self._frames) > FRAME_CACHE_SIZE:
                self._frames.popitem(last=False)
        return sampled
