"""The job a worker runs and the record it hands back: plain JSON, checked on both sides.

A job travels through the broker as the single argument of ``inference.generate``.
The record is the payload of a generation's ``done`` event and of the
``generations.record`` task: everything the Django side stores, so a worker
never needs the database.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from engines.base import ChatMessage, GenerationRequest, SamplingParams

GENERATE_TASK = "inference.generate"
RECORD_TASK = "generations.record"
RECORD_QUEUE = "records"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class JobError(ValueError):
    """A job that does not follow the schema (it fails alone, with ``invalid_request``)."""


@dataclass(frozen=True)
class Job:
    generation_id: str
    model: str
    # {"role", "content"}: content is text, or parts {"type": "text", "text"} and
    # {"type": "image" | "video", "sha256", "url", "content_type"} (url: signed, short-lived).
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    chat_options: dict[str, Any] = field(default_factory=dict)
    thinking: bool = False
    enqueued_at: float = 0.0  # wall clock (time.time()) when the web side queued it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Job:
        if not isinstance(data, dict):
            raise JobError("a job must be a JSON object")
        try:
            job = cls(
                generation_id=str(data["generation_id"]),
                model=str(data["model"]),
                messages=list(data["messages"]),
                params=dict(data["params"]),
                chat_options=dict(data.get("chat_options") or {}),
                thinking=bool(data.get("thinking", False)),
                enqueued_at=float(data.get("enqueued_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JobError(f"malformed job: {exc!r}") from None
        job.sampling()  # raises JobError
        for message in job.messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise JobError("each message needs a role")
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") in ("image", "video") and not SHA256.match(
                        str(part.get("sha256", ""))
                    ):
                        raise JobError("a media part needs its sha256")
            elif not isinstance(content, str):
                raise JobError("message content must be text or a list of parts")
        return job

    def sampling(self) -> SamplingParams:
        """The job's sampling, checked again here: a worker trusts no sender."""
        try:
            return SamplingParams.from_dict(self.params)
        except (TypeError, ValueError) as exc:
            raise JobError(str(exc)) from None

    def request(self, content: list[Any]) -> GenerationRequest:
        """The engine request, with each message's content replaced by ``content[i]``."""
        return GenerationRequest(
            request_id=self.generation_id,
            messages=[
                ChatMessage(m["role"], c) for m, c in zip(self.messages, content, strict=True)
            ],
            params=self.sampling(),
            chat_options=dict(self.chat_options),
        )
