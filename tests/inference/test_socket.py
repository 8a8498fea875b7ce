"""The whole path over a real WebSocket: consumer → service → Celery worker → engine → log → socket."""

from __future__ import annotations

import time

import pytest

from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, deltas, text_of

pytestmark = pytest.mark.slow


def _assert_contiguous(events: list[dict]) -> None:  # type: ignore[type-arg]
    seqs = [e["seq"] for e in events if "seq" in e]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_a_generation_streams_in_order_and_is_stored_as_streamed(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "smollm2")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(
            conversation.id, "What is the capital of France?", params={"temperature": 0}
        )
        events = ws.events_until_done(accepted["generation_id"])
    _assert_contiguous(events)
    assert events[-1]["type"] == "done" and events[-1]["finish_reason"] == "stop"
    streamed = text_of(events)
    assert "Paris" in streamed
    reply = Message.objects.get(pk=accepted["generation_id"])
    assert reply.content == streamed
    assert reply.status == "done"
    assert reply.output_tokens == events[-1]["usage"]["output_tokens"] > 0
    assert reply.prompt_tokens and reply.prompt_tokens > 0
    assert reply.ttft_ms is not None and reply.total_ms >= reply.ttft_ms >= reply.queue_wait_ms >= 0
    user_message = Message.objects.get(pk=accepted["user_message_id"])
    assert user_message.content == "What is the capital of France?"
    assert reply.parent_id == user_message.id


def test_tokens_are_coalesced_into_frames(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "go", params={"max_tokens": 100})
        events = ws.events_until_done(accepted["generation_id"])
    # 100 tokens at 100 tokens/s in 50 ms frames: far fewer frames than tokens.
    assert text_of(events) == "".join(f"t{i} " for i in range(100))
    assert len(deltas(events)) < 60
    assert events[-1]["finish_reason"] == "length"


@pytest.mark.parametrize("model", ["fake-rate", "smollm2"])
def test_stop_ends_the_generation_and_the_worker_stops_producing(
    stack, alice, workers, model
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, model)
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(
            conversation.id, "Write a very long story about a dragon.", params={"max_tokens": 1000}
        )
        gid = accepted["generation_id"]
        got = []
        while len(got) < 3:
            event = ws.recv()
            if event["type"] in ("queued", "started"):
                continue
            assert event["type"] == "delta", event
            got.append(event)
        ws.send({"type": "stop", "generation_id": gid})
        stopped_at = time.monotonic()
        rest = ws.events_until_done(gid)
        latency = time.monotonic() - stopped_at
    assert rest[-1]["finish_reason"] == "cancelled"
    assert latency < 1.0, f"stop took {latency:.3f}s"  # measured ~0.1-0.3 s; CI is noisy
    reply = Message.objects.get(pk=gid)
    assert reply.status == "cancelled"
    assert reply.content == text_of(got + rest)
    assert reply.output_tokens < 1000
    # The worker is idle and its token counter no longer moves.
    time.sleep(0.6)
    before = workers.heartbeat(model)
    time.sleep(0.8)
    after = workers.heartbeat(model)
    assert after["engine_active"] == 0 and after["in_flight"] == 0, after
    assert after["tokens_generated"] == before["tokens_generated"]


def test_a_dropped_socket_resumes_with_exactly_the_missing_events(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    ws = ChatSocket(stack, alice)
    accepted = ws.generate(conversation.id, "go", params={"max_tokens": 80})
    gid = accepted["generation_id"]
    first = [ws.recv() for _ in range(3)]
    ws.close()  # the generation keeps going without anyone watching
    time.sleep(0.3)
    with ChatSocket(stack, alice) as again:
        again.send({"type": "resume", "generation_id": gid, "after_seq": first[-1]["seq"]})
        rest = again.events_until_done(gid)
    _assert_contiguous(first + rest)
    assert text_of(first + rest) == "".join(f"t{i} " for i in range(80))
    assert Message.objects.get(pk=gid).content == text_of(first + rest)


def test_resume_of_a_finished_generation_replays_it(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "go", params={"max_tokens": 10})
        events = ws.events_until_done(accepted["generation_id"])
        ws.send({"type": "resume", "generation_id": accepted["generation_id"], "after_seq": 0})
        replay = ws.events_until_done(accepted["generation_id"])
    assert replay == events


def test_stopping_a_queued_generation_ends_it_without_a_worker(stack, alice, busy_single) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, busy_single)
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "anyone there?")
        assert accepted["queue_position"] == 0  # first in line, behind the running one
        ws.send({"type": "stop", "generation_id": accepted["generation_id"]})
        events = ws.events_until_done(accepted["generation_id"], timeout=5)
    assert events[-1]["finish_reason"] == "cancelled"
    assert not [e for e in events if e["type"] == "delta"]
    assert Message.objects.get(pk=accepted["generation_id"]).status == "cancelled"


def test_queued_clients_see_their_position_move_until_the_job_starts(
    stack, alice, busy_single
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, busy_single)
    with ChatSocket(stack, alice) as first, ChatSocket(stack, alice) as second:
        a = first.generate(conversation.id, "one", params={"max_tokens": 5})
        b = second.generate(conversation.id, "two", params={"max_tokens": 5})
        assert (a["queue_position"], b["queue_position"]) == (0, 1)
        queued = second.recv(timeout=10)
        assert queued == {"type": "queued", "generation_id": b["generation_id"], "position": 1}
        first.send({"type": "stop", "generation_id": a["generation_id"]})
        assert first.events_until_done(a["generation_id"])[-1]["finish_reason"] == "cancelled"
        moved = second.recv(timeout=10)
        assert moved == {"type": "queued", "generation_id": b["generation_id"], "position": 0}


