"""The conversation's controls in the browser: the system prompt at any time, the
sampling panel (the preset's values, changed, kept, refused when out of range), the
model switched mid-conversation from a picker with live worker status, and thinking
shown only for models that think."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect

from playground.chat.models import Conversation, Message
from playground.devservers import worker_command
from playground.generations.service import create_conversation
from tests.e2e.a11y import assert_accessible
from tests.e2e.screens import ask, log_in, page_errors, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_system_prompt_can_be_changed_mid_conversation(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-echo", system_prompt="Be brief.")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    ask(page, "one")
    page.get_by_text("System prompt", exact=True).click()
    box = page.get_by_label("Instructions for the whole conversation")
    expect(box).to_have_value("Be brief.")
    box.fill("Answer in French, please.")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#system-status")).to_have_text("Saved. The next reply follows it.")
    ask(page, "two")
    # The fake counts words: the second reply was given the new prompt (4 words), the
    # first turn (1 + 1) and the question (1).
    second = Message.objects.filter(role="assistant").order_by("created_at").last()
    assert second.prompt_tokens == 4 + 1 + 1 + 1
    page.reload()
    page.get_by_text("System prompt", exact=True).click()
    expect(page.get_by_label("Instructions for the whole conversation")).to_have_value(
        "Answer in French, please."
    )


def test_the_sampling_panel_shows_the_preset_and_keeps_changes(  # type: ignore[no-untyped-def]
    stack, alice, page, tmp_path
) -> None:
    errors = page_errors(page)
    conversation = create_conversation(alice, "qwen3.5-tiny")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Sampling preset").select_option(label="Thinking · precise coding")
    page.get_by_text("Sampling", exact=True).click()
    expect(page.locator("#sampling-source")).to_have_text("Preset: Thinking · precise coding.")
    values = {
        "Temperature": "0.6",
        "Top P": "0.95",
        "Top K": "20",
        "Presence penalty": "0",
        "Max tokens": "32",  # the preset's length, capped at the model's maximum
    }
    for label, value in values.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_label("Temperature").press("Enter")
    expect(page.locator("#sampling-status")).to_have_text("Saved")
    expect(page.locator("#sampling-source")).to_have_text(
        "Preset: Thinking · precise coding, with your changes."
    )
    assert_accessible(page, "sampling")
    screenshots(page, tmp_path, "sampling")

    page.get_by_label("Temperature").fill("5")
    page.get_by_label("Temperature").press("Enter")
    expect(page.locator("#sampling-status")).to_have_text("temperature must be between 0 and 2")
    expect(page.get_by_label("Temperature")).to_have_attribute("aria-invalid", "true")
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.preset, stored.params) == ("thinking-coding", {"temperature": 0.3})

    page.reload()  # kept with the conversation
    expect(page.get_by_label("Sampling preset")).to_have_value("thinking-coding")
    page.get_by_text("Sampling", exact=True).click()
    expect(page.get_by_label("Temperature")).to_have_value("0.3")
    expect(page.get_by_label("Top K")).to_have_value("20")
    page.get_by_role("button", name="Reset to preset").click()
    expect(page.get_by_label("Temperature")).to_have_value("0.6")
    assert Conversation.objects.get(pk=conversation.pk).params == {}
    assert errors == []


def test_the_model_is_switched_mid_conversation_from_a_picker_with_live_status(  # type: ignore[no-untyped-def]
    stack, alice, page, service_env, tmp_path
) -> None:
    errors = page_errors(page)
    conversation = create_conversation(alice, "fake-echo")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    first = ask(page, "hello there")
    expect(first.locator(".speaker")).to_have_text(
        "FakeEchoEngine (test fake: repeats your message)"
    )
    picker = page.get_by_label("Model")
    offline = picker.locator("option[value=unserved]")
    expect(offline).to_have_text("No worker (test) (offline: no worker)")
    expect(offline).to_be_disabled()
    expect(page.locator("#model-status")).to_have_text("online")

    picker.select_option("fake-rate")
    expect(page.locator("#status")).to_contain_text("Switched to FakeRateEngine")
    page.get_by_text("Sampling", exact=True).click()
    page.get_by_label("Max tokens").fill("3")
    page.get_by_label("Max tokens").press("Enter")
    expect(page.locator("#sampling-status")).to_have_text("Saved")
    second = ask(page, "and now?")
    expect(second.locator(".speaker")).to_have_text("FakeRateEngine (test fake, not a model)")
    expect(second.locator(".body")).to_have_text("t0 t1 t2")
    assert Conversation.objects.get(pk=conversation.pk).model == "fake-rate"
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("fake-rate")
    expect(page.locator(".msg.assistant .speaker")).to_have_text(
        [
            "FakeEchoEngine (test fake: repeats your message)",
            "FakeRateEngine (test fake, not a model)",
        ]
    )

    # A worker for the unserved model comes online: the picker offers it, live.
    worker = subprocess.Popen(
        worker_command("unserved", "--loglevel", "WARNING"),
        env=service_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        expect(offline).to_be_enabled(timeout=45_000)
        expect(offline).to_have_text("No worker (test)")
    finally:
        worker.terminate()
        worker.wait(30)
    expect(offline).to_be_disabled(timeout=45_000)
    assert_accessible(page, "model-picker")
    screenshots(page, tmp_path, "model-picker")
    assert errors == []


def test_thinking_is_offered_only_for_models_that_think(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "smollm2")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    thinking = page.get_by_label("Thinking")
    expect(thinking).to_be_hidden()
    expect(page.get_by_label("Sampling preset")).to_be_hidden()
    page.get_by_label("Model").select_option("qwen3.5-tiny")
    expect(thinking).to_be_visible()
    expect(thinking).to_be_checked()  # Qwen 3.5 thinks unless asked not to
    expect(page.get_by_label("Sampling preset").locator("option")).to_have_count(5)
    thinking.uncheck()
    expect(page.locator("#sampling-status")).to_have_text("Saved")
    page.reload()
    expect(page.get_by_label("Thinking")).not_to_be_checked()  # the choice is kept
    page.get_by_label("Model").select_option("fake-rate")
    expect(page.get_by_label("Thinking")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text("Switched to FakeRateEngine")
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.model, stored.thinking) == ("fake-rate", False)
