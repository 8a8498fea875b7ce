"""A person in a browser: log in, ask, watch the answer stream, refresh mid-answer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _log_in(page, base_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()


def _new_conversation(page, model_label: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Model").select_option(label=model_label)
    page.get_by_role("button", name="New conversation").click()
    expect(page.get_by_label("Message")).to_be_visible()


def test_a_user_asks_and_watches_the_answer_stream_in(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, stack)
    _new_conversation(page, "SmolLM2 135M Instruct (CPU demo)")
    page.get_by_label("Message").fill("What is the capital of France?")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("Paris", timeout=60_000)
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    # The conversation is listed and survives a reload.
    page.reload()
    expect(page.locator(".msg.assistant").last.locator(".body")).to_contain_text("Paris")
    expect(page.locator(".conversations")).to_contain_text("What is the capital of France?")


def test_refreshing_mid_answer_keeps_streaming_without_gaps(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, stack)
    _new_conversation(page, "FakeRateEngine (test fake, not a model)")
    page.get_by_label("Message").fill("count for me")
    page.get_by_label("Message").press("Enter")
    body = page.locator(".msg.assistant").last.locator(".body")
    expect(body).to_contain_text("t5 ")
    page.reload()  # mid-stream: the fake emits 100 tokens/s and max_tokens is 512
    body = page.locator(".msg.assistant").last.locator(".body")
    expect(page.locator(".msg.assistant").last).not_to_have_class(
        re.compile("streaming"), timeout=30_000
    )
    expected = "".join(f"t{i} " for i in range(512))
    # A rendered paragraph: the text without its trailing space.
    assert body.text_content().strip() == expected.strip()
    reply = Message.objects.get(role="assistant", conversation__user=alice)
    assert reply.content == expected


def test_stop_in_the_browser_stops_the_answer(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, stack)
    _new_conversation(page, "FakeRateEngine (test fake, not a model)")
    page.get_by_label("Message").fill("count for me")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("t3 ")
    page.get_by_role("button", name="Stop").click()
    expect(reply.locator(".meta")).to_have_text("Stopped", timeout=5_000)
    shown = reply.locator(".body").text_content()
    page.wait_for_timeout(500)
    assert reply.locator(".body").text_content() == shown
    stored = Message.objects.get(role="assistant", conversation__user=alice)
    assert stored.status == "cancelled" and stored.content.strip() == shown.strip()


def test_model_output_is_shown_as_text_not_html(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    from playground.generations.service import create_conversation

    conversation = create_conversation(alice, "fake-rate")
    user_message = Message.objects.create(
        conversation=conversation, role="user", content="<img src=x onerror=alert(1)>"
    )
    Message.objects.create(
        conversation=conversation, parent=user_message, role="assistant", content="<b>bold?</b>"
    )
    _log_in(page, stack)
    page.goto(f"{stack}/c/{conversation.id}/")
    expect(page.locator(".msg.assistant .body")).to_have_text("<b>bold?</b>")
    assert page.locator(".msg b, .msg img").count() == 0


def test_qwen_reasoning_shows_in_its_own_block_and_thinking_can_be_turned_off(
    stack, alice, page
) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, stack)
    page.get_by_label("Model").select_option(value="qwen3.5-tiny")
    page.locator("summary", has_text="System prompt").click()
    page.get_by_label("System prompt").fill("Answer in one word.")
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".conv-head")).to_contain_text("Qwen 3.5 tiny")
    thinking = page.get_by_label("Thinking")
    expect(thinking).to_be_checked()  # Qwen 3.5 thinks by default
    expect(page.get_by_label("Sampling preset").locator("option")).to_have_count(5)

    page.get_by_label("Message").fill("Why is the sky blue?")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".reasoning")).to_be_visible(timeout=30_000)
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(reply.locator(".reasoning summary")).to_have_text(re.compile(r"Thought for \d+\.\d s"))
    assert reply.locator(".reasoning .rbody").text_content()
    assert reply.locator(".body").text_content() == ""

    thinking.uncheck()
    page.get_by_label("Message").fill("And the sunset?")
    page.get_by_label("Message").press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(answer.locator(".reasoning")).to_be_hidden()
    assert answer.locator(".body").text_content()

    page.reload()  # both replies come back from the database the same way
    first = page.locator(".msg.assistant").first
    expect(first.locator(".reasoning summary")).to_have_text(re.compile(r"Thought for \d+\.\d s"))
    stored = Message.objects.filter(role="assistant").order_by("created_at")
    assert [m.thinking for m in stored] == [True, False]
    assert stored[0].conversation.system_prompt == "Answer in one word."


def test_images_and_videos_dropped_in_reach_the_vision_model(stack, alice, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64

    from tests.media import files

    _log_in(page, stack)
    page.get_by_label("Model").select_option(value="qwen3.5-tiny")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Thinking").uncheck()

    # Drag a picture in (a real drop event carrying a File), and pick a video.
    picture = base64.b64encode(files.image_bytes("PNG", size=(96, 64))).decode()
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const dt = new DataTransfer();
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], name, { type: "image/png" }));
            return dt;
        }""",
        ["red.png", picture],
    )
    page.dispatch_event("#composer", "drop", {"dataTransfer": transfer})
    clip = files.video_file(tmp_path / "clip.mp4", seconds=2.0, fps=10)
    page.set_input_files("#file-input", str(clip))
    chips = page.locator("#tray .chip.ready")
    expect(chips).to_have_count(2, timeout=30_000)
    expect(page.locator("#tray .chip.ready img")).to_have_count(1)
    expect(page.locator("#tray .chip.ready video")).to_have_count(1)
    expect(page.locator("#tray .chip .duration")).to_have_text("0:02")
    expect(page.locator("#tray progress")).to_have_count(0)

    # A bad file gets a readable reason and can be removed.
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"PK\x03\x04 definitely not a png")
    page.set_input_files("#file-input", str(bad))
    expect(page.locator("#tray .chip.failed .why")).to_contain_text("not an image or video")
    page.get_by_role("button", name="Remove notes.png").click()
    expect(page.locator("#tray .chip")).to_have_count(2)

    page.get_by_label("Message").fill("What is in these?")
    page.get_by_role("button", name="Send").click()
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    stored = Message.objects.get(role="assistant", conversation__user=alice)
    assert reply.locator(".body").text_content(), (
        stored.status,
        stored.error_code,
        stored.error_message,
        stored.content,
        stored.reasoning,
        stored.output_tokens,
    )
    assert (stored.images, stored.videos) == (1, 1) and stored.vision_tokens > 0

    page.reload()
    user = page.locator(".msg.user").last
    expect(user.locator(".media img")).to_have_count(1)
    expect(user.locator(".media video")).to_have_count(1)
    expect(user.locator(".media figcaption")).to_have_text("0:02")
    # The video element can seek (Range requests): jump to 1 s and read the position back.
    position = user.locator(".media video").evaluate(
        """(v) => new Promise((done) => {
            const seek = () => { v.currentTime = 1.0; v.addEventListener("seeked", () => done(v.currentTime), { once: true }); };
            if (v.readyState >= 1) seek(); else v.addEventListener("loadedmetadata", seek, { once: true });
        })"""
    )
    assert abs(position - 1.0) < 0.2


