"""Bradley–Terry ratings against known answers: a published fit, exact ratios, simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.arena.ratings import ELO_SCALE, Cells, fit, rate

# Agresti (2002), Categorical Data Analysis, §10.6: the 1987 games between the seven
# teams of the American League East, as home wins / away wins (BradleyTerry2's `baseball`
# data). BradleyTerry2's BTm fit (its tests/baseball.Rout.save) gives these abilities
# with Baltimore as the reference at 0.
BASEBALL = (
    "Milwaukee,Detroit,4,3; Milwaukee,Toronto,4,2; Milwaukee,New York,4,3; Milwaukee,Boston,6,1; "
    "Milwaukee,Cleveland,4,2; Milwaukee,Baltimore,6,0; Detroit,Milwaukee,3,3; "
    "Detroit,Toronto,4,2; Detroit,New York,4,3; Detroit,Boston,6,0; Detroit,Cleveland,6,1; "
    "Detroit,Baltimore,4,3; Toronto,Milwaukee,2,5; Toronto,Detroit,4,3; Toronto,New York,2,4; "
    "Toronto,Boston,4,3; Toronto,Cleveland,4,2; Toronto,Baltimore,6,0; New York,Milwaukee,3,3; "
    "New York,Detroit,5,1; New York,Toronto,2,5; New York,Boston,4,3; New York,Cleveland,4,2; "
    "New York,Baltimore,6,1; Boston,Milwaukee,5,1; Boston,Detroit,2,5; Boston,Toronto,3,3; "
    "Boston,New York,4,2; Boston,Cleveland,5,2; Boston,Baltimore,6,0; Cleveland,Milwaukee,2,5; "
    "Cleveland,Detroit,3,3; Cleveland,Toronto,3,4; Cleveland,New York,4,3; Cleveland,Boston,4,2; "
    "Cleveland,Baltimore,2,4; Baltimore,Milwaukee,2,5; Baltimore,Detroit,1,5; "
    "Baltimore,Toronto,1,6; Baltimore,New York,2,4; Baltimore,Boston,1,6; "
    "Baltimore,Cleveland,3,4"
)
PUBLISHED = {
    "Boston": 1.1077,
    "Cleveland": 0.6839,
    "Detroit": 1.4364,
    "Milwaukee": 1.5814,
    "New York": 1.2476,
    "Toronto": 1.2945,
}


def _baseball() -> list[tuple[str, str, float, int]]:
    games = []
    for game in BASEBALL.split(";"):
        home, away, home_wins, away_wins = game.strip().split(",")
        games += [(home, away, 1.0, int(home_wins)), (home, away, 0.0, int(away_wins))]
    return games


def _fit(battles: list[tuple[str, str, float, int]], l2: float) -> dict[str, float]:
    models = sorted({m for a, b, _, _ in battles for m in (a, b)})
    found = fit(len(models), Cells.of(models, battles), l2=l2)
    return dict(zip(models, found.tolist(), strict=True))


def test_the_plain_fit_matches_bradleyterry2_on_agrestis_baseball_data() -> None:
    games = _baseball()
    assert sum(n for *_, n in games) == 6 * 7 * 13 // 2  # 273 games: 13 per pair of teams
    found = _fit(games, l2=0.0)
    for team, ability in PUBLISHED.items():
        assert found[team] - found["Baltimore"] == pytest.approx(ability, abs=5e-4), team


def test_the_default_prior_barely_moves_a_well_sampled_fit() -> None:
    plain, default = _fit(_baseball(), l2=0.0), _fit(_baseball(), l2=0.1)
    for team in PUBLISHED:
        moved = default[team] - default["Baltimore"]
        assert moved == pytest.approx(plain[team] - plain["Baltimore"], rel=0.02)
        assert abs(moved) < abs(plain[team] - plain["Baltimore"])  # shrunk, not pushed


def test_three_to_one_odds_give_a_strength_ratio_of_three() -> None:
    found = _fit([("a", "b", 1.0, 300), ("a", "b", 0.0, 100)], l2=0.0)
    assert math.exp(found["a"] - found["b"]) == pytest.approx(3.0, rel=1e-6)


def test_ratios_are_recovered_from_consistent_counts() -> None:
    # Strengths 4 : 2 : 1, and counts exactly as expected from them (60 games a pair).
    battles = [
        ("x", "y", 1.0, 40),
        ("x", "y", 0.0, 20),
        ("x", "z", 1.0, 48),
        ("x", "z", 0.0, 12),
        ("y", "z", 1.0, 40),
        ("y", "z", 0.0, 20),
    ]
    found = _fit(battles, l2=0.0)
    assert math.exp(found["x"] - found["y"]) == pytest.approx(2.0, rel=1e-6)
    assert math.exp(found["y"] - found["z"]) == pytest.approx(2.0, rel=1e-6)


def test_a_tie_counts_as_half_a_win_for_each_side() -> None:
    with_ties = _fit([("a", "b", 1.0, 30), ("a", "b", 0.0, 10), ("a", "b", 0.5, 20)], 0.0)
    halves = _fit([("a", "b", 1.0, 40), ("a", "b", 0.0, 20)], 0.0)
    assert with_ties["a"] - with_ties["b"] == pytest.approx(halves["a"] - halves["b"])
    assert math.exp(with_ties["a"] - with_ties["b"]) == pytest.approx(2.0, rel=1e-6)
    level = _fit([("a", "b", 0.5, 10)], 0.0)
    assert level["a"] == pytest.approx(level["b"])


def test_the_side_a_model_sat_on_does_not_matter() -> None:
    one_way = _fit([("a", "b", 1.0, 7), ("a", "b", 0.0, 3)], 0.1)
    other_way = _fit([("b", "a", 0.0, 7), ("b", "a", 1.0, 3)], 0.1)
    assert one_way == pytest.approx(other_way)


def test_an_unbeaten_model_gets_a_finite_top_rating_with_the_prior() -> None:
    ratings = rate([("a", "b", 1.0, 5), ("b", "c", 1.0, 5), ("a", "c", 0.5, 2)], rounds=50)
    assert [r.model for r in ratings] == ["a", "b", "c"]
    assert all(math.isfinite(r.rating) and r.lower <= r.rating <= r.upper for r in ratings)
    assert ratings[0].rating - ratings[-1].rating < 1000


def test_a_simulated_arena_is_ranked_in_its_true_order_inside_its_intervals() -> None:
    rng = np.random.default_rng(7)
    truth = {"m0": 1.2, "m1": 0.6, "m2": 0.0, "m3": -0.5, "m4": -1.3}  # log-strengths
    names = list(truth)
    battles = []
    for _ in range(4000):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + math.exp(truth[b] - truth[a]))
        battles.append((str(a), str(b), 1.0 if rng.random() < p else 0.0, 1))
    # Seeded, so deterministic; 99% intervals, so a true value outside one would be a fault.
    ratings = rate(battles, rounds=200, confidence=0.99)
    assert [r.model for r in ratings] == names
    centre = sum(truth.values()) / len(truth)
    for r in ratings:
        true_rating = 1000 + ELO_SCALE * (truth[r.model] - centre)
        assert r.lower <= true_rating <= r.upper, (r, true_rating)
        assert r.upper - r.lower < 100  # 1600 battles a model: tight


def test_intervals_narrow_as_votes_grow() -> None:
    few = rate([("a", "b", 1.0, 6), ("a", "b", 0.0, 4)], rounds=300)
    many = rate([("a", "b", 1.0, 600), ("a", "b", 0.0, 400)], rounds=300)
    width = {r.model: r.upper - r.lower for r in few}
    wider = {r.model: r.upper - r.lower for r in many}
    assert all(wider[m] * 5 < width[m] for m in width)  # ≈ 10× narrower with 100× the votes


def test_the_same_votes_give_the_same_intervals() -> None:
    games = _baseball()
    assert rate(games, rounds=50) == rate(games, rounds=50)


def test_no_votes_no_ratings_and_bad_rows_are_refused() -> None:
    assert rate([]) == []
    with pytest.raises(ValueError, match="two different models"):
        rate([("a", "a", 1.0, 1)])
    with pytest.raises(ValueError, match="0, 0.5 or 1"):
        rate([("a", "b", 0.7, 1)])
