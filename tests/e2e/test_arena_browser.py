"""A person in the arena: one prompt, two anonymous answers streaming side by side, a vote,
the names, and the leaderboard. Screenshots at 1280 and 390 px go to .data/screenshots/
(or $PLAYGROUND_SCREENSHOTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from playground.arena.models import Battle
from playground.generations.catalogue import get_catalogue
from playground.generations.models import QuotaOverride
from tests.helpers import ROOT, session_cookie

pytestmark = [pytest.mark.browser]
EXPECTED = " ".join(f"t{i}" for i in range(100))  # the fakes' 100 tokens (whitespace-normalised)
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", ROOT / ".data" / "screenshots"))

# Records each answer's text length whenever it changes, with the time: what the reader saw.
WATCH = """() => {
  window.grew = {a: [], b: []};
  for (const side of ["a", "b"]) {
    const body = document.querySelector("#arena-side-" + side + " .body");
    new MutationObserver(() => window.grew[side].push([performance.now(), body.textContent.length]))
      .observe(body, {childList: true, characterData: true, subtree: true});
  }
}"""


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _login(page, base_url: str, user) -> None:  # type: ignore[no-untyped-def]
    page.context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(user), "url": base_url}]
    )


def _no_sideways_scroll(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_a_user_battles_two_models_votes_sees_the_names_and_the_leaderboard(  # type: ignore[no-untyped-def]
    stack, alice, page
) -> None:
    _login(page, stack, alice)
    page.goto(stack + "/")
    page.get_by_role("link", name="Arena", exact=True).click()
    expect(page.get_by_role("heading", name="Arena", exact=True)).to_be_visible()
    page.evaluate(WATCH)
    expect(page.locator("#arena-model-a")).to_be_hidden()  # a random pair: nothing to choose
    page.get_by_label("Prompt for both models").fill("Say hello")
    page.get_by_role("button", name="Send to both").click()

    expect(page).to_have_url(re.compile(r"/arena/b/[0-9a-f-]{36}/$"))
    expect(page.get_by_label("Prompt for both models")).to_be_hidden()  # one prompt a battle
    sides = {key: page.locator(f"#arena-side-{key}") for key in ("a", "b")}
    expect(page.locator("#arena-prompt-shown")).to_have_text("Say hello")
    for side in sides.values():
        expect(side.locator(".body")).to_have_text(EXPECTED)
        expect(side.locator(".model-name")).to_have_text("")  # still anonymous
    vote = page.get_by_role("button", name="A is better")
    expect(vote).to_be_enabled()
    expect(page.locator("#arena-result")).to_have_text("Which answer is better?")

    grew = page.evaluate("window.grew")
    for key in ("a", "b"):
        lengths = [length for _, length in grew[key]]
        assert len(set(lengths)) >= 5, grew[key]  # it grew in steps: streamed, not dropped in
        assert lengths == sorted(lengths)
    # Side by side: each answer was still growing after the other had started.
    assert grew["a"][0][0] < grew["b"][-1][0] and grew["b"][0][0] < grew["a"][-1][0]
    _shot(page, "arena-1280-answers.png")

    vote.click()
    battle = Battle.objects.get()
    labels = [get_catalogue()[name].label for name in (battle.model_a, battle.model_b)]
    expect(page.locator("#arena-result")).to_have_text(
        f"You voted: A is better. Model A was {labels[0]}; model B was {labels[1]}."
    )
    expect(sides["a"].locator(".model-name")).to_have_text(labels[0])
    expect(sides["b"].locator(".model-name")).to_have_text(labels[1])
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(vote).to_be_disabled()
    assert Battle.objects.get().vote == "a"  # stored, once
    _shot(page, "arena-1280-voted.png")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(sides["b"].locator(".model-name")).to_be_visible()
    _no_sideways_scroll(page)
    box_a, box_b = sides["a"].bounding_box(), sides["b"].bounding_box()
    assert box_a and box_b and box_b["y"] >= box_a["y"] + box_a["height"]  # stacked
    _shot(page, "arena-390-voted.png")

    page.get_by_role("link", name="Leaderboard", exact=True).first.click()
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_have_text(labels[0])  # the winner leads
    expect(rows.nth(1).locator("th")).to_have_text(labels[1])
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("td").nth(3)).to_have_text("1")  # one vote each
    _no_sideways_scroll(page)
    _shot(page, "arena-390-leaderboard.png")
    page.set_viewport_size({"width": 1280, "height": 800})
    _shot(page, "arena-1280-leaderboard.png")


def test_a_battle_the_models_cannot_answer_shows_why_and_takes_no_vote(  # type: ignore[no-untyped-def]
    stack, alice, page
) -> None:
    _login(page, stack, alice)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(stack + "/arena/")
    page.get_by_label("Prompt for both models").fill("word " * 5000)  # the fakes read 4096
    page.get_by_role("button", name="Send to both").click()
    expect(page.locator("#arena-result")).to_have_text(
        re.compile(
            r"was not kept \(the prompt did not fit it\)\. This battle cannot be voted on\.$"
        )
    )
    for key in ("a", "b"):
        expect(page.locator(f"#arena-side-{key} .meta")).to_contain_text("Failed")
    for name in ("A is better", "B is better", "Tie", "Both are bad"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    battle = Battle.objects.get()
    expect(page.locator("#arena-side-a .model-name")).to_have_text(
        get_catalogue()[battle.model_a].label  # nothing to keep blind any more
    )
    _no_sideways_scroll(page)
    _shot(page, "arena-390-invalid.png")


def test_a_refused_battle_keeps_the_prompt_and_says_why(stack, alice, page) -> None:  # type: ignore[no-untyped-def]
    QuotaOverride.objects.create(user=alice, concurrent=1)
    _login(page, stack, alice)
    page.goto(stack + "/arena/")
    page.get_by_label("Prompt for both models").fill("Which is larger, 9.11 or 9.9?")
    page.get_by_role("button", name="Send to both").click()
    expect(page.locator("#arena-status")).to_have_text(re.compile("replies in progress"))
    expect(page.get_by_label("Prompt for both models")).to_have_value(
        "Which is larger, 9.11 or 9.9?"
    )
    expect(page.get_by_role("button", name="Send to both")).to_be_enabled()
    assert not Battle.objects.exists()


def test_a_chosen_pair_is_named_from_the_start_and_a_reload_loses_nothing(  # type: ignore[no-untyped-def]
    stack, alice, page
) -> None:
    _login(page, stack, alice)
    page.goto(stack + "/arena/")
    page.get_by_label("Models", exact=True).select_option(label="Choose two models (not rated)")
    page.locator("#arena-model-a").select_option("fake-rate")
    page.locator("#arena-model-b").select_option("fake-single")
    page.get_by_label("Prompt for both models").fill("Count")
    page.get_by_label("Prompt for both models").press("Enter")
    expect(page).to_have_url(re.compile(r"/arena/b/[0-9a-f-]{36}/$"))
    labels = [get_catalogue()[name].label for name in ("fake-rate", "fake-single")]
    expect(page.locator("#arena-side-a .model-name")).to_have_text(labels[0])
    page.reload()  # mid-answer or just after: the page picks both answers up again
    for key, label in zip(("a", "b"), labels, strict=True):
        expect(page.locator(f"#arena-side-{key} .body")).to_have_text(EXPECTED)
        expect(page.locator(f"#arena-side-{key} .model-name")).to_have_text(label)
    page.get_by_role("button", name="Tie").click()
    expect(page.locator("#arena-result")).to_have_text("You voted: a tie. ")
    assert Battle.objects.get().vote == "tie"
