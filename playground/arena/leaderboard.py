"""The leaderboard (Bradley–Terry ratings of blind battles) and the staff dashboard's view
of votes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from playground.arena import ratings
from playground.arena.models import Battle
from playground.generations.catalogue import get_catalogue

# Model A's score per vote. "Both bad" is a tie: neither answer was better, which is what
# a rating measures (LMSYS's Chatbot Arena does the same with its "tie (bothbad)").
SCORES = {
    Battle.Vote.A: 1.0,
    Battle.Vote.B: 0.0,
    Battle.Vote.TIE: 0.5,
    Battle.Vote.BOTH_BAD: 0.5,
}
BOOTSTRAP_ROUNDS = 200


def _label(name: str) -> str:
    spec = get_catalogue().get(name)
    return spec.label if spec else name


def vote_counts(battles: Any) -> dict[str, dict[str, int]]:
    """Per model: votes, wins, losses, ties, both bad, from (model_a, model_b, vote, n) rows."""
    counts: dict[str, dict[str, int]] = {}
    for row in battles:
        for model, won, lost in (
            (row["model_a"], Battle.Vote.A, Battle.Vote.B),
            (row["model_b"], Battle.Vote.B, Battle.Vote.A),
        ):
            entry = counts.setdefault(
                model, {"votes": 0, "wins": 0, "losses": 0, "ties": 0, "both_bad": 0}
            )
            entry["votes"] += row["n"]
            vote = row["vote"]
            key = {won: "wins", lost: "losses", Battle.Vote.TIE: "ties"}.get(vote, "both_bad")
            entry[key] += row["n"]
    return counts


def _grouped(battles: Any) -> list[dict[str, Any]]:
    return list(battles.values("model_a", "model_b", "vote").annotate(n=Count("id")))


def standings(rounds: int = BOOTSTRAP_ROUNDS) -> list[dict[str, Any]]:
    """Every model with a vote in a blind battle: rating, 95% interval, rank, counts.

    The rank is 1 + the number of models whose whole interval lies above this one's, so
    models that cannot be told apart share a rank (as LMSYS's leaderboard ranks).
    """
    rows = _grouped(Battle.objects.filter(blind=True).exclude(vote=""))
    found = ratings.rate(
        ((r["model_a"], r["model_b"], SCORES[r["vote"]], r["n"]) for r in rows), rounds=rounds
    )
    counts = vote_counts(rows)
    return [
        {
            "rank": 1 + sum(other.lower > rating.upper for other in found),
            "model": rating.model,
            "label": _label(rating.model),
            "rating": rating.rating,
            "lower": rating.lower,
            "upper": rating.upper,
            **counts[rating.model],
        }
        for rating in found
    ]


def recent_votes(start: datetime, end: datetime, limit: int = 20) -> list[Battle]:
    """The last votes cast in [start, end), newest first (staff dashboard)."""
    return list(
        Battle.objects.exclude(vote="")
        .filter(voted_at__gte=start, voted_at__lt=end)
        .select_related("user")
        .order_by("-voted_at")[:limit]
    )


def votes_per_model(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Vote counts per model for votes cast in [start, end), blind and chosen pairs alike."""
    rows = _grouped(Battle.objects.exclude(vote="").filter(voted_at__gte=start, voted_at__lt=end))
    counts = vote_counts(rows)
    return [{"model": model, **counts[model]} for model in sorted(counts)]
