"""The tiny Qwen 3.5 MoE through the whole path: socket → Celery → engine → socket."""

from __future__ import annotations

import pytest

from engines.qwen35.family import PRESETS
from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, deltas, text_of

pytestmark = pytest.mark.slow


def test_thinking_on_streams_reasoning(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "Why is the sky blue?", params={"max_tokens": 24})
        events = ws.events_until_done(accepted["generation_id"])
    # Random weights never close </think>: everything the model says is reasoning.
    assert {e["kind"] for e in deltas(events)} == {"reasoning"}
    assert events[-1]["finish_reason"] == "length"
    assert events[-1]["usage"]["output_tokens"] == 24
    reply = Message.objects.get(pk=accepted["generation_id"])
    assert reply.thinking is True
    # Stored exactly as streamed (no trimming), and `done` carries the same text.
    assert reply.reasoning == text_of(events, "reasoning") == events[-1]["reasoning"]
    assert reply.content == "" == events[-1]["content"]
    assert reply.reasoning_ms is not None and reply.reasoning_ms > 0
    assert reply.params == {**reply.params, **PRESETS["thinking-general"]["sampling"]}


def test_thinking_off_streams_an_answer(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(
            conversation.id, "Why is the sky blue?", thinking=False, params={"max_tokens": 16}
        )
        events = ws.events_until_done(accepted["generation_id"])
    assert {e["kind"] for e in deltas(events)} == {"content"}
    reply = Message.objects.get(pk=accepted["generation_id"])
    assert reply.thinking is False and reply.reasoning == ""
    assert reply.content == text_of(events).lstrip("\n")


def test_a_preset_sets_sampling_and_mode(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(
            conversation.id, "hello", preset="instruct-reasoning", params={"max_tokens": 4}
        )
        events = ws.events_until_done(accepted["generation_id"])
    assert {e["kind"] for e in deltas(events)} == {"content"}
    reply = Message.objects.get(pk=accepted["generation_id"])
    for key, value in PRESETS["instruct-reasoning"]["sampling"].items():
        assert reply.params[key] == value
    assert reply.thinking is False


def test_an_over_long_prompt_is_refused_by_the_worker_before_generating(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")  # context 1,024 in tests
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "Tell me about tokens. " * 400)
        events = ws.events_until_done(accepted["generation_id"])
    errors = [e for e in events if e["type"] == "error"]
    assert errors and errors[0]["code"] == "context_length_exceeded"
    assert "1,024" in errors[0]["message"]
    assert not [e for e in events if e["type"] == "delta"]  # nothing was generated
    assert events[-1]["finish_reason"] == "error"
    # Nothing of the turn is kept: the conversation is as it was.
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_model_without_a_live_worker_is_refused(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        ws.send(
            {
                "type": "generate",
                "conversation_id": str(conversation.id),
                "content": "hi",
                "model": "qwen3.5-397b-a17b",
            }
        )
        event = ws.recv()
    assert event["type"] == "error" and event["code"] == "model_unavailable"
    assert "no worker is serving it" in event["message"]
    assert not Message.objects.filter(conversation=conversation).exists()


def test_bad_thinking_and_preset_values_are_refused(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "qwen3.5-tiny")
    with ChatSocket(stack, alice) as ws:
        for extra in ({"thinking": "yes"}, {"preset": "turbo"}):
            ws.send(
                {
                    "type": "generate",
                    "conversation_id": str(conversation.id),
                    "content": "hi",
                    **extra,
                }
            )
            event = ws.recv()
            assert event["type"] == "error" and event["code"] == "invalid_request"


def test_the_catalogue_lists_the_family_and_who_is_served(stack, alice, client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    models = {m["name"]: m for m in client.get("/models/").json()["models"]}
    family = [n for n in models if n.startswith("qwen3.5-") and n != "qwen3.5-tiny"]
    assert len(family) == 8
    big = models["qwen3.5-397b-a17b"]
    assert big["total_params"] == "397B" and big["active_params"] == "17B"
    assert big["architecture"] == "MoE" and big["context_length"] == 262_144
    assert big["modalities"] == ["text", "image", "video"] and big["thinking"] == "on"
    assert not big["served"] and big["workers"] == 0 and big["backend"] is None
    assert models["qwen3.5-27b"]["architecture"] == "dense"
    assert models["qwen3.5-tiny"]["served"] and models["smollm2"]["served"]
    # What a live worker announces in its heartbeat.
    assert models["smollm2"]["backend"] == "torch" and models["smollm2"]["max_batch"] == 16
    assert models["smollm2"]["modalities"] == ["text"] and models["smollm2"]["version"]
    assert not models["unserved"]["served"]
    presets = models["qwen3.5-tiny"]["presets"]
    assert presets["thinking-coding"]["sampling"] == {
        "temperature": 0.6,
        "top_p": 0.95,
        "top_k": 20,
        "presence_penalty": 0.0,
    }
    assert presets["instruct-reasoning"]["sampling"]["presence_penalty"] == 2.0
