"""Arena battles over real HTTP and a real WebSocket, with real workers (the test fakes).

The test settings pair the two fakes (fake-rate, fake-single: 100 tokens at 100/s each).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests

from playground.arena.models import Battle
from playground.chat.models import Conversation, Message
from playground.dashboard.models import UsageRecord
from playground.generations.models import QuotaOverride
from playground.generations.service import create_conversation
from tests.helpers import ChatSocket, logged_in_session, text_of

pytestmark = pytest.mark.slow
FAKES = {"fake-rate", "fake-single"}
EXPECTED = "".join(f"t{i} " for i in range(100))  # PLAYGROUND_ARENA["MAX_TOKENS"] in tests


def _session(base_url: str, user: Any) -> requests.Session:
    """A logged-in HTTP client holding the CSRF cookie and header, as the page does."""
    session = logged_in_session(base_url, user)
    assert session.get(f"{base_url}/arena/").status_code == 200  # sets the csrftoken cookie
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def _start(session: requests.Session, base_url: str, **body: Any) -> requests.Response:
    return session.post(f"{base_url}/arena/battles/", json={"prompt": "Say hello", **body})


def _vote(session: requests.Session, base_url: str, battle_id: str, vote: Any) -> Any:
    return session.post(f"{base_url}/arena/battles/{battle_id}/vote/", json={"vote": vote})


def _follow(ws: ChatSocket, generation_ids: list[str], timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    """Resume every answer from its start, as the page does; every event in arrival order,
    until each answer is done or its resume refused (an answer that is no longer kept)."""
    for gid in generation_ids:
        ws.send({"type": "resume", "generation_id": gid, "after_seq": 0, "client_ref": gid})
    events, open_ids = [], set(generation_ids)
    deadline = time.monotonic() + timeout
    while open_ids:
        event = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        events.append(event)
        if event["type"] == "done":
            open_ids.discard(event["generation_id"])
        elif event["type"] == "error" and event.get("frame") == "resume":
            open_ids.discard(event["client_ref"])
    return events


def _ids(battle: dict) -> list[str]:  # type: ignore[type-arg]
    return [side["generation_id"] for side in battle["sides"]]


def _page_battle(html: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script id="arena-data" type="application/json">(.*?)</script>', html)
    assert found, html[:500]
    return json.loads(found.group(1))["battle"]  # type: ignore[no-any-return]


def test_both_answers_stream_at_once_blind_and_the_vote_reveals_the_names(stack, alice) -> None:  # type: ignore[no-untyped-def]
    session = _session(stack, alice)
    started = _start(session, stack)
    assert started.status_code == 201, started.text
    battle = started.json()
    assert battle["blind"] and battle["state"] == "running" and battle["vote"] is None
    assert [(s["model"], s["label"]) for s in battle["sides"]] == [(None, None), (None, None)]

    page = session.get(f"{stack}/arena/b/{battle['id']}/")
    assert page.status_code == 200
    assert [s["model"] for s in _page_battle(page.text)["sides"]] == [None, None]

    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        events = _follow(ws, _ids(battle))
    assert not [e for e in events if "worker" in e]  # the worker id starts with the model name
    by_side = {gid: [e for e in events if e.get("generation_id") == gid] for gid in _ids(battle)}
    for gid, side_events in by_side.items():
        assert text_of(side_events) == EXPECTED, gid
        assert side_events[-1]["type"] == "done" and side_events[-1]["finish_reason"] == "length"
    # At once: each answer's first text arrived before the other's last.
    order = [e["generation_id"] for e in events if e["type"] == "delta"]
    a, b = _ids(battle)
    assert order.index(a) < len(order) - 1 - order[::-1].index(b)
    assert order.index(b) < len(order) - 1 - order[::-1].index(a)

    ready = session.get(f"{stack}/arena/battles/{battle['id']}/").json()
    assert ready["state"] == "ready"
    assert [s["content"] for s in ready["sides"]] == [EXPECTED, EXPECTED]
    assert [s["model"] for s in ready["sides"]] == [None, None]

    voted = _vote(session, stack, battle["id"], "a")
    assert voted.status_code == 200, voted.text
    revealed = voted.json()
    assert revealed["state"] == "voted" and revealed["vote"] == "a"
    names = [s["model"] for s in revealed["sides"]]
    assert set(names) == FAKES
    assert all(s["label"] for s in revealed["sides"])

    again = _vote(session, stack, battle["id"], "b")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
    stored = Battle.objects.get(pk=battle["id"])
    assert (stored.vote, stored.model_a, stored.model_b) == ("a", *names)
    # Each side is an ordinary generation, accounted as the arena's.
    usage = UsageRecord.objects.filter(message_id__in=_ids(battle))
    assert sorted(u.kind for u in usage) == ["arena", "arena"]
    assert {c.source for c in Conversation.objects.filter(user=alice)} == {"arena"}


def test_a_vote_waits_for_both_answers(stack, alice) -> None:  # type: ignore[no-untyped-def]
    session = _session(stack, alice)
    battle = _start(session, stack).json()
    early = _vote(session, stack, battle["id"], "tie")
    assert early.status_code == 409
    assert early.json()["error"]["message"] == "Wait until both answers have finished."
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        _follow(ws, _ids(battle))
    assert _vote(session, stack, battle["id"], "tie").status_code == 200


def test_a_battle_with_a_stopped_side_cannot_be_voted_on_and_shows_the_names(stack, alice) -> None:  # type: ignore[no-untyped-def]
    session = _session(stack, alice)
    battle = _start(session, stack).json()
    a, b = _ids(battle)
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        for gid in (a, b):
            ws.send({"type": "resume", "generation_id": gid, "after_seq": 0})
        while (event := ws.recv())["type"] != "delta" or event["generation_id"] != b:
            pass
        ws.send({"type": "stop", "generation_id": b})
        events = _follow(ws, [a, b])
    finished = {e["generation_id"]: e["finish_reason"] for e in events if e["type"] == "done"}
    assert finished == {a: "length", b: "cancelled"}
    found = session.get(f"{stack}/arena/battles/{battle['id']}/").json()
    assert found["state"] == "invalid"
    assert found["problem"] == "Model B's answer was stopped."
    assert {s["model"] for s in found["sides"]} == FAKES  # nothing left to keep blind
    refused = _vote(session, stack, battle["id"], "a")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "status": 409,
        "code": "battle_invalid",
        "message": "Model B's answer was stopped. This battle cannot be voted on.",
    }
    assert Battle.objects.get(pk=battle["id"]).vote == ""


def test_a_prompt_too_long_for_the_models_leaves_a_battle_that_cannot_be_voted_on(  # type: ignore[no-untyped-def]
    stack, alice
) -> None:
    session = _session(stack, alice)
    battle = _start(session, stack, prompt="word " * 5000).json()  # the fakes read 4096 words
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        events = _follow(ws, _ids(battle))
    for gid in _ids(battle):
        # Refused before any text, and the turn deleted: seen as the error (when followed in
        # time), or as a resume refused once the answer is gone.
        mine = [e for e in events if gid in (e.get("generation_id"), e.get("client_ref"))]
        codes = [e["code"] for e in mine if e["type"] == "error"]
        assert codes in (["context_length_exceeded"], ["not_found"]), codes
    assert not Message.objects.exists()
    found = session.get(f"{stack}/arena/battles/{battle['id']}/").json()
    assert found["state"] == "invalid"
    assert "was not kept" in found["problem"]
    assert _vote(session, stack, battle["id"], "b").status_code == 409


def test_a_battle_a_quota_refuses_stores_nothing_and_gives_its_slot_back(stack, alice) -> None:  # type: ignore[no-untyped-def]
    QuotaOverride.objects.create(user=alice, concurrent=1)  # a battle needs two at once
    session = _session(stack, alice)
    refused = _start(session, stack)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "in progress" in error["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert not Battle.objects.exists()
    assert not Message.objects.exists() and not Conversation.objects.exists()
    # The first answer's slot went back: one chat reply still fits the limit of one.
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as ws:
        accepted = ws.generate(conversation.id, "hi", params={"max_tokens": 3})
        assert ws.events_until_done(accepted["generation_id"])[-1]["finish_reason"] == "length"


def test_chosen_models_are_shown_from_the_start(stack, alice) -> None:  # type: ignore[no-untyped-def]
    session = _session(stack, alice)
    started = _start(session, stack, model_a="smollm2", model_b="fake-rate")
    assert started.status_code == 201, started.text
    battle = started.json()
    assert battle["blind"] is False
    assert [s["model"] for s in battle["sides"]] == ["smollm2", "fake-rate"]
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        _follow(ws, _ids(battle), timeout=120)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prompt": "  "}, 400, "prompt must be a non-empty string"),
        ({"prompt": "x" * 32_001}, 400, "message is 32001 characters; the limit is 32000"),
        ({"model_a": "fake-rate"}, 400, "name both models, or neither for a random pair"),
        ({"model_a": "fake-rate", "model_b": "fake-rate"}, 400, "choose two different models"),
        ({"model_a": "nope", "model_b": "fake-rate"}, 400, "unknown model 'nope'"),
        ({"model_a": "unserved", "model_b": "fake-rate"}, 503, "not available right now"),
        ({"attachments": ["x"]}, 503, "two served models that can see images or videos"),
    ],
)
def test_a_battle_that_cannot_start_is_refused_with_a_reason_and_nothing_stored(  # type: ignore[no-untyped-def]
    stack, alice, body, status, message
) -> None:
    refused = _start(_session(stack, alice), stack, **body)
    assert refused.status_code == status, refused.text
    assert message in refused.json()["error"]["message"]
    assert not Battle.objects.exists() and not Conversation.objects.exists()


def test_the_endpoints_refuse_strangers_and_bad_input(stack, alice, bob) -> None:  # type: ignore[no-untyped-def]
    session = _session(stack, alice)
    bad = session.post(
        f"{stack}/arena/battles/", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "the body must be JSON"
    battle = _start(session, stack).json()
    assert _vote(session, stack, battle["id"], "A").status_code == 400
    anonymous = requests.get(f"{stack}/arena/battles/{battle['id']}/")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"] == "log in to use the arena"
    strange = _session(stack, bob)
    assert strange.get(f"{stack}/arena/battles/{battle['id']}/").status_code == 404
    assert _vote(strange, stack, battle["id"], "a").status_code == 404
    assert strange.get(f"{stack}/arena/b/{battle['id']}/").status_code == 404
    assert strange.get(f"{stack}/arena/battles/not-a-uuid/").status_code == 404
    with ChatSocket(stack, bob, path="/ws/arena/") as ws:  # someone else's answer
        ws.send(
            {"type": "resume", "generation_id": battle["sides"][0]["generation_id"], "after_seq": 0}
        )
        assert ws.recv()["code"] == "not_found"
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        _follow(ws, _ids(battle))


def test_the_arena_socket_follows_only_battles_and_starts_nothing(stack, alice) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    with ChatSocket(stack, alice) as chat:
        accepted = chat.generate(conversation.id, "hi", params={"max_tokens": 3})
        done = chat.events_until_done(accepted["generation_id"])
    assert done[-1]["worker"].startswith("fake-rate@")  # what the arena's socket leaves out
    with ChatSocket(stack, alice, path="/ws/arena/") as ws:
        ws.send({"type": "resume", "generation_id": accepted["generation_id"], "after_seq": 0})
        assert ws.recv()["code"] == "not_found"
        ws.send({"type": "generate", "conversation_id": str(conversation.id), "content": "hi"})
        refused = ws.recv()
        assert refused["code"] == "invalid_request" and "POST /arena/battles/" in refused["message"]
    assert Message.objects.count() == 2  # nothing was started


def test_an_anonymous_arena_socket_is_closed_with_4401(stack) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import ConnectionClosed

    with (
        ChatSocket(stack, None, path="/ws/arena/") as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
