"""Thumbs up/down and comments on replies over HTTP: set, change, clear, refusals, the page's JSON."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.chat.models import Conversation, Feedback, Message


def _conversation(user, replies: int = 1) -> list[Message]:  # type: ignore[no-untyped-def]
    """A conversation of ``user`` with finished replies; returns the replies."""
    conversation = Conversation.objects.create(user=user, model="fake-rate")
    found = []
    parent = None
    for i in range(replies):
        question = Message.objects.create(
            conversation=conversation, parent=parent, role="user", content=f"Question {i}"
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            content=f"Answer {i}",
            model="fake-rate",
        )
        found.append(parent)
    return found


@pytest.fixture
def reply(alice) -> Message:  # type: ignore[no-untyped-def]
    return _conversation(alice)[0]


def _rate(client: Client, message: Message, body: object):  # type: ignore[no-untyped-def]
    url = reverse("chat:feedback", args=[message.conversation_id, message.id])
    return client.post(url, body, content_type="application/json")  # dicts are sent as JSON


def test_a_reply_is_rated_up_changed_to_down_and_cleared(client, alice, reply) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    up = _rate(client, reply, {"value": "up"})
    assert up.status_code == 200 and up.json() == {"value": "up", "comment": ""}
    stored = Feedback.objects.get(message=reply)
    assert (stored.value, stored.user, stored.model) == (Feedback.Value.UP, alice, "fake-rate")

    down = _rate(client, reply, {"value": "down"})
    assert down.json() == {"value": "down", "comment": ""}
    assert Feedback.objects.get().value == Feedback.Value.DOWN

    cleared = _rate(client, reply, {"value": None})
    assert cleared.status_code == 200 and cleared.json() == {"value": None, "comment": ""}
    assert not Feedback.objects.exists()


def test_a_comment_is_saved_and_kept_when_the_thumb_changes(client, alice, reply) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    saved = _rate(client, reply, {"value": "down", "comment": "  Wrong capital.  "})
    assert saved.json() == {"value": "down", "comment": "Wrong capital."}
    changed = _rate(client, reply, {"value": "up"})  # no comment: the saved one stays
    assert changed.json() == {"value": "up", "comment": "Wrong capital."}
    assert Feedback.objects.get().comment == "Wrong capital."


def test_a_comment_over_2000_characters_is_refused_and_the_feedback_stays(  # type: ignore[no-untyped-def]
    client, alice, reply
) -> None:
    client.force_login(alice)
    _rate(client, reply, {"value": "up", "comment": "Clear."})
    refused = _rate(client, reply, {"value": "down", "comment": "x" * 2001})
    assert refused.status_code == 400
    assert "2000" in refused.json()["error"]["message"]
    stored = Feedback.objects.get()
    assert (stored.value, stored.comment) == (Feedback.Value.UP, "Clear.")
    assert _rate(client, reply, {"value": "up", "comment": "x" * 2000}).status_code == 200


def test_someone_elses_reply_is_not_found(client, alice, bob, reply) -> None:  # type: ignore[no-untyped-def]
    client.force_login(bob)
    answer = _rate(client, reply, {"value": "down"})
    assert answer.status_code == 404
    assert answer.json() == {"error": {"status": 404, "message": "message not found"}}
    assert not Feedback.objects.exists()
    # Bob's own conversation id with Alice's message id does not reach it either.
    bobs = _conversation(bob)[0]
    url = reverse("chat:feedback", args=[bobs.conversation_id, reply.id])
    assert client.post(url, {"value": "up"}, content_type="application/json").status_code == 404
    bad_ids = reverse("chat:feedback", args=["nope", "nope"])
    assert client.post(bad_ids, {"value": "up"}, content_type="application/json").status_code == 404


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_reply_still_being_written_cannot_be_rated(client, alice, reply, status) -> None:  # type: ignore[no-untyped-def]
    Message.objects.filter(pk=reply.pk).update(status=status)
    client.force_login(alice)
    answer = _rate(client, reply, {"value": "up"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "this reply has not finished yet"


def test_a_users_own_message_cannot_be_rated(client, alice, reply) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    answer = _rate(client, reply.parent, {"value": "up"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "only replies can be rated"


@pytest.mark.parametrize(
    "body",
    ["{not json", "[]", {"value": "sideways"}, {"value": ["up"]}, {"value": "up", "comment": 5}],
)
def test_malformed_requests_are_refused(client, alice, reply, body) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    answer = _rate(client, reply, body)
    assert answer.status_code == 400 and answer.json()["error"]["status"] == 400
    assert not Feedback.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client, reply) -> None:  # type: ignore[no-untyped-def]
    answer = _rate(client, reply, {"value": "up"})
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]
    assert not Feedback.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(alice, reply) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert _rate(client, reply, {"value": "up"}).status_code == 403
    assert not Feedback.objects.exists()


def _page_messages(client: Client, conversation_id: object) -> list[dict]:  # type: ignore[type-arg]
    page = client.get(reverse("chat:conversation", args=[conversation_id]))
    assert page.status_code == 200
    return page.context["page_data"]["messages"]


def test_the_page_shows_each_replys_feedback_in_a_fixed_number_of_queries(  # type: ignore[no-untyped-def]
    client, alice
) -> None:
    short, long = _conversation(alice, replies=1), _conversation(alice, replies=6)
    client.force_login(alice)
    _rate(client, short[0], {"value": "up"})
    _rate(client, long[0], {"value": "down", "comment": "Off topic."})
    with CaptureQueriesContext(connection) as one_reply:
        _page_messages(client, short[0].conversation_id)
    with CaptureQueriesContext(connection) as six_replies:
        messages = _page_messages(client, long[0].conversation_id)
    assert [m["feedback"] for m in messages if m["role"] == "assistant"] == [
        {"value": "down", "comment": "Off topic."},
        *[None] * 5,
    ]
    assert len(six_replies) == len(one_reply)  # no query per message
