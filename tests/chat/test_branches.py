"""Branches over a real WebSocket: regenerate and edit make siblings, the model sees only
the branch on screen, new conversations are stored with their first message, and
sampling settings are checked with a clear error.

The fake engine counts a prompt's words as its tokens, so ``prompt_tokens`` says exactly
which messages the model was given: the tests use word counts that add up differently
for every set of messages.
"""

from __future__ import annotations

import json

import pytest

from playground.chat.models import Conversation, Message
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, text_of

pytestmark = pytest.mark.slow

REPLY = {"max_tokens": 3}  # the fake answers "t0 t1 t2 ": 3 words


def _turn(ws: ChatSocket, conversation_id: object, text: str, **extra: object) -> dict:  # type: ignore[type-arg]
    accepted = ws.generate(conversation_id, text, params=REPLY, **extra)
    done = ws.events_until_done(accepted["generation_id"])[-1]
    return {**accepted, "done": done}


def _frame(ws: ChatSocket, frame: dict) -> dict:  # type: ignore[type-arg]
    """Send a frame; return its answer (``accepted`` or a refusal)."""
    ws.send(frame)
    while True:
        event = ws.recv()
        if event["type"] in ("accepted", "error") and "seq" not in event:
            return event


def _prompt_tokens(generation_id: str) -> int:
    return Message.objects.get(pk=generation_id).prompt_tokens or 0


def test_regenerate_makes_a_sibling_reply_that_becomes_the_branch_on_screen(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "one two three four")  # 4 words
        again = _frame(
            ws,
            {
                "type": "regenerate",
                "message_id": first["generation_id"],
                "params": {"max_tokens": 5},
            },
        )
        assert again["type"] == "accepted", again
        events = ws.events_until_done(again["generation_id"])
    assert again["user_message_id"] == first["user_message_id"]
    assert text_of(events) == "t0 t1 t2 t3 t4 "
    replies = Message.objects.filter(parent_id=first["user_message_id"]).order_by("created_at")
    assert [str(r.id) for r in replies] == [first["generation_id"], again["generation_id"]]
    assert replies[0].content == "t0 t1 t2 "  # the first version is kept
    conversation.refresh_from_db()
    assert str(conversation.current_leaf_id) == again["generation_id"]
    # The model saw the question alone, not the earlier answer.
    assert _prompt_tokens(again["generation_id"]) == 4


def test_edit_makes_a_sibling_and_the_model_sees_only_that_branch(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate", system_prompt="be brief")  # 2 words
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "a")  # 1 word; reply 3
        second = _turn(ws, conversation.id, "b c d e f g h i")  # 8 words
        assert _prompt_tokens(second["generation_id"]) == 2 + 1 + 3 + 8
        edited = _frame(
            ws,
            {
                "type": "edit",
                "message_id": second["user_message_id"],
                "content": "x y y y y y y y y y y y y y y y",  # 16 words
                "params": REPLY,
            },
        )
        assert edited["type"] == "accepted", edited
        ws.events_until_done(edited["generation_id"])
        # Editing the first message starts a new root: nothing after it comes along.
        root = _frame(
            ws,
            {
                "type": "edit",
                "conversation_id": str(conversation.id),
                "message_id": first["user_message_id"],
                "content": " ".join(["w"] * 32),
                "params": REPLY,
            },
        )
        ws.events_until_done(root["generation_id"])
    assert edited["parent_id"] == first["generation_id"]
    assert _prompt_tokens(edited["generation_id"]) == 2 + 1 + 3 + 16  # not the 8-word version
    assert root["parent_id"] is None
    assert _prompt_tokens(root["generation_id"]) == 2 + 32
    originals = Message.objects.filter(pk__in=[first["user_message_id"], second["user_message_id"]])
    assert sorted(m.content for m in originals) == ["a", "b c d e f g h i"]  # kept as they were
    conversation.refresh_from_db()
    assert str(conversation.current_leaf_id) == root["generation_id"]


def test_a_new_message_continues_the_branch_the_user_switched_to(stack, alice, client) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "a b")  # 2 words
        second = _turn(ws, conversation.id, "c c c c")  # 4 words
        edited = _frame(
            ws,
            {
                "type": "edit",
                "message_id": second["user_message_id"],
                "content": "d d d d d d d d",  # 8 words
                "params": REPLY,
            },
        )
        ws.events_until_done(edited["generation_id"])
        client.force_login(alice)
        switched = client.patch(
            f"/c/{conversation.id}/",
            {"current_leaf": second["generation_id"]},
            content_type="application/json",
        )
        assert switched.status_code == 200, switched.content
        third = _turn(ws, conversation.id, " ".join(["e"] * 16))
    assert third["parent_id"] == second["generation_id"]
    assert _prompt_tokens(third["generation_id"]) == 2 + 3 + 4 + 3 + 16
    assert first["parent_id"] is None