def test_a_waiting_reply_shows_its_place_in_the_queue_then_streams(
    stack, alice, page, busy_single
) -> None:  # type: ignore[no-untyped-def]
    from playground.generations.service import request_stop

    _log_in(page, stack)
    _new_conversation(page, "FakeRateEngine with one batch slot (test fake)")
    page.get_by_label("Message").fill("my turn?")
    page.get_by_label("Message").press("Enter")
    status = page.locator("#status")
    expect(status).to_contain_text("Queued")  # the only slot is taken
    for reply in Message.objects.filter(
        model=busy_single, status="queued", conversation__user__username="blocker"
    ):
        request_stop(reply.conversation.user, reply.id)  # free the slot
    body = page.locator(".msg.assistant").last.locator(".body")
    expect(body).to_contain_text("t3 ", timeout=30_000)
    expect(status).not_to_contain_text("Queued")
    page.get_by_role("button", name="Stop").click()


def test_a_conversation_too_long_for_the_model_is_refused_and_not_kept(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    _log_in(page, stack)
    _new_conversation(
        page, "Qwen 3.5 tiny MoE + vision (synthesised: real architecture, nonsense text)"
    )
    text = "Tell me about tokens. " * 400
    page.get_by_label("Message").fill(text)
    # The counter warns first (a rough estimate; the worker counts exactly).
    expect(page.locator("#counter")).to_contain_text("this model reads at most 1,024")
    page.get_by_label("Message").press("Enter")
    expect(page.locator("#status")).to_contain_text("1,024", timeout=60_000)
    expect(page.locator(".msg")).to_have_count(0)  # the turn is taken back off the page
    assert page.get_by_label("Message").input_value() == text  # and the text is not lost
    page.reload()
    expect(page.locator(".msg")).to_have_count(0)  # and was never kept
