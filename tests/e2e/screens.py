"""What every page test checks the same way: screenshots at a desktop and a phone width,
nothing scrolling sideways on the phone, and the page logged in with a session cookie."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from tests.helpers import session_cookie

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def log_in(page, base_url: str, user) -> None:  # type: ignore[no-untyped-def]
    page.context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(user), "url": base_url}]
    )


def horizontal_overflow(page) -> int:  # type: ignore[no-untyped-def]
    """How many pixels the page is wider than the window (0: nothing scrolls sideways)."""
    return int(
        page.evaluate(
            "() => document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def screenshots(page, directory: Path, name: str) -> list[Path]:  # type: ignore[no-untyped-def]
    """Full-page screenshots at 1280 and 390 px, saved in ``directory`` (and copied to
    $PLAYGROUND_ARTEFACTS when set). At 390 px nothing may scroll sideways."""
    original = page.viewport_size
    saved = []
    for label, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # a frame for the layout to settle
        path = directory / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
        if label == "390":
            overflow = horizontal_overflow(page)
            assert overflow <= 0, f"{name}: the page scrolls {overflow} px sideways at 390 px"
            assert page.evaluate("() => document.scrollingElement.scrollWidth") <= 390
    artefacts = os.environ.get("PLAYGROUND_ARTEFACTS")
    if artefacts:
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        for path in saved:
            shutil.copy(path, Path(artefacts) / path.name)
    if original:
        page.set_viewport_size(original)
    return saved


def page_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The page's uncaught script errors, collected from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def ask(page, text: str):  # type: ignore[no-untyped-def]
    """Send a message from the composer and wait for its reply to finish streaming."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_have_class(re.compile("streaming"), timeout=60_000)
    return reply