def test_editing_a_reply_or_someone_elses_message_is_refused(stack, alice, bob) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "hello")
        reply_edit = _frame(
            ws,
            {"type": "edit", "message_id": first["generation_id"], "content": "x", "client_ref": 7},
        )
    assert reply_edit["code"] == "invalid_request" and reply_edit["client_ref"] == 7
    assert "user messages" in reply_edit["message"]
    with ChatSocket(stack, bob) as ws:
        for frame in (
            {"type": "edit", "message_id": first["user_message_id"], "content": "mine now"},
            {"type": "regenerate", "message_id": first["generation_id"]},
        ):
            refused = _frame(ws, frame)
            assert refused["code"] == "not_found", refused
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_resume_follows_a_reply_on_a_branch_that_is_not_on_screen(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "go")
        long = _frame(
            ws,
            {
                "type": "regenerate",
                "message_id": first["generation_id"],
                "params": {"max_tokens": 60},
            },
        )
        ws.recv()  # the generation is under way
    # The user switches back to the first version while the second one is still streaming.
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=first["generation_id"])
    with ChatSocket(stack, alice) as again:
        again.send({"type": "resume", "generation_id": long["generation_id"], "after_seq": 0})
        events = again.events_until_done(long["generation_id"])
    assert text_of(events) == "".join(f"t{i} " for i in range(60))
    assert Message.objects.get(pk=long["generation_id"]).content == text_of(events)


def test_a_first_send_without_a_conversation_stores_one_with_its_first_message(
    stack, alice
) -> None:  # type: ignore[no-untyped-def]
    with ChatSocket(stack, alice) as ws:
        accepted = _frame(
            ws,
            {
                "type": "generate",
                "model": "fake-rate",
                "content": "## Plan a  trip to Lisbon in May, with a budget, museums and food tips",
                "system_prompt": "You are a travel agent.",
                "params": REPLY,
            },
        )
        ws.events_until_done(accepted["generation_id"])
    assert accepted["type"] == "accepted" and accepted["created"] is True
    conversation = Conversation.objects.get(pk=accepted["conversation_id"])
    assert conversation.user == alice and conversation.model == "fake-rate"
    assert conversation.system_prompt == "You are a travel agent."
    # The automatic title: the first line without Markdown marks, cut at a word.
    assert (
        conversation.title
        == accepted["title"]
        == "Plan a trip to Lisbon in May, with a budget, museums and…"
    )
    assert conversation.messages.count() == 2


def test_a_refused_first_send_stores_no_conversation(stack, alice) -> None:  # type: ignore[no-untyped-def]
    with ChatSocket(stack, alice) as ws:
        unserved = _frame(ws, {"type": "generate", "model": "unserved", "content": "hi"})
        no_model = _frame(ws, {"type": "generate", "content": "hi"})
        too_hot = _frame(
            ws,
            {
                "type": "generate",
                "model": "fake-rate",
                "content": "hi",
                "params": {"temperature": 5},
            },
        )
        nul = _frame(ws, {"type": "generate", "model": "fake-rate", "content": "a\x00b"})
    assert unserved["code"] == "model_unavailable"
    assert nul["code"] == "invalid_request" and nul["field"] == "content"
    assert no_model["code"] == "invalid_request" and "conversation_id" in no_model["message"]
    assert too_hot["code"] == "invalid_request" and too_hot["field"] == "temperature"
    assert too_hot["message"] == "temperature must be between 0 and 2"
    assert not Conversation.objects.filter(user=alice).exists()


def test_settings_kept_on_the_conversation_shape_the_next_reply(stack, alice, client) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    client.force_login(alice)
    saved = client.patch(
        f"/c/{conversation.id}/",
        json.dumps({"params": {"max_tokens": 7, "temperature": 0.2}}),
        content_type="application/json",
    )
    assert saved.status_code == 200, saved.content
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "count")  # no params in the frame
        events = ws.events_until_done(accepted["generation_id"])
    assert text_of(events) == "".join(f"t{i} " for i in range(7))
    reply = Message.objects.get(pk=accepted["generation_id"])
    assert reply.params["max_tokens"] == 7 and reply.params["temperature"] == 0.2


def test_a_first_turn_too_long_for_the_context_leaves_no_conversation(stack, alice) -> None:  # type: ignore[no-untyped-def]
    with ChatSocket(stack, alice) as ws:
        accepted = _frame(
            ws,
            {"type": "generate", "model": "qwen3.5-tiny", "content": "word " * 3000},
        )
        done = ws.events_until_done(accepted["generation_id"])[-1]
    assert done["error"]["code"] == "context_length_exceeded"
    assert not Conversation.objects.filter(pk=accepted["conversation_id"]).exists()


def test_a_regeneration_too_long_for_the_context_goes_back_to_the_earlier_reply(
    stack, alice
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        first = _turn(ws, conversation.id, "word " * 1500)  # fits fake-rate's 4096
        # The same question on the small model does not fit its 1024-token context.
        again = _frame(
            ws,
            {"type": "regenerate", "message_id": first["generation_id"], "model": "qwen3.5-tiny"},
        )
        done = ws.events_until_done(again["generation_id"])[-1]
    assert done["error"]["code"] == "context_length_exceeded"
    conversation.refresh_from_db()
    assert not Message.objects.filter(pk=again["generation_id"]).exists()
    assert str(conversation.current_leaf_id) == first["generation_id"]