def _error_then_still_usable(ws: ChatSocket, frame, code: str, conversation_id) -> None:  # type: ignore[no-untyped-def]
    if isinstance(frame, dict):
        frame = {**frame, "client_ref": "ref-7"}
    ws.send(frame)
    event = ws.recv(timeout=10)
    assert event["type"] == "error", event
    assert event["code"] == code, event
    assert event["message"]
    # A refused frame never looks like a failed generation, and says which frame it was.
    assert "generation_id" not in event
    if isinstance(frame, dict) and code != "too_large":  # an unread frame's ref is unknown
        assert event["client_ref"] == "ref-7"
    # The socket still works.
    accepted = ws.generate(conversation_id, "still there?", params={"max_tokens": 3})
    assert ws.events_until_done(accepted["generation_id"])[-1]["type"] == "done"


@pytest.mark.parametrize(
    "frame, code",
    [
        ("this is not json", "bad_frame"),
        ("[1, 2, 3]", "bad_frame"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "generate", "content": "hi", "conversation_id": "not-a-uuid"}, "not_found"),
        ({"type": "generate", "content": "", "conversation_id": "CONV"}, "invalid_request"),
        (
            {"type": "generate", "content": "x" * 40_000, "conversation_id": "CONV"},
            "invalid_request",
        ),
        (
            {
                "type": "generate",
                "content": "hi",
                "conversation_id": "CONV",
                "params": {"temperature": 9},
            },
            "invalid_request",
        ),
        (
            {"type": "generate", "content": "hi", "conversation_id": "CONV", "model": "gpt-9"},
            "invalid_request",
        ),
        ({"type": "resume", "generation_id": "CONV", "after_seq": -1}, "invalid_request"),
        ({"type": "stop", "generation_id": "00000000-0000-0000-0000-000000000000"}, "not_found"),
        # Numbers that once overflowed the engine's C longs and failed everyone's streams.
        (
            {
                "type": "generate",
                "content": "hi",
                "conversation_id": "CONV",
                "params": {"top_k": 1e30},
            },
            "invalid_request",
        ),
        (
            {
                "type": "generate",
                "content": "hi",
                "conversation_id": "CONV",
                "params": {"seed": 2**64},
            },
            "invalid_request",
        ),
        (
            '{"type": "generate", "content": "hi", "conversation_id": "CONV", '
            '"params": {"max_tokens": 1e400}}',
            "invalid_request",
        ),
        ("[" * 1000 + "]" * 1000, "bad_frame"),
        ('{"type": "generate", "x": ' + "[" * 1000 + "]" * 1000 + "}", "bad_frame"),
        (
            {"type": "generate", "content": "hi", "conversation_id": "CONV", "model": "unserved"},
            "model_unavailable",
        ),
    ],
)
def test_bad_frames_get_an_error_and_the_socket_stays_usable(stack, alice, frame, code) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    if isinstance(frame, dict):
        frame = {k: (str(conversation.id) if v == "CONV" else v) for k, v in frame.items()}
    else:
        frame = frame.replace('"CONV"', f'"{conversation.id}"')
    with ChatSocket(stack, alice) as ws:
        _error_then_still_usable(ws, frame, code, conversation.id)
    assert not Message.objects.filter(
        conversation=conversation, content__startswith="x" * 100
    ).exists()


def test_an_oversized_frame_is_refused(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        frame = {
            "type": "generate",
            "conversation_id": str(conversation.id),
            "content": "y" * 300_000,
        }
        _error_then_still_usable(ws, frame, "too_large", conversation.id)


def test_someone_elses_conversation_is_not_found(stack, alice, bob) -> None:  # type: ignore[no-untyped-def]
    theirs = create_conversation(alice, "fake-rate")
    mine = create_conversation(bob, "fake-rate")
    with ChatSocket(stack, bob) as ws:
        frame = {"type": "generate", "conversation_id": str(theirs.id), "content": "let me in"}
        _error_then_still_usable(ws, frame, "not_found", mine.id)
    assert not theirs.messages.exists()


def test_bob_cannot_read_resume_or_stop_alices_generation(stack, alice, bob) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws_alice, ChatSocket(stack, bob) as ws_bob:
        accepted = ws_alice.generate(conversation.id, "secret", params={"max_tokens": 40})
        gid = accepted["generation_id"]
        for frame in (
            {"type": "resume", "generation_id": gid, "after_seq": 0},
            {"type": "stop", "generation_id": gid},
        ):
            ws_bob.send(frame)
            event = ws_bob.recv(timeout=10)
            assert event["type"] == "error" and event["code"] == "not_found"
        events = ws_alice.events_until_done(gid)
    assert events[-1]["finish_reason"] == "length"  # bob's stop did nothing
    assert Message.objects.get(pk=gid).status == "done"


def test_bob_gets_404_for_alices_conversation_page(stack, alice, bob, client) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    client.force_login(bob)
    assert client.get(f"/c/{conversation.id}/").status_code == 404
    client.force_login(alice)
    assert client.get(f"/c/{conversation.id}/").status_code == 200


def test_an_anonymous_socket_is_closed(stack) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import ConnectionClosed

    ws = ChatSocket(stack, None)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_foreign_origin_is_rejected(stack, alice) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus):
        ChatSocket(stack, alice, origin="http://evil.example")
