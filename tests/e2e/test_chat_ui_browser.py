"""The chat page as a person uses it on a phone and a desktop: the drawer, following the
answer only from the bottom, keyboard shortcuts, image-only messages and the lightbox,
the length counter, the queue, labels and icons. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Conversation, Message
from playground.generations.service import create_conversation
from tests.e2e.screens import PHONE, horizontal_overflow, log_in, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AT_BOTTOM = "() => { const s = document.getElementById('scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight <= 48; }"
SCROLL_TOP = "() => document.getElementById('scroller').scrollTop"


def _titled(user, model: str, title: str) -> Conversation:  # type: ignore[no-untyped-def]
    conversation = create_conversation(user, model)
    conversation.title = title
    conversation.save(update_fields=["title"])
    return conversation


def test_on_a_phone_the_list_is_a_drawer_and_the_composer_fits(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    other = _titled(alice, "fake-echo", "Trip to Lisbon")
    here = _titled(alice, "fake-echo", "Sourdough starter")
    log_in(page, stack, alice)
    page.set_viewport_size(PHONE)
    page.goto(f"{stack}/c/{here.id}/")
    drawer = page.locator("#sidebar")
    toggle = page.get_by_role("button", name="Conversations")
    expect(toggle).to_be_visible()
    expect(drawer).to_be_hidden()
    assert horizontal_overflow(page) <= 0
    for control in (page.get_by_label("Message"), page.get_by_role("button", name="Send")):
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"], "the composer is cut off"

    page.get_by_label("Message").fill("Hello from a phone")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_have_text("Hello from a phone")
    assert horizontal_overflow(page) <= 0

    toggle.click()
    expect(drawer).to_be_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    current = drawer.get_by_role("link", name="Sourdough starter")
    expect(current).to_have_attribute("aria-current", "page")
    expect(current).to_be_focused()
    page.wait_for_timeout(300)  # the slide-in
    page.screenshot(path=str(tmp_path / "drawer-open-390.png"))
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(toggle).to_be_focused()
    toggle.click()
    page.locator("#backdrop").click(position={"x": 370, "y": 400})  # outside the drawer
    expect(drawer).to_be_hidden()
    toggle.click()
    drawer.get_by_role("link", name="Trip to Lisbon").click()
    expect(page).to_have_url(re.compile(f"/c/{other.id}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip to Lisbon")
    screenshots(page, tmp_path, "phone-chat")

    # A new conversation is a chat page too: the composer, and the list in the drawer.
    page.set_viewport_size(PHONE)
    page.goto(stack + "/")
    expect(page.get_by_label("Message")).to_be_visible()
    toggle.click()
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    screenshots(page, tmp_path, "phone-index")


def test_the_view_follows_the_answer_only_while_the_reader_is_at_the_bottom(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-rate")
    log_in(page, stack, alice)
    page.set_viewport_size({"width": 1280, "height": 600})
    page.goto(f"{stack}/c/{conversation.id}/")
    # A tall question, so the page has somewhere to scroll; the fake answers 512 words at 100/s.
    page.get_by_label("Message").fill("\n".join(f"line {i}" for i in range(60)))
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("t40 ")
    page.wait_for_function(AT_BOTTOM)  # following while at the bottom

    page.mouse.move(640, 300)
    page.mouse.wheel(0, -1500)  # the reader scrolls up to read the question
    page.wait_for_function("() => document.getElementById('scroller').scrollTop < 200")
    held = page.evaluate(SCROLL_TOP)
    page.wait_for_timeout(2000)  # 200 more words stream in meanwhile
    expect(reply).to_have_class(re.compile("streaming"))
    assert abs(page.evaluate(SCROLL_TOP) - held) < 2, "the page pulled the reader back down"
    latest = page.get_by_role("button", name="Latest")
    expect(latest).to_be_visible()
    screenshots(page, tmp_path, "scrolled-up")

    latest.click()
    page.wait_for_function(AT_BOTTOM)
    expect(latest).to_be_hidden()
    page.wait_for_timeout(500)
    assert page.evaluate(AT_BOTTOM)  # and it follows again
    page.get_by_role("button", name="Stop").click()


def test_keyboard_shortcuts_stop_search_and_start_a_new_chat(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    _titled(alice, "fake-echo", "Recipes for bread")
    _titled(alice, "fake-echo", "Tax questions")
    conversation = create_conversation(alice, "fake-rate")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Message").fill("count for me")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("t3 ")
    page.keyboard.press("Escape")  # Esc stops the answer, from the message box too
    expect(reply.locator(".meta")).to_have_text("Stopped", timeout=5_000)

    page.locator("h1").click()  # focus out of the message box: "/" then means search
    page.keyboard.press("/")
    search = page.get_by_role("searchbox", name="Search conversations")
    expect(search).to_be_focused()
    page.keyboard.type("bread")
    conversations = page.locator("#conversation-list li.conversation .title")
    expect(conversations).to_have_text(["Recipes for bread"])

    before = Conversation.objects.filter(user=alice).count()
    page.keyboard.press("Control+Shift+O")
    expect(page).not_to_have_url(re.compile(str(conversation.id)))
    expect(page.get_by_label("Message")).to_be_visible()
    # An empty new conversation is not stored (it is, with its first message).
    assert Conversation.objects.filter(user=alice).count() == before


def test_an_image_alone_can_be_sent_and_opens_larger(stack, alice, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.media import files

    conversation = create_conversation(alice, "fake-echo")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    picture = tmp_path / "red.png"
    picture.write_bytes(files.image_bytes("PNG", size=(640, 480)))
    page.set_input_files("#file-input", str(picture))
    expect(page.locator("#tray .chip.ready")).to_have_count(1, timeout=30_000)
    page.get_by_role("button", name="Send").click()  # no text: the image is the message
    expect(page.locator(".msg.user .media img")).to_have_count(1)
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=30_000)
    stored = Message.objects.get(conversation=conversation, role="user")
    assert stored.content == "" and stored.attachments.count() == 1
    expect(page.locator("#tray .chip")).to_have_count(0)

    opener = page.get_by_role("button", name="Open image red.png")
    opener.click()
    box = page.get_by_role("dialog", name="Image: red.png")
    expect(box).to_be_visible()
    large = box.locator("img").bounding_box()
    small = page.locator(".msg.user .media img").bounding_box()
    assert large and small and large["width"] > small["width"] * 1.5
    page.screenshot(path=str(tmp_path / "lightbox-1280.png"))
    page.keyboard.press("Escape")  # closes the picture, does not stop anything
    expect(box).to_be_hidden()
    expect(opener).to_be_focused()
    opener.click()
    page.get_by_role("button", name="Close image").click()
    expect(box).to_be_hidden()
    page.reload()
    expect(page.locator(".msg.user .media img")).to_have_count(1)
    screenshots(page, tmp_path, "image-message")


def test_the_counter_warns_before_the_limit_and_long_text_is_never_lost(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings

    limit = settings.INFERENCE["MAX_PROMPT_CHARS"]
    conversation = create_conversation(alice, "fake-echo")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    box = page.get_by_label("Message")
    counter = page.locator("#counter")
    box.fill("short question")
    expect(counter).to_have_text("")
    near = "a" * int(limit * 0.9)
    box.fill(near)
    expect(counter).to_have_text(f"{len(near):,} / {limit:,} characters")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    over = "b" * (limit + 25)
    box.fill(over)
    expect(counter).to_contain_text("too long by 25")
    expect(counter).to_have_class(re.compile("over"))
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    box.press("Enter")
    assert box.input_value() == over  # nothing sent, nothing cleared
    assert Message.objects.filter(conversation=conversation).count() == 0
    screenshots(page, tmp_path, "too-long")
    box.fill("fine now")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_the_queue_position_counts_down_while_the_message_waits(
    stack, alice, page, busy_single
) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from playground.generations.service import request_stop, start_generation

    blocker = User.objects.get(username="blocker")
    ahead = start_generation(blocker, create_conversation(blocker, busy_single).id, "me first")
    conversation = create_conversation(alice, busy_single)
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Message").fill("my turn?")
    page.get_by_label("Message").press("Enter")
    status = page.locator("#status")
    expect(status).to_have_text("Queued (1 ahead)")
    request_stop(blocker, ahead.generation_id)  # the one ahead gives up
    expect(status).to_have_text("Queued (next)")
    for reply in Message.objects.filter(
        model=busy_single, status__in=("queued", "running"), conversation__user=blocker
    ):
        request_stop(blocker, reply.id)  # the slot frees up
    expect(page.locator(".msg.assistant").last.locator(".body")).to_contain_text(
        "t3 ", timeout=30_000
    )
    expect(status).to_have_text("")
    page.get_by_role("button", name="Stop").click()


def test_labels_headings_icons_and_the_thinking_toggle_only_where_a_model_thinks(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    smol = _titled(alice, "smollm2", "Small talk")
    question = Message.objects.create(conversation=smol, role="user", content="Hi there")
    Message.objects.create(
        conversation=smol,
        parent=question,
        role="assistant",
        status=Message.Status.DONE,
        model="smollm2",
        content="Hello! How can I help?",
    )
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{smol.id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Small talk")
    expect(page.get_by_role("heading", name="Conversations")).to_be_attached()
    expect(page.locator(".msg.user .speaker")).to_have_text("You")
    expect(page.locator(".msg.assistant .speaker")).to_have_text("SmolLM2 135M Instruct (CPU demo)")
    expect(page.get_by_role("link", name="Small talk")).to_have_attribute("aria-current", "page")
    # SmolLM2 has no thinking mode: no checkbox that would do nothing.
    expect(page.locator("#thinking-toggle")).to_be_hidden()
    expect(page.get_by_label("Thinking")).to_have_count(1)
    expect(page.get_by_label("Thinking")).to_be_hidden()
    # Thumbs are drawn as SVG, not emoji that need an emoji font.
    for name in ("Good response", "Bad response"):
        thumb = page.get_by_role("button", name=name)
        expect(thumb.locator("svg")).to_have_count(1)
        assert (thumb.text_content() or "").strip() == ""
    assert not re.search("[\U0001f300-\U0001faff]", page.locator("body").inner_text())
    screenshots(page, tmp_path, "smollm2")

    qwen = create_conversation(alice, "qwen3.5-tiny")
    page.goto(f"{stack}/c/{qwen.id}/")
    expect(page.get_by_label("Thinking")).to_be_visible()
