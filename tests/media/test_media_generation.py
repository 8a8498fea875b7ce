"""Media through the whole path: upload over HTTP, attach in a generate frame, the vision model answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket
from tests.media import files
from tests.media.test_upload import _upload

pytestmark = pytest.mark.slow


def _generate_frame(conversation, content, attachments, **extra):  # type: ignore[no-untyped-def]
    return {
        "type": "generate",
        "conversation_id": str(conversation.id),
        "content": content,
        "attachments": attachments,
        **extra,
    }


def test_the_vision_model_answers_with_an_image_and_a_video(
    stack, http, alice, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    session = http(alice)
    image = _upload(session, stack, "red.png", files.image_bytes("PNG", size=(96, 64))).json()
    clip = files.video_file(tmp_path / "clip.mp4", seconds=2.0, fps=10)
    video = _upload(session, stack, "clip.mp4", clip.read_bytes()).json()
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        ws.send(
            _generate_frame(
                conversation,
                "Describe these.",
                [image["id"], video["id"]],
                thinking=False,
                params={"max_tokens": 6},
            )
        )
        accepted = ws.recv()
        assert accepted["type"] == "accepted", accepted
        events = ws.events_until_done(accepted["generation_id"])
    done = events[-1]
    assert done["finish_reason"] == "length"
    reply = Message.objects.get(pk=accepted["generation_id"])
    assert (reply.images, reply.videos) == (1, 1)
    assert reply.video_seconds == pytest.approx(2.0, abs=0.15)
    # The model really read them: the prompt holds the processor's image and video tokens.
    assert reply.vision_tokens == done["usage"]["vision_tokens"] > 0
    assert reply.prompt_tokens > reply.vision_tokens
    user_message = Message.objects.get(pk=accepted["user_message_id"])
    assert sorted(str(a.id) for a in user_message.attachments.all()) == sorted(
        [image["id"], video["id"]]
    )


def test_bob_cannot_attach_alices_media(stack, http, alice, bob) -> None:  # type: ignore[no-untyped-def]
    image = _upload(http(alice), stack, "a.png", files.image_bytes("PNG")).json()
    conversation = create_conversation(bob, "qwen3.5-tiny")
    with ChatSocket(stack, bob) as ws:
        ws.send(_generate_frame(conversation, "what is this?", [image["id"]]))
        event = ws.recv()
    assert event["type"] == "error" and event["code"] == "not_found"
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_model_without_vision_refuses_media_before_queueing(stack, http, alice) -> None:  # type: ignore[no-untyped-def]
    image = _upload(http(alice), stack, "a.png", files.image_bytes("PNG")).json()
    conversation = create_conversation(alice, "smollm2")
    with ChatSocket(stack, alice) as ws:
        ws.send(_generate_frame(conversation, "what is this?", [image["id"]]))
        event = ws.recv()
    assert event["type"] == "error" and "cannot see images or videos" in event["message"]
    assert not Message.objects.filter(conversation=conversation).exists()


def test_more_files_than_allowed_are_refused(stack, http, alice) -> None:  # type: ignore[no-untyped-def]
    session = http(alice)
    ids = [
        _upload(session, stack, f"{i}.png", files.image_bytes("PNG", color=(i * 20, 0, 0))).json()[
            "id"
        ]
        for i in range(6)
    ]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        ws.send(_generate_frame(conversation, "so many", ids))
        event = ws.recv()
    assert event["type"] == "error" and "at most 5" in event["message"]
    assert not Message.objects.filter(conversation=conversation).exists()
