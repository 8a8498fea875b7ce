"""Every page, as a visitor, a user and a staff member sees it: a Content-Security-Policy that
runs no inline script (and the page still works under it), no serious or critical axe-core
violation, readable contrast in dark mode, styled login and signup forms, and screenshots
at 1280 and 390 px with nothing scrolling sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.e2e.a11y import assert_accessible
from tests.e2e.screens import PHONE, log_in, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Recorded from the first script of every document (Playwright's init scripts are not
# page scripts, so the policy does not apply to them).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.effectiveDirective + " " + (e.blockedURI || "inline"));
});
"""

INJECT_INLINE = """() => {
  const s = document.createElement("script");
  s.textContent = "window.__inline = 'ran'";
  document.body.append(s);
  const b = document.createElement("button");
  b.setAttribute("onclick", "window.__inline = 'handler'");
  document.body.append(b);
  b.click();
  b.remove();
}"""

CONTRAST = """(selector) => {
  const el = document.querySelector(selector);
  const parse = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let node = el, bg = null;
  while (node) {  // the first opaque background behind the text
    const c = getComputedStyle(node).backgroundColor;
    if (!c.startsWith("rgba") || !c.endsWith(", 0)")) { bg = c; break; }
    node = node.parentElement;
  }
  const a = lum(parse(getComputedStyle(el).color)), b = lum(parse(bg || "rgb(255,255,255)"));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def _directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


def _check(page, response, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The policy is sent and enforced, the page broke none of it, axe is happy, and it
    fits a phone."""
    policy = response.headers.get("content-security-policy", "")
    assert _directive(policy, "script-src") == ["'self'"], (name, policy)
    assert "'unsafe-inline'" not in _directive(policy, "style-src-elem")
    page.wait_for_load_state("load")
    assert page.evaluate("() => window.__csp") == [], name  # the page itself needs nothing more
    page.evaluate(INJECT_INLINE)
    assert page.evaluate("() => window.__inline") is None, name
    assert any(v.startswith("script-src") for v in page.evaluate("() => window.__csp")), name
    page.evaluate("() => { window.__csp = []; }")
    assert_accessible(page, name)
    screenshots(page, tmp_path, name)


def test_every_page_sends_a_policy_that_runs_no_inline_script_and_passes_axe(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    page.context.add_init_script(WATCH_CSP)

    response = page.goto(stack + "/accounts/login/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    _check(page, response, "login", tmp_path)

    response = page.goto(stack + "/accounts/signup/")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    _check(page, response, "signup", tmp_path)

    # A conversation with rendered text, reasoning, a finished reply and its thumbs.
    conversation = create_conversation(alice, "fake-echo")
    question = Message.objects.create(
        conversation=conversation, role="user", content="Show me a **table** and $x^2$."
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=Message.Status.DONE,
        model="fake-echo",
        reasoning="The user wants a *table*.",
        content="| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n\n$x^2$",
    )
    alice.is_staff = True
    alice.save()
    log_in(page, stack, alice)
    response = page.goto(stack + "/")
    expect(page.get_by_role("heading", name="Start a conversation")).to_be_visible()
    _check(page, response, "chat-index", tmp_path)

    response = page.goto(f"{stack}/c/{conversation.id}/")
    expect(page.locator(".msg.assistant table")).to_be_visible()
    expect(page.locator(".msg .katex").first).to_be_visible()
    _check(page, response, "chat", tmp_path)

    response = page.goto(stack + "/dashboard/")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-queue') !== undefined")
    _check(page, response, "dashboard", tmp_path)

    response = page.goto(f"{stack}/dashboard/conversations/{conversation.id}/")
    expect(page.get_by_text("Read-only staff view")).to_be_visible()
    _check(page, response, "dashboard-conversation", tmp_path)

    # Django's admin (not ours to restyle) also works under the policy.
    page.goto(stack + "/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    assert page.evaluate("() => window.__csp") == []

    response = page.goto(stack + "/arena/")
    page.wait_for_load_state("networkidle")
    _check(page, response, "arena", tmp_path)

    response = page.goto(stack + "/arena/leaderboard/")
    _check(page, response, "leaderboard", tmp_path)

    response = page.goto(stack + "/settings/keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()
    response = page.goto(stack + "/settings/keys/")
    _check(page, response, "keys", tmp_path)

    # Locked out: five wrong passwords for one username from this address.
    page.context.clear_cookies()
    for _ in range(5):
        page.goto(stack + "/accounts/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("wrong-password")
        with page.expect_response(re.compile(r"/accounts/login/")) as answer:
            page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Too many failed logins")).to_be_visible()
    _check(page, answer.value, "locked", tmp_path)


def test_dark_mode_text_and_main_button_have_at_least_4_5_to_1(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, "fake-echo")
    Message.objects.create(conversation=conversation, role="user", content="Hello")
    log_in(page, stack, alice)
    for scheme in ("dark", "light"):
        page.emulate_media(color_scheme=scheme)
        page.goto(f"{stack}/c/{conversation.id}/")
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        for selector in ("#send", "body", ".msg.user .body", "#model-status", ".speaker"):
            ratio = page.evaluate(CONTRAST, selector)
            assert ratio >= 4.5, f"{scheme}: {selector} has contrast {ratio:.2f}:1"
        assert_accessible(page, f"chat ({scheme})")
        page.set_viewport_size(PHONE)
        page.get_by_role("button", name="Conversations").click()
        expect(page.locator("#sidebar")).to_be_visible()
        assert_accessible(page, f"chat with the drawer open ({scheme})")
        page.set_viewport_size({"width": 1280, "height": 800})
        screenshots(page, tmp_path, f"chat-{scheme}")


def test_signup_is_a_styled_form_with_labels_help_and_errors(
    stack, transactional_db, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    page.goto(stack + "/accounts/signup/")
    form = page.locator("main form")
    # Every field has a visible label; help is tied to its field; no raw Django <p> list.
    username = page.get_by_label("Username")
    expect(username).to_be_visible()
    assert username.get_attribute("aria-describedby") == "id_username_helptext"
    expect(page.locator("#id_username_helptext")).to_contain_text("150 characters")
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    expect(page.get_by_label("Password confirmation")).to_be_visible()
    assert form.locator(":scope > p").count() == 0
    card = page.locator("main.auth")
    assert card.evaluate("(el) => getComputedStyle(el).borderTopStyle") == "solid"
    box, field = card.bounding_box(), username.bounding_box()
    assert box and field and field["width"] > box["width"] * 0.7  # full-width inputs
    screenshots(page, tmp_path, "signup-empty")

    username.fill("carol")
    page.get_by_label("Password", exact=True).fill("a-long-pass-phrase-9")
    page.get_by_label("Password confirmation").fill("something-else-entirely")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("didn’t match")
    screenshots(page, tmp_path, "signup-error")
    page.get_by_label("Password", exact=True).fill("a-long-pass-phrase-9")
    page.get_by_label("Password confirmation").fill("a-long-pass-phrase-9")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    assert User.objects.filter(username="carol").exists()
