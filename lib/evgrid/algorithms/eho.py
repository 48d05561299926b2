"""Elephant Herding Optimization (EHO), vectorised and seeded, as Wang, Deb & Coelho define it.

Reference: G.-G. Wang, S. Deb, L. d. S. Coelho, "Elephant Herding
Optimization", 3rd Int. Symp. on Computational and Business Intelligence
(ISCBI), Bali, 2015, pp. 1-5, doi:10.1109/ISCBI.2015.8, and the behaviour of
the authors' MATLAB reference code, which fixes what the paper leaves open.
One generation:

1. sort the herd best first and deal it round-robin into ``n_clans`` clans,
   so that each clan's first elephant is its matriarch (its best);
2. **clan updating** (Priolkar & Kunkolienkar 2025, Eq. 21):
   ``x_new = x + alpha * (x_matriarch - x) * r`` with ``r ~ U[0, 1]`` drawn
   per dimension;
3. **matriarch** (Eqs. 22-23): ``x_new = beta * x_centre``, the clan's mean
   position scaled by ``beta``;
4. clip to the bounds;
5. **separating operator**: the worst elephant of each clan (by its fitness
   before the update) is replaced by a uniform random position
   (``separation_fraction`` replaces that share of each clan instead);
6. evaluate the new herd (no greedy selection: new positions replace old ones);
7. **elitism**: the ``keep`` best elephants of the previous generation
   overwrite the ``keep`` worst new ones.

The budget is ``n_elephants * (n_iterations + 1)`` evaluations.

Origin bias
-----------
Step 3 shrinks the clan centre toward the *coordinate origin*, whatever the
fitness: EHO looks strong on test functions whose optimum is at 0 (Ismaeel et
al., IEEE Access 7:34738, 2019, propose their variants "to overcome ... fast
unjustified convergence toward the origin"). With a box that excludes the
origin (all bounds positive) ``beta * centre`` falls below the lower bound
and clipping puts the matriarch on it, every generation. :class:`EHOResult`
reports the share of matriarch coordinates clipped. ``frame="box"`` applies the
same operator in box coordinates about the box centre
(``z = 2 (x - mid) / (upper - lower)``), which makes it translation invariant;
``frame="origin"`` (the default) is the published operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EHOOptions", "EHOResult", "eho_minimise"]


class EHOOptions(BaseModel):
    """EHO's parameters; Priolkar & Kunkolienkar (2025) Table 6 by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_elephants: int = Field(50, ge=2, le=100_000, description="Population size (Table 6: 50)")
    n_clans: int = Field(
        5, ge=1, le=10_000,
        description="Clans; n_elephants must divide into them (Wang's code: n_elephants / 10)",
    )
    n_iterations: int = Field(50, ge=1, le=1_000_000, description="Generations (Table 6: 50)")
    alpha: float = Field(0.6, gt=0, le=2, description="Clan updating scale, Eq. 21 (Table 6: 0.6)")
    beta: float = Field(0.3, ge=0, le=1, description="Matriarch centre scale, Eq. 22 (Table 6: 0.3)")
    keep: int = Field(2, ge=0, le=100_000, description="Elites carried over (Wang's code: 2)")
    separation_fraction: float | None = Field(
        None, gt=0, le=1,
        description="Share of each clan replaced at random; None: its single worst (Wang)",
    )
    frame: Literal["origin", "box"] = Field(
        "origin",
        description="Matriarch update about the coordinate origin (published) or the box centre",
    )
    plus_one: bool = Field(
        False,
        description="Wang's code draws random positions in [lb, ub + 1] (an integer-GA "
        "leftover) and clips; off by default",
    )

    @model_validator(mode="after")
    def _herd_divides(self) -> EHOOptions:
        if self.n_elephants % self.n_clans:
            raise ValueError(
                f"n_elephants = {self.n_elephants} does not divide into n_clans = {self.n_clans} "
                "equal clans; choose n_clans among its divisors "
                f"({', '.join(str(k) for k in range(1, self.n_elephants + 1) if self.n_elephants % k == 0)})"
            )
        if self.keep >= self.n_elephants:
            raise ValueError(f"keep = {self.keep} must be below n_elephants = {self.n_elephants}")
        if self.n_elephants // self.n_clans < 2:
            raise ValueError("each clan needs at least 2 elephants (a matriarch and one more)")
        return self


