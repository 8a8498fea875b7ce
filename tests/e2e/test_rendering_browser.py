"""Answers are rendered: Markdown, tables, highlighted code with a copy button, KaTeX math;
hostile HTML in the user's text or the model's output never runs; streaming stays cheap.

The model here is FakeEchoEngine (tests/catalogue.json): it repeats the user's message, so
the test chooses what the "model" writes. Payloads that would run set ``window.__pwned``
or open a dialog; both are watched."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from playground.chat.models import Message
from playground.generations.service import create_conversation
from tests.e2e.screens import ask, log_in, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ECHO = "fake-echo"

MARKDOWN = r"""# Heading one

Some **bold** and *italic* text with `inline code`.

| Planet | Moons |
|---|---|
| Earth | 1 |
| Mars | 2 |

```python
def square(x):
    return x * x
```

Inline math $E = mc^2$ and \(a^2 + b^2 = c^2\), but $5 and $10 stay money.

$$\int_0^1 x^2\,dx = \frac{1}{3}$$

\[\sum_{n=1}^{\infty} \frac{1}{n^2} = \frac{\pi^2}{6}\]
"""

PAYLOADS = """<script>window.__pwned = "script"; alert(1)</script>
<img src=x onerror="window.__pwned = 'img onerror'; alert(2)">
<svg onload="window.__pwned = 'svg onload'"><script>window.__pwned = 'svg script'</script></svg>
<iframe srcdoc="<script>parent.__pwned = 'iframe'</script>"></iframe>
<a href="javascript:window.__pwned = 'html link'">html link</a>
[markdown link](javascript:window.__pwned='markdown%20link')
![image](javascript:window.__pwned='image')
[data link](data:text/html,<script>alert(3)</script>)
<details open ontoggle="window.__pwned = 'ontoggle'">x</details>
$\\href{javascript:window.__pwned='katex'}{katex link}$
<style>body { display: none }</style>
"""


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _nothing_ran(page, dialogs: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    dangerous = page.locator(
        ".msg script, .msg iframe, .msg style, .msg [onerror], .msg [onload], .msg [ontoggle],"
        " .msg a[href^='javascript'], .msg a[href^='data'], .msg img[src^='javascript']"
    )
    expect(dangerous).to_have_count(0)
    expect(page.locator("body")).to_be_visible()  # the <style> did not hide the page


def test_an_answer_with_markdown_tables_code_and_math_is_rendered(
    stack, alice, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, ECHO)
    log_in(page, stack, alice)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{stack}/c/{conversation.id}/")
    reply = ask(page, MARKDOWN)

    for message in (reply, page.locator(".msg.user").last):  # the user's text too
        body = message.locator(".body")
        expect(body.get_by_role("heading", name="Heading one")).to_be_visible()
        expect(body.locator("strong")).to_have_text("bold")
        expect(body.locator("table td")).to_have_text(["Earth", "1", "Mars", "2"])
        expect(body.locator("pre code .hljs-keyword").first).to_have_text("def")
        expect(body.locator(".katex")).to_have_count(4)  # two inline, two display
        expect(body.locator(".katex-display")).to_have_count(2)
        expect(body).to_contain_text("$5 and $10 stay money")
        expect(body.locator(".code-lang")).to_have_text("python")

    reply.get_by_role("button", name="Copy code").click()
    expect(reply.get_by_role("button", name="Copy code")).to_have_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == "def square(x):\n    return x * x\n"

    page.reload()  # the stored reply renders the same
    expect(page.locator(".msg.assistant .katex")).to_have_count(4)
    expect(page.locator(".msg.assistant table td")).to_have_count(4)
    screenshots(page, tmp_path, "markdown")


def test_reasoning_is_rendered_as_markdown_too(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, ECHO)
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Thinking").check()  # the fake's output up to </think> is reasoning
    reply = ask(page, "Let me think about **this** and $x^2$.\n</think>\nThe answer is *42*.")
    reply.locator(".reasoning summary").click()
    expect(reply.locator(".reasoning strong")).to_have_text("this")
    expect(reply.locator(".reasoning .katex")).to_have_count(1)
    expect(reply.locator(".body em")).to_have_text("42")


def test_script_and_event_handler_payloads_never_run(stack, alice, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conversation = create_conversation(alice, ECHO)
    log_in(page, stack, alice)
    dialogs = _watch(page)
    page.goto(f"{stack}/c/{conversation.id}/")
    reply = ask(page, PAYLOADS)
    _nothing_ran(page, dialogs)
    # Shown as text, not dropped: the user can see what was written.
    expect(reply.locator(".body")).to_contain_text("<script>window.__pwned")
    expect(page.locator(".msg.user .body")).to_contain_text("onerror=")
    for name in ("html link", "markdown link"):
        links = page.get_by_role("link", name=name)
        for i in range(links.count()):
            links.nth(i).click()
    page.wait_for_timeout(300)
    _nothing_ran(page, dialogs)

    # The same text stored in the database (as a real model might have written it)
    # renders safely on a fresh load.
    earlier = Message.objects.filter(conversation=conversation).order_by("created_at").last()
    question = Message.objects.create(
        conversation=conversation, parent=earlier, role="user", content=PAYLOADS
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content=PAYLOADS,
        reasoning=PAYLOADS,
        status=Message.Status.DONE,
        model=ECHO,
    )
    page.reload()
    expect(page.locator(".msg.assistant")).to_have_count(2)
    page.locator(".msg.assistant .reasoning summary").last.click()
    page.wait_for_timeout(300)
    _nothing_ran(page, dialogs)
    screenshots(page, tmp_path, "payloads")


def test_a_long_answer_streams_without_rerendering_what_is_finished(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    # 120 sections, each a heading, a paragraph, a list and a code block: ~20 kB.
    sections = [
        f"## Part {i}\n\nParagraph {i} with **bold** words and `code`.\n\n"
        f"- item {i}.1\n- item {i}.2\n\n```js\nconst x{i} = {i};\n```\n"
        for i in range(120)
    ]
    text = "\n".join(sections)
    conversation = create_conversation(alice, ECHO)
    log_in(page, stack, alice)
    page.goto(f"{stack}/c/{conversation.id}/")
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    reply = page.locator(".msg.assistant").last
    # Mid-stream: finished blocks are frozen, only the last one is live.
    expect(reply.locator(".body .md-frozen").first).to_be_attached(timeout=30_000)
    expect(reply.locator(".body .md-live")).to_have_count(1)
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    expect(reply.locator(".body h2")).to_have_count(120)
    expect(reply.locator(".body .code-block")).to_have_count(120)
    parsed = int(reply.locator(".body").get_attribute("data-parsed-chars") or 0)
    # Each character is parsed while its block is live (a few frames) and once more in
    # the final render; re-rendering the whole answer on every frame would be ~frames/2
    # times the length (hundreds of frames here).
    print(
        f"parsed {parsed} characters for a {len(text)}-character answer: {parsed / len(text):.2f}x"
    )
    assert len(text) <= parsed < 5 * len(text), parsed / len(text)
