"""Baselines for a metaheuristic, on the same evaluation budget: random search and differential evolution.

A metaheuristic's result means little alone. These two give it the yardsticks
the EHO paper lacks: uniform random search (what any method must beat) and
SciPy's differential evolution (Storn & Price 1997), each spending exactly
``budget`` evaluations of the same vectorised fitness (``(n, d) -> n``
values, to minimise) and seeded. :class:`SearchResult` carries the best
position, its value and the best-so-far value after each batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SearchResult", "differential_evolution_minimise", "random_search_minimise"]


@dataclass(frozen=True)
class SearchResult:
    """Best position and value; ``history`` is the best value after each batch of evaluations."""

    x: np.ndarray
    fitness: float
    history: np.ndarray
    evaluations: int


def _box(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if lower.shape != upper.shape or lower.ndim != 1 or np.any(lower > upper):
        raise ValueError("lower and upper must be 1-d, of equal length, with lower <= upper")
    return lower, upper


def random_search_minimise(fitness: Callable[[np.ndarray], np.ndarray], lower, upper, *, budget: int,
                           seed: int, batch: int = 50) -> SearchResult:
    """Evaluate ``budget`` uniform random positions in batches of ``batch``; keep the best."""
    lower, upper = _box(lower, upper)
    if budget < 1 or batch < 1:
        raise ValueError(f"budget ({budget}) and batch ({batch}) must be >= 1")
    rng = np.random.default_rng(seed)
    best_x, best_f, history, done = None, np.inf, [], 0
    while done < budget:
        n = min(batch, budget - done)
        x = lower + (upper - lower) * rng.random((n, len(lower)))
        f = np.asarray(fitness(x), dtype=float)
        i = int(np.argmin(f))
        if f[i] < best_f:
            best_x, best_f = x[i].copy(), float(f[i])
        history.append(best_f)
        done += n
    return SearchResult(best_x, best_f, np.array(history), done)


def differential_evolution_minimise(fitness: Callable[[np.ndarray], np.ndarray], lower, upper, *,
                                    budget: int, seed: int, population: int = 50) -> SearchResult:
    """SciPy's ``differential_evolution`` (best1bin) with ``population`` members, stopped at ``budget``.

    The population is ``population`` members whatever the dimension; the run
    takes ``budget // population - 1`` generations after the initial one, so
    it spends at most ``budget`` evaluations (no polishing, no early stop).
    """
    from scipy.optimize import differential_evolution

    lower, upper = _box(lower, upper)
    if population < 5 or budget < 2 * population:
        raise ValueError(f"need population >= 5 and budget >= 2 x population, got {population}, {budget}")
    history, count = [], [0]
    best = [np.inf]

    def batch(xt: np.ndarray) -> np.ndarray:
        f = np.asarray(fitness(np.asarray(xt).T), dtype=float)  # scipy passes (d, n)
        count[0] += len(f)
        best[0] = min(best[0], float(f.min()))
        history.append(best[0])
        return f

    rng = np.random.default_rng(seed)
    init = lower + (upper - lower) * rng.random((population, len(lower)))
    res = differential_evolution(
        batch, list(zip(lower, upper, strict=True)), init=init, maxiter=budget // population - 1,
        polish=False, tol=0, atol=0, seed=seed, vectorized=True, updating="deferred",
    )
    return SearchResult(np.asarray(res.x), float(res.fun), np.array(history), count[0])