@dataclass(frozen=True)
class EHOResult:
    """The best position found, its fitness and the run's trace.

    ``history[g]`` is the best fitness after generation ``g`` (0: the initial
    herd); ``evaluations`` counts calls of the fitness per elephant;
    ``matriarch_clipped`` is the share of matriarch coordinates the bounds clipped.
    """

    x: np.ndarray
    fitness: float
    history: np.ndarray
    evaluations: int
    matriarch_clipped: float


def eho_minimise(
    fitness: Callable[[np.ndarray], np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    options: EHOOptions | None = None,
    *,
    seed: int,
    callback: Callable[[int, float], None] | None = None,
) -> EHOResult:
    """Minimise ``fitness`` over the box ``[lower, upper]`` by EHO.

    ``fitness`` takes an ``(n, d)`` array of positions and returns ``n``
    values (to minimise; negate a value to maximise). ``seed`` is required:
    a run is reproducible and independent runs take different seeds.
    ``callback(generation, best)`` is called after every generation.
    """
    opts = options or EHOOptions()
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if lower.shape != upper.shape or lower.ndim != 1:
        raise ValueError(f"lower and upper must be 1-d of equal length, got {lower.shape}, {upper.shape}")
    bad = np.flatnonzero(~(lower <= upper))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"bound {i}: lower {lower[i]} is above upper {upper[i]}")
    rng = np.random.default_rng(seed)
    n, d, k = opts.n_elephants, len(lower), opts.n_clans
    m = n // k  # elephants per clan
    span = upper - lower
    mid = 0.5 * (lower + upper)

    def random_positions(count: int) -> np.ndarray:
        width = span + 1.0 if opts.plus_one else span
        return lower + width * rng.random((count, d))

    def evaluate(x: np.ndarray) -> np.ndarray:
        values = np.asarray(fitness(x), dtype=float).reshape(-1)
        if values.shape != (len(x),):
            raise ValueError(f"fitness returned {values.shape} values for {len(x)} positions")
        return values

    x = random_positions(n)  # Wang's code does not clip the initial herd
    f = evaluate(x)
    evaluations = n
    i = int(np.argmin(f))
    best_x, best_f = x[i].copy(), float(f[i])
    history = [best_f]
    clipped, matriarchs = 0, 0
    n_replace = 1 if opts.separation_fraction is None else max(1, round(opts.separation_fraction * m))
    for generation in range(1, opts.n_iterations + 1):
        order = np.argsort(f, kind="stable")
        x, f = x[order], f[order]
        elites_x, elites_f = x[: opts.keep].copy(), f[: opts.keep].copy()
        # deal round-robin: clan c holds sorted elephants c, c + k, c + 2k, ...
        clans = x.reshape(m, k, d).transpose(1, 0, 2)  # (k, m, d); clans[:, 0] are the matriarchs
        best = clans[:, :1, :]
        new = clans + opts.alpha * (best - clans) * rng.random((k, m, d))
        centre = clans.mean(axis=1)
        if opts.frame == "origin":
            matriarch = opts.beta * centre
        else:  # the same contraction in box coordinates about the box centre
            matriarch = mid + opts.beta * (centre - mid)
        below, above = matriarch < lower, matriarch > upper
        clipped += int(below.sum() + above.sum())
        matriarchs += matriarch.size
        new[:, 0, :] = matriarch
        new = np.clip(new, lower, upper)
        # separating operator: the worst n_replace of each clan (by fitness before the update)
        new[:, m - n_replace:, :] = np.clip(random_positions(k * n_replace).reshape(k, n_replace, d),
                                            lower, upper)
        x = new.transpose(1, 0, 2).reshape(n, d)
        f = evaluate(x)
        evaluations += n
        if opts.keep:
            worst = np.argsort(f, kind="stable")[n - opts.keep:]
            x[worst], f[worst] = elites_x, elites_f
        i = int(np.argmin(f))
        if f[i] < best_f:
            best_x, best_f = x[i].copy(), float(f[i])
        history.append(best_f)
        if callback is not None:
            callback(generation, history[-1])
    return EHOResult(
        x=best_x,
        fitness=best_f,
        history=np.array(history),
        evaluations=evaluations,
        matriarch_clipped=clipped / max(matriarchs, 1),
    )
