"""Branches in the browser: regenerate, edit an earlier message, move between versions
with ‹ 2/3 ›, the model given only the branch on screen, a reload keeping the branch,
and a reply that streams on every branch.

FakeEchoEngine repeats the user's message (cut to max_tokens), so every version shows
what it answered; it counts a prompt's words as its tokens, so ``prompt_tokens`` says
which messages the model was given."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.e2e.a11y import assert_accessible
from tests.e2e.screens import ask, log_in, page_errors, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _switch(page, message, name: str) -> None:  # type: ignore[no-untyped-def]
    """Press a version button and wait until the server has the branch (a reload follows)."""
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.ok):
        message.get_by_role("button", name=name).click()


def _set_max_tokens(page, value: int) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text("Sampling", exact=True).click()
    page.get_by_label("Max tokens").fill(str(value))
    page.get_by_label("Max tokens").press("Enter")
    expect(page.locator("#sampling-status")).to_have_text("Saved")
    page.get_by_text("Sampling", exact=True).click()  # close the panel


def test_regenerate_and_edit_make_versions_the_user_can_switch_between(  # type: ignore[no-untyped-def]
    stack, alice, page, tmp_path
) -> None:
    errors = page_errors(page)
    conversation = create_conversation(alice, "fake-echo")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    first = ask(page, "alpha beta gamma delta")
    expect(first.locator(".body")).to_have_text("alpha beta gamma delta")
    expect(first.locator(".versions")).to_be_hidden()  # one version: no switcher

    # Regenerate with a shorter limit: a second version of the reply.
    _set_max_tokens(page, 2)
    first.get_by_role("button", name="Regenerate response").click()
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(reply.locator(".body")).to_have_text("alpha beta")
    expect(reply.locator(".version-count")).to_have_text("2/2")
    expect(page.locator(".msg")).to_have_count(2)  # the first version is not on screen
    _switch(page, reply, "Previous version")
    expect(page.locator(".msg.assistant .body")).to_have_text("alpha beta gamma delta")
    expect(page.locator(".msg.assistant .version-count")).to_have_text("1/2")

    page.reload()  # the branch chosen is the one shown
    expect(page.locator(".msg.assistant .body")).to_have_text("alpha beta gamma delta")
    expect(page.locator(".msg.assistant .version-count")).to_have_text("1/2")

    # Edit the question: a second version of it, answered afresh.
    _set_max_tokens(page, 50)
    asked = page.locator(".msg.user").first
    asked.get_by_role("button", name="Edit", exact=True).click()
    assert_accessible(page, "edit-box")
    page.get_by_label("New version of the message").fill("one two")
    page.get_by_label("New version of the message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(reply.locator(".body")).to_have_text("one two")
    expect(page.locator(".msg.user .body")).to_have_text("one two")
    expect(page.locator(".msg.user .version-count")).to_have_text("2/2")
    expect(reply.locator(".versions")).to_be_hidden()  # the new question has one answer

    follow = ask(page, "three four")
    expect(follow.locator(".body")).to_have_text("three four")
    # The model was given this branch only: "one two" (2 words), its answer (2), the
    # follow-up (2); nothing of the first question or its two answers.
    stored = Message.objects.get(role="assistant", content="three four")
    assert stored.prompt_tokens == 6

    # Back to the first question: its branch comes back, with the answer chosen there.
    _switch(page, page.locator(".msg.user").first, "Previous version")
    expect(page.locator(".msg.user .body")).to_have_text(["alpha beta gamma delta"])
    expect(page.locator(".msg.assistant .body")).to_have_text(["alpha beta"])
    page.reload()
    expect(page.locator(".msg.user .body")).to_have_text(["alpha beta gamma delta"])
    expect(page.locator(".msg.user .version-count")).to_have_text("1/2")
    page.locator(".msg.user").first.get_by_role("button", name="Next version").click()
    expect(page.locator(".msg .body")).to_have_text(
        ["one two", "one two", "three four", "three four"]
    )
    assert_accessible(page, "branches")
    screenshots(page, tmp_path, "branches")
    assert errors == []


def test_a_reply_streams_and_resumes_on_a_branch_after_a_reload(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    errors = page_errors(page)
    conversation = create_conversation(alice, "fake-rate")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    _set_max_tokens(page, 3)
    first = ask(page, "count")
    expect(first.locator(".body")).to_have_text("t0 t1 t2")
    _set_max_tokens(page, 400)  # 4 s at the fake's 100 tokens/s
    first.get_by_role("button", name="Regenerate response").click()
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("t20 ")
    # Away to the first version while the second one streams, and back.
    reply.get_by_role("button", name="Previous version").click()
    expect(page.locator(".msg.assistant .body")).to_have_text("t0 t1 t2")
    _switch(page, page.locator(".msg.assistant"), "Next version")
    expect(page.locator(".msg.assistant .body")).to_contain_text("t60 ")
    page.reload()  # mid-stream, on the second branch
    reply = page.locator(".msg.assistant")
    expect(reply.locator(".version-count")).to_have_text("2/2")
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=30_000)
    expected = "".join(f"t{i} " for i in range(400))
    assert reply.locator(".body").text_content().strip() == expected.strip()
    second = Message.objects.filter(role="assistant").order_by("created_at").last()
    assert second.content == expected
    assert errors == []
