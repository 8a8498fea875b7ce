"""Bradley–Terry ratings: a maximum-likelihood fit in numpy, and bootstrap intervals.

No Django here (plain data in, plain data out), so the fit is tested against published
numbers on its own. The model: P(i beats j) = 1 / (1 + exp(r_j − r_i)). A battle's score
for its first model is 1 (a win), 0 (a loss) or 0.5 (a tie: each side gets half a win, as
in Elo and in LMSYS's Chatbot Arena; the arena counts "both bad" as a tie too).

The fit maximises the log-likelihood minus ``l2 / 2 · Σ r²``: a weak Gaussian prior on the
log-strengths (sd ≈ 3.2 at the default 0.1, ±550 rating points) that keeps a model that
has won every battle finite and centres the ratings on zero. The likelihood is concave, so
Newton's method (with step halving) reaches the optimum in a few steps. scipy is not a
dependency and statsmodels would be a large one for a K-parameter logistic fit; this is
the same estimate their logistic regressions give (the tests check it against
BradleyTerry2's published fit).

Shown ratings are on the Elo scale: ``1000 + 400 · r / ln 10``, so 400 points between two
models means odds of 10 to 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DEFAULT_L2 = 0.1
ELO_SCALE = 400 / math.log(10)
ELO_CENTRE = 1000.0
MAX_STEPS = 100
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float  # Elo scale
    lower: float  # the bootstrap interval (default 95%)
    upper: float
    strength: float  # exp(r): P(i beats j) = strength_i / (strength_i + strength_j)


@dataclass(frozen=True)
class Cells:
    """Battles grouped by (first model, second model, score): what the likelihood needs."""

    first: NDArray[np.intp]
    second: NDArray[np.intp]
    score: NDArray[np.float64]
    count: NDArray[np.float64]

    @classmethod
    def of(cls, models: Sequence[str], battles: Iterable[tuple[str, str, float, int]]) -> Cells:
        """``battles``: (model_a, model_b, score of model_a, how many such battles)."""
        index = {name: k for k, name in enumerate(models)}
        grouped: dict[tuple[int, int, float], int] = {}
        for a, b, score, count in battles:
            if a == b:
                raise ValueError(f"a battle needs two different models, not {a!r} twice")
            if score not in (0.0, 0.5, 1.0):
                raise ValueError(f"a score is 0, 0.5 or 1, not {score!r}")
            key = (index[a], index[b], float(score))
            grouped[key] = grouped.get(key, 0) + int(count)
        keys = list(grouped)
        return cls(
            np.array([k[0] for k in keys], dtype=np.intp),
            np.array([k[1] for k in keys], dtype=np.intp),
            np.array([k[2] for k in keys], dtype=np.float64),
            np.array([grouped[k] for k in keys], dtype=np.float64),
        )


def fit(size: int, cells: Cells, l2: float = DEFAULT_L2) -> NDArray[np.float64]:
    """The (penalised) maximum-likelihood log-strengths of ``size`` models, centred on 0.

    With ``l2=0`` it is the plain MLE, which exists only when every model has both won and
    lost (at least by halves) within a connected set of comparisons.
    """
    return fit_many(size, cells, cells.count[None, :], l2)[0]


def fit_many(
    size: int, cells: Cells, counts: NDArray[np.float64], l2: float = DEFAULT_L2
) -> NDArray[np.float64]:
    """One fit per row of ``counts`` (each row: how many battles of each cell), all at once.

    The likelihood needs only each pair's battles and the first model's wins, so cells are
    summed per pair first; Newton's steps then run on every row together (a bootstrap of
    200 samples costs about as much as a few single fits).
    """
    low = np.minimum(cells.first, cells.second)
    high = np.maximum(cells.first, cells.second)
    keys, pair_of_cell = np.unique(low * size + high, return_inverse=True)
    first, second = keys // size, keys % size
    pairs = len(keys)
    # The score of each cell for its pair's first model, and cell → pair sums.
    share = np.where(cells.first == first[pair_of_cell], cells.score, 1.0 - cells.score)
    order = np.argsort(pair_of_cell, kind="stable")
    starts = np.searchsorted(pair_of_cell[order], np.arange(pairs))
    n = np.add.reduceat(counts[:, order], starts, axis=1)
    wins = np.add.reduceat((counts * share)[:, order], starts, axis=1)
    # d = r_first − r_second per pair. The information matrix is a weighted graph Laplacian:
    # each pair adds its weight at (first, first) and (second, second), and subtracts it at
    # (first, second) and (second, first); one bincount builds all of them.
    rows = np.arange(pairs)
    design = np.zeros((pairs, size))
    design[rows, first] = 1.0
    design[rows, second] = -1.0
    cells_of_matrix = np.concatenate(
        [first * size + first, second * size + second, first * size + second, second * size + first]
    )
    matrix_offsets = np.arange(len(counts))[:, None] * size * size
    flat_index = (matrix_offsets + cells_of_matrix[None, :]).ravel()
    ridge = l2 * np.eye(size)

    def objective(r: NDArray[np.float64]) -> NDArray[np.float64]:
        d = r @ design.T
        loglik = -(wins * np.logaddexp(0.0, -d) + (n - wins) * np.logaddexp(0.0, d)).sum(axis=1)
        return np.asarray(loglik - l2 / 2 * (r * r).sum(axis=1))

    r = np.zeros((len(counts), size))
    current = objective(r)
    for _ in range(MAX_STEPS):
        p = 0.5 * (1.0 + np.tanh((r @ design.T) / 2))  # the logistic function, no overflow
        gradient = (wins - n * p) @ design - l2 * r
        weight = n * p * (1.0 - p)
        signed = np.concatenate([weight, weight, -weight, -weight], axis=1).ravel()
        summed = np.bincount(flat_index, signed, minlength=len(r) * size * size)
        information = summed.reshape(-1, size, size) + ridge
        if l2 > 0:
            step = np.linalg.solve(information, gradient[..., None])[..., 0]
        else:  # singular along "all ratings + c": the minimum-norm step keeps their sum
            step = (np.linalg.pinv(information) @ gradient[..., None])[..., 0]
        scale = np.ones(len(r))
        for _ in range(30):  # step halving, row by row, until the objective does not fall
            candidate = r + scale[:, None] * step
            value = objective(candidate)
            worse = value < current - 1e-12 * np.abs(current)  # beyond rounding
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        r, current = candidate, value
        if np.max(np.abs(scale[:, None] * step), initial=0.0) < TOLERANCE:
            break
    return np.asarray(r - r.mean(axis=1, keepdims=True))


def rate(
    battles: Iterable[tuple[str, str, float, int]],
    rounds: int = 200,
    confidence: float = 0.95,
    l2: float = DEFAULT_L2,
    seed: int = 0,
) -> list[Rating]:
    """Ratings with bootstrap intervals, best first.

    The bootstrap resamples battles with replacement (``rounds`` times, seeded, so a page
    shows the same numbers for the same votes) and refits; the interval holds the middle
    ``confidence`` of the refitted ratings. Resampling battles is a multinomial draw over
    the cells, so its cost does not grow with the number of votes.
    """
    battles = list(battles)
    models = sorted({name for a, b, _, _ in battles for name in (a, b)})
    if not models:
        return []
    cells = Cells.of(models, battles)
    best = fit(len(models), cells, l2=l2)
    total = int(cells.count.sum())
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(total, cells.count / total, size=rounds).astype(np.float64)
    refits = fit_many(len(models), cells, samples, l2)
    tail = (1 - confidence) / 2 * 100
    lower, upper = np.percentile(refits, [tail, 100 - tail], axis=0)
    found = [
        Rating(
            model=name,
            rating=elo(best[k]),
            lower=elo(lower[k]),
            upper=elo(upper[k]),
            strength=math.exp(best[k]),
        )
        for k, name in enumerate(models)
    ]
    return sorted(found, key=lambda rating: (-rating.rating, rating.model))


def elo(r: float) -> float:
    return ELO_CENTRE + ELO_SCALE * float(r)
