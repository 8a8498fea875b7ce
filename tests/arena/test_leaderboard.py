"""The leaderboard page, the staff dashboard's arena section, and who the arena pairs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from playground.arena.battles import arena_candidates
from playground.arena.models import Battle


def _votes(user, model_a: str, model_b: str, vote: str, n: int, blind: bool = True) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    Battle.objects.bulk_create(
        Battle(
            user=user,
            prompt="p",
            blind=blind,
            model_a=model_a,
            model_b=model_b,
            vote=vote,
            voted_at=now - timedelta(minutes=i),
        )
        for i in range(n)
    )


def _rows(html: str) -> list[list[str]]:
    body = html.split('<table id="leaderboard">', 1)[1].split("</tbody>", 1)[0]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr data-model[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_the_leaderboard_ranks_by_rating_with_intervals_and_counts(client: Client, alice) -> None:  # type: ignore[no-untyped-def]
    _votes(alice, "smollm2", "fake-rate", "a", 30)
    _votes(alice, "fake-rate", "smollm2", "a", 10)
    _votes(alice, "smollm2", "fake-rate", "tie", 4)
    _votes(alice, "fake-rate", "smollm2", "both_bad", 6)
    _votes(alice, "fake-rate", "qwen3.5-tiny", "a", 20)
    _votes(alice, "qwen3.5-tiny", "smollm2", "b", 20)
    _votes(alice, "qwen3.5-tiny", "smollm2", "a", 50, blind=False)  # chosen pair: not rated
    Battle.objects.create(user=alice, prompt="p", model_a="fake-rate", model_b="smollm2")  # no vote
    client.force_login(alice)
    page = client.get("/arena/leaderboard/")
    assert page.status_code == 200
    rows = _rows(page.content.decode())
    assert [row[1] for row in rows] == [
        "SmolLM2 135M Instruct (CPU demo)",
        "FakeRateEngine (test fake, not a model)",
        "Qwen 3.5 tiny MoE + vision (synthesised: real architecture, nonsense text)",
    ]
    ratings = [int(row[2]) for row in rows]
    assert ratings == sorted(ratings, reverse=True)
    for row, rating in zip(rows, ratings, strict=True):
        lower, upper = (int(x) for x in row[3].split(" – "))
        assert lower <= rating <= upper
    # smollm2: 30 + 20 wins, 10 losses, 4 ties, 6 both bad, in 70 votes.
    assert rows[0][4:] == ["70", "50", "10", "4", "6"]
    assert rows[2][4:] == ["40", "0", "40", "0", "0"]
    assert rows[0][0] == "1" and rows[2][0] == "3"
    assert "from 90 votes on blind battles" in page.content.decode()


def test_an_empty_leaderboard_says_so(client: Client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    assert "No votes yet." in client.get("/arena/leaderboard/").content.decode()


def test_the_arena_pages_need_a_login(client: Client) -> None:
    for url in ("/arena/", "/arena/leaderboard/"):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_staff_see_recent_votes_and_counts_per_model_on_the_dashboard(  # type: ignore[no-untyped-def]
    client: Client, alice, bob
) -> None:
    _votes(alice, "smollm2", "fake-rate", "a", 3)
    _votes(bob, "fake-rate", "smollm2", "both_bad", 1, blind=False)
    client.force_login(bob)
    assert client.get("/dashboard/").status_code == 403  # staff only, as the rest of it
    bob.is_staff = True
    bob.save()
    html = client.get("/dashboard/").content.decode()
    counts = html.split('id="arena-counts"', 1)[1].split("</table>", 1)[0]
    assert "<tr><td>fake-rate</td><td>4</td><td>0</td><td>3</td><td>0</td><td>1</td></tr>" in counts
    assert "<tr><td>smollm2</td><td>4</td><td>3</td><td>0</td><td>0</td><td>1</td></tr>" in counts
    recent = html.split('id="arena-recent"', 1)[1].split("</table>", 1)[0]
    assert recent.count("<tr><td>") == 4
    assert (
        "<td>bob</td><td>fake-rate</td><td>smollm2</td><td>Both are bad</td><td>no</td>" in recent
    )
    assert (
        "<td>alice</td><td>smollm2</td><td>fake-rate</td><td>A is better</td><td>yes</td>" in recent
    )
    old = client.get("/dashboard/?range=custom&start=2020-01-01&end=2020-01-02").content.decode()
    assert old.count("No arena votes in this range.") == 2


def test_the_arena_pairs_served_models_that_can_take_the_input(settings) -> None:  # type: ignore[no-untyped-def]
    served = {name: {} for name in ("smollm2", "qwen3.5-tiny", "fake-rate", "not-in-catalogue")}
    settings.PLAYGROUND_ARENA = {"MODELS": [], "MAX_TOKENS": 10}
    assert arena_candidates(served, media=False) == ["fake-rate", "qwen3.5-tiny", "smollm2"]
    assert arena_candidates(served, media=True) == ["qwen3.5-tiny"]  # the one that sees images
    settings.PLAYGROUND_ARENA = {"MODELS": ["smollm2", "fake-rate", "unserved"], "MAX_TOKENS": 10}
    assert arena_candidates(served, media=False) == ["fake-rate", "smollm2"]


@pytest.mark.parametrize("vote", ["", "A", "both bad", None, 1])
def test_only_the_four_votes_exist(client: Client, alice, vote) -> None:  # type: ignore[no-untyped-def]
    battle = Battle.objects.create(user=alice, prompt="p", model_a="x", model_b="y")
    client.force_login(alice)
    answer = client.post(
        f"/arena/battles/{battle.id}/vote/", {"vote": vote}, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "vote must be one of a, b, tie, both_bad"
