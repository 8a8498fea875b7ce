"""How long the arena leaderboard's ratings take: a Bradley–Terry fit plus 200 bootstrap refits.

    python bench/arena_ratings.py

The leaderboard page computes them on each request (no cache), from votes grouped by
(model A, model B, vote) in SQL. Resampling battles is a multinomial draw over those
groups, so the time depends on the number of models, not of votes: this prints it for
8 and 30 models, with 1,000 and 1,000,000 simulated votes (known strengths, 10% ties),
and checks that the fitted order is the true one.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from playground.arena.ratings import rate  # noqa: E402  (no Django needed)


def votes(
    models: int, count: int, seed: int = 1
) -> tuple[list[tuple[str, str, float, int]], list[str]]:
    rng = np.random.default_rng(seed)
    strength = np.linspace(1.5, -1.5, models)  # log-strengths, best first
    names = [f"model-{k:02d}" for k in range(models)]
    a = rng.integers(0, models, count)
    b = (a + rng.integers(1, models, count)) % models  # never the same model
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    draw = rng.random(count)
    score = np.where(draw < 0.1, 0.5, np.where(draw < 0.1 + 0.9 * p, 1.0, 0.0))
    cells: dict[tuple[int, int, float], int] = {}
    for key in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        cells[key] = cells.get(key, 0) + 1
    rows = [(names[i], names[j], s, n) for (i, j, s), n in cells.items()]
    return rows, names


def main() -> None:
    print(
        f"{'models':>6} {'votes':>9} {'groups':>6} {'time (s)':>9} {'true order':>10} {'mean CI width':>13}"
    )
    for models in (8, 30):
        for count in (1_000, 1_000_000):
            rows, names = votes(models, count)
            started = time.perf_counter()
            found = rate(rows)
            elapsed = time.perf_counter() - started
            width = sum(r.upper - r.lower for r in found) / len(found)
            ordered = [r.model for r in found] == names
            print(
                f"{models:>6} {count:>9,} {len(rows):>6} {elapsed:>9.3f} {str(ordered):>10} {width:>13.1f}"
            )
    print(f"(Elo scale: {400 / math.log(10):.1f} points per unit of log-strength)")


if __name__ == "__main__":
    main()
