"""Managing conversations in the browser: a new one is stored only when its first
message is sent; the list shows model and date; rename, pin, delete with Undo; search
over titles and message text; Markdown and JSON downloads; a read-only share link that
the owner can revoke."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from playground.chat.models import Conversation, Message
from tests.e2e.a11y import assert_accessible
from tests.e2e.screens import log_in, page_errors, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ECHO_LABEL = "FakeEchoEngine (test fake: repeats your message)"


def _chat(user, title: str, question: str, answer: str, model: str = "fake-echo") -> Conversation:  # type: ignore[no-untyped-def]
    conversation = Conversation.objects.create(user=user, model=model, title=title)
    asked = Message.objects.create(conversation=conversation, role="user", content=question)
    reply = Message.objects.create(
        conversation=conversation, parent=asked, role="assistant", content=answer, model=model
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=reply)
    return conversation


def _entry(page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("#conversation-list li.conversation", has_text=title)


def _menu(page, title: str, action: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label(f"Actions for {title}").click()
    _entry(page, title).get_by_role("button", name=action).click()


def test_a_new_conversation_is_stored_only_when_its_first_message_is_sent(  # type: ignore[no-untyped-def]
    stack, alice, page, tmp_path
) -> None:
    errors = page_errors(page)
    log_in(page, stack, alice)
    page.goto(stack + "/")
    expect(page.get_by_role("heading", name="New conversation")).to_be_visible()
    page.get_by_label("Model").select_option(label=ECHO_LABEL)
    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("button", name="New conversation").click()
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("fake-echo")  # the choice is remembered
    expect(page.locator("#conversation-list")).to_have_text("No conversations yet.")
    assert not Conversation.objects.filter(user=alice).exists()
    assert_accessible(page, "new-conversation")
    screenshots(page, tmp_path, "new-conversation")

    page.get_by_text("System prompt", exact=True).click()
    page.get_by_label("Instructions for the whole conversation").fill("Be brief.")
    page.get_by_label("Message").fill("Where is Lisbon?")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=30_000)
    expect(reply.locator(".body")).to_have_text("Where is Lisbon?")
    conversation = Conversation.objects.get(user=alice)
    expect(page).to_have_url(f"{stack}/c/{conversation.id}/")
    assert (conversation.model, conversation.system_prompt) == ("fake-echo", "Be brief.")
    entry = _entry(page, "Where is Lisbon?")
    expect(entry.locator("a")).to_have_attribute("aria-current", "page")
    expect(entry.locator(".meta")).to_contain_text(ECHO_LABEL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Where is Lisbon?")
    page.reload()
    expect(page.locator(".msg .body")).to_have_text(["Where is Lisbon?", "Where is Lisbon?"])
    assert errors == []


def test_the_list_tells_same_titled_conversations_apart_by_model_and_date(  # type: ignore[no-untyped-def]
    stack, alice, page
) -> None:
    older = _chat(alice, "Capital of France", "Capital?", "Paris", model="smollm2")
    _chat(alice, "Capital of France", "Capital?", "Paris.")
    Conversation.objects.filter(pk=older.pk).update(updated_at="2025-03-03T10:00:00Z")
    log_in(page, stack, alice)
    page.goto(stack + "/")
    metas = page.locator("#conversation-list li.conversation .meta")
    expect(metas).to_have_count(2)
    expect(metas.nth(0)).to_contain_text(ECHO_LABEL)
    expect(metas.nth(1)).to_contain_text("SmolLM2")
    expect(metas.nth(1).locator("time")).to_have_text("Mar 3, 2025")
    expect(metas.nth(1).locator("time")).to_have_attribute("datetime", re.compile("^2025-03-03"))


def test_rename_pin_and_delete_with_undo(stack, alice, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    errors = page_errors(page)
    first = _chat(alice, "Trip ideas", "Where to go?", "Lisbon.")
    _chat(alice, "Recipes", "Dinner?", "Pasta.")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{first.id}/")
    titles = page.locator("#conversation-list li.conversation .title")
    expect(titles).to_have_text(["Recipes", "Trip ideas"])

    _menu(page, "Trip ideas", "Rename")
    page.get_by_label("New title").fill("Lisbon in May")
    page.get_by_label("New title").press("Enter")
    expect(titles).to_have_text(["Recipes", "Lisbon in May"])  # renaming does not reorder
    expect(page.get_by_role("heading", level=1)).to_have_text("Lisbon in May")
    _menu(page, "Recipes", "Rename")
    page.get_by_label("New title").fill("Not saved")
    page.get_by_label("New title").press("Escape")
    expect(titles).to_have_text(["Recipes", "Lisbon in May"])

    _menu(page, "Lisbon in May", "Pin")
    expect(titles).to_have_text(["Lisbon in May", "Recipes"])
    expect(_entry(page, "Lisbon in May").get_by_role("img", name="Pinned")).to_be_visible()
    page.reload()
    expect(titles).to_have_text(["Lisbon in May", "Recipes"])

    page.get_by_label("Actions for Recipes").click()
    expect(_entry(page, "Recipes").get_by_role("button", name="Delete")).to_be_visible()
    assert_accessible(page, "entry-menu")
    page.keyboard.press("Escape")  # closes the menu, nothing else
    expect(_entry(page, "Recipes").get_by_role("button", name="Delete")).to_be_hidden()
    _menu(page, "Recipes", "Delete")
    expect(titles).to_have_text(["Lisbon in May"])
    toast = page.locator("#toast")
    expect(toast).to_contain_text("Deleted “Recipes”.")
    assert_accessible(page, "delete-undo")
    screenshots(page, tmp_path, "delete-undo")
    toast.get_by_role("button", name="Undo").click()
    expect(titles).to_have_text(["Lisbon in May", "Recipes"])
    assert Conversation.objects.filter(deleted_at__isnull=True).count() == 2

    # Deleting the open conversation leads to a new one, still with Undo.
    _menu(page, "Lisbon in May", "Delete")
    expect(page).to_have_url(stack + "/")
    expect(titles).to_have_text(["Recipes"])
    page.locator("#toast").get_by_role("button", name="Undo").click()
    expect(titles).to_have_text(["Lisbon in May", "Recipes"])
    assert Conversation.objects.get(pk=first.pk).deleted_at is None
    assert errors == []


def test_search_finds_titles_and_message_text_with_slash_to_focus(  # type: ignore[no-untyped-def]
    stack, alice, bob, page, tmp_path
) -> None:
    _chat(alice, "Weekend plans", "Museums in Lisbon?", "The tile museum.")
    _chat(alice, "Cooking", "Something with capers?", "A puttanesca with capers and olives.")
    _chat(bob, "Bob's capers", "capers", "capers")
    log_in(page, stack, alice)
    page.goto(stack + "/")
    page.locator("body").press("/")
    search = page.get_by_label("Search conversations")
    expect(search).to_be_focused()
    search.press_sequentially("caper")  # a prefix of a word in an answer
    titles = page.locator("#conversation-list li.conversation .title")
    expect(titles).to_have_text(["Cooking"])
    expect(page.locator("#conversation-list mark").first).to_have_text("capers")
    expect(page.locator("#search-status")).to_have_text("1 conversation matches")
    assert_accessible(page, "search")
    screenshots(page, tmp_path, "search")
    search.fill("weekend")
    expect(titles).to_have_text(["Weekend plans"])
    search.fill("tokyo")
    expect(page.locator("#conversation-list")).to_have_text("No conversations match.")
    search.press("Escape")
    expect(titles).to_have_text(["Cooking", "Weekend plans"])


def test_downloads_as_markdown_and_json(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    conversation = _chat(alice, "Export me", "What is **2+2**?", "It is 4.")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Conversation actions").click()
    with page.expect_download() as markdown:
        page.get_by_role("link", name="Download Markdown").click()
    assert markdown.value.suggested_filename == "export-me.md"
    text = Path(markdown.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Export me") and "## You\n\nWhat is **2+2**?" in text
    assert "It is 4." in text
    page.get_by_label("Conversation actions").click()
    with page.expect_download() as exported:
        page.get_by_role("link", name="Download JSON").click()
    data = json.loads(Path(exported.value.path()).read_text(encoding="utf-8"))
    assert [m["content"] for m in data["messages"]] == ["What is **2+2**?", "It is 4."]


def test_a_read_only_link_shows_the_conversation_until_revoked(  # type: ignore[no-untyped-def]
    stack, alice, browser, page, tmp_path
) -> None:
    conversation = _chat(alice, "Shared trip", "Where to eat in **Lisbon**?", "Try the *pastéis*.")
    _chat(alice, "My private diary", "secret", "kept")
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Conversation actions").click()
    page.get_by_role("button", name="Share…").click()
    link = page.get_by_label("Share link")
    expect(link).to_have_value(re.compile(r"/s/[\w-]{40,}/$"))
    url = link.input_value()
    assert_accessible(page, "share-dialog")

    visitor = browser.new_context(viewport={"width": 1280, "height": 800})
    other = visitor.new_page()
    other.goto(url)
    expect(other.get_by_role("heading", level=1)).to_have_text("Shared trip")
    expect(other.locator(".msg")).to_have_count(2)
    expect(other.locator(".msg.user strong")).to_have_text("Lisbon")  # rendered Markdown
    expect(other.locator(".msg.assistant em")).to_have_text("pastéis")
    expect(other.locator("body")).not_to_contain_text("My private diary")
    expect(other.locator("textarea, form, input")).to_have_count(0)  # nothing to write with
    assert_accessible(other, "shared")
    screenshots(other, tmp_path, "shared")

    page.get_by_role("button", name="Revoke link").click()
    expect(page.locator("#share-status")).to_contain_text("Link revoked")
    assert other.goto(url).status == 404
    page.get_by_role("button", name="Close").click()
    visitor.close()
