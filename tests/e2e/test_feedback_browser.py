"""A person in a browser rates replies: thumbs, a comment, a reload, taking it back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Conversation, Feedback, Message
from playground.generations.service import request_stop
from tests.helpers import session_cookie

pytestmark = [pytest.mark.browser]


def _reply(user, status: str = Message.Status.DONE) -> Message:  # type: ignore[no-untyped-def]
    # "unserved" has no worker, so a queued reply stays queued until the test stops it.
    conversation = Conversation.objects.create(user=user, model="unserved")
    question = Message.objects.create(
        conversation=conversation, role="user", content="What is 2 + 2?"
    )
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="4" if status == Message.Status.DONE else "",
        status=status,
        model="unserved",
    )


def _open(page, base_url: str, message: Message) -> None:  # type: ignore[no-untyped-def]
    user = message.conversation.user
    page.context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(user), "url": base_url}]
    )
    page.goto(f"{base_url}/c/{message.conversation_id}/")


def test_a_user_rates_a_reply_with_a_comment_and_finds_it_after_a_reload(  # type: ignore[no-untyped-def]
    live_server_url, alice, page
) -> None:
    reply = _reply(alice)
    _open(page, live_server_url, reply)
    bar = page.locator(".msg.assistant .feedback")
    good = bar.get_by_role("button", name="Good response")
    bad = bar.get_by_role("button", name="Bad response")
    comment = bar.get_by_label("Comment on this response")
    expect(good).to_have_attribute("aria-pressed", "false")
    expect(bad).to_have_attribute("aria-pressed", "false")
    expect(comment).to_be_hidden()

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    expect(comment).to_be_visible()
    comment.fill("Should show the working <b>too</b>")
    bar.get_by_role("button", name="Send feedback").click()
    expect(comment).to_be_hidden()  # the box folds away once saved
    expect(bar.locator(".fb-status")).to_have_text("Thanks")
    stored = Feedback.objects.get(message=reply)
    assert (stored.value, stored.comment, stored.user, stored.model) == (
        Feedback.Value.DOWN,
        "Should show the working <b>too</b>",
        alice,
        "unserved",
    )

    page.reload()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    bar.get_by_text("Edit comment").click()
    expect(comment).to_have_value("Should show the working <b>too</b>")
    assert page.locator(".msg b").count() == 0

    bad.click()  # pressing the chosen thumb again takes the verdict back
    expect(bad).to_have_attribute("aria-pressed", "false")
    expect(comment).to_be_hidden()
    assert not Feedback.objects.filter(message=reply).exists()


def test_a_reply_that_finishes_while_the_page_is_open_can_be_rated(  # type: ignore[no-untyped-def]
    live_server_url, alice, page
) -> None:
    reply = _reply(alice, status=Message.Status.QUEUED)
    _open(page, live_server_url, reply)
    bubble = page.locator(".msg.assistant")
    expect(bubble).to_have_class(re.compile("streaming"))
    expect(bubble.locator(".feedback")).to_have_count(0)
    page.evaluate("window.sameDocument = true")

    request_stop(alice, reply.id)  # the page hears "done" over its socket
    expect(bubble.locator(".meta")).to_have_text("Stopped")
    good = bubble.get_by_role("button", name="Good response")
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.sameDocument === true")  # no reload in between
    assert Feedback.objects.get(message=reply).value == Feedback.Value.UP


def test_a_refused_save_is_explained_next_to_the_buttons(live_server_url, alice, page) -> None:  # type: ignore[no-untyped-def]
    reply = _reply(alice)
    _open(page, live_server_url, reply)
    good = page.get_by_role("button", name="Good response")
    expect(good).to_be_visible()
    reply.delete()  # gone behind the page's back
    good.click()
    status = page.locator(".msg.assistant .feedback .fb-status")
    expect(status).to_have_text("Not saved: message not found")
    expect(status).to_have_class(re.compile("error"))
    expect(good).to_have_attribute("aria-pressed", "false")
