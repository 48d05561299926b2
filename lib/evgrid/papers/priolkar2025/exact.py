"""Priolkar & Kunkolienkar (2025): the true optimum of the bilevel problem, as a single-level MILP.

The paper runs a metaheuristic once and compares it with nothing. Here the
optimistic bilevel problem is solved exactly:

* the users' LPs (Eqs. 10-12, 17-19, :mod:`evgrid.papers.priolkar2025.lower`)
  are replaced by their KKT conditions, complementarity by binaries and
  big-Ms derived from the price bounds (two binaries per EV and period:
  ``p > 0`` forces a zero reduced cost, ``mu > 0`` forces ``p = P_max``);
* the bilinear DR benefit ``sum DP_t p_it`` is made linear by each user's strong
  duality, ``sum_t c_it p_it = lambda_i E_i - P_max sum_t mu_it`` (the
  toll-setting trick of Labbe, Marcotte & Savard 1998);
* the variance F2 (Eq. 7 as intended) is ``mean_t L_t^2 - mean^2``, and the
  mean is fixed (fixed energies, Eq. 17). ``L_t^2`` is convex: ``K`` tangents
  per hour, equally spaced over the range the load can take in that hour
  (from what the EVs *must* draw there to what they *can*), under-estimate it
  by at most ``spacing_t^2 / 4``. The MILP's bound is therefore an upper
  bound on F4, and F4 evaluated exactly at its solution a lower bound.
  Tangents at the solution's loads are added (another round, warm-started) only
  while the bounds have not met and time is left.

A good incumbent matters: without one HiGHS finds no feasible point in a
minute at 50 EVs. :func:`price_search` (an iterated coordinate search over
the 24 price factors with the exact vectorised lower level, a fifth of the
budget) gives one; two MILPs over small boxes of prices around it (+-5% and
+-2% of BP, a fifth of the budget) then let users split their energy over
periods they are indifferent between, which the search (ties to the earlier
period) cannot: on 6 EVs the optimum is 0.2992 with the optimistic split and
0.2792 at the same prices with the earliest-period rule. The full MILP starts
from the best of these. ``time_limit_s`` is one budget for everything.

Measured at the paper's size (50 EVs, 10 stations, ``Priolkar2025Params()``
defaults, epsilon = 0.175 $/h; one HiGHS thread on a shared 2-core machine),
``time_limit_s=200``, 24 tangents per hour; gap = (upper - lower) / |lower|:

.. code-block:: text

    alpha1/2/3         F4 lower    upper     gap upper-lower    s rounds
    0.8/0.1/0.1          0.5669   0.5938    4.7%      0.0269  200      1
    0.6/0.3/0.1          0.2785   0.3001    7.8%      0.0216  200      1
    0.4/0.4/0.2         -0.0169  -0.0027   84.1%      0.0142  200      1
    0.333/0.333/0.333   -0.0545  -0.0489   10.2%      0.0056  200      1
    0.455/0.182/0.364    0.1919   0.1919    0.0%      0.0000   79      3
    0.7/0.2/0.1          0.4214   0.4413    4.7%      0.0199  200      1
    0.4/0.2/0.4          0.1289   0.1289    0.0%      0.0000   86      3

The two rows that weigh the wait most (alpha_3 = 0.36 and 0.4) are proven
(3 rounds of tangents, under 90 s); elsewhere the bound stays the root's
(the 0.6/0.3/0.1 bound was the same to 1e-12 with 150 s), so 300 s is
unlikely to change the table. The F4 of
0.4/0.4/0.2 is near 0, so its relative gap is large; ``abs_gap`` is 0.014.
Where unproven, the bound is the LP relaxation's, and branch and
bound closes it slowly (at 0.6/0.3/0.1 the bound is 0.315 at the root LP,
0.300 after HiGHS's cuts, 0.299 after 90 s more). Why: dual feasibility and
strong duality cap what each user pays at ``phi_i(DP)``, its optimal cost,
but with the complementarity binaries fractional the relaxation may place
the user's load anywhere, so it charges users early (no wait) and flat (low
variance) at the revenue of their optimal response. Tried and dropped (no
better bound, slower LPs): a piecewise McCormick envelope of ``DP_t p_it``
(six price segments per hour, convex hull, binaries shared by every EV):
root 0.3150 -> 0.3136; ordering binaries per EV and pair of periods
(``DP_t - DP_s <= eps (s - t) / E_i``), chained across EVs by ``E_i``, with
``p_is <= p_it`` for the preferred ``t``: root 0.3149, bound after 60 s
0.3021; optimality-based tightening of the DP bounds (LP relaxation cut by
the incumbent, three passes, 45 s): price ranges shrink to 30-100% of
Table 1's, bound after a further 60 s 0.2992, as without it. The tangent
error is not what limits the gap: 24 tangents per hour over the load's range
bound it by ``spacing^2 / 4`` per hour, under 0.2% of F4 here; repeated
rounds of tangents at the solution (each a MILP from scratch) are kept only
for small instances, where they close the last 0.1%.

The station limits and the priority weights are left out, and this is exact
only because they cannot bind: every station's EVs draw at most
``n_k * P_max`` kW, below the lowest limit (Table 1: 50 kW);
:func:`check_limits_inert` proves it for the instance or raises.

:func:`enumerate_block_prices` is an independent check: DP restricted to a few
time blocks times a few levels, every combination evaluated with the exact
lower level; :func:`solve_exact` with the same restriction (``dp_blocks``)
must agree with it.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from evgrid.core.solvers import NoIncumbentError, SolverError, SolverLimitWarning, solve
from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase
from evgrid.papers.priolkar2025.lower import Outcome, asap_centre_h, costs_per_kwh, outcome, respond
from evgrid.papers.priolkar2025.upper import Normalisation, f4, normalisation

__all__ = [
    "BlockPrices",
    "ExactResult",
    "LimitsBindError",
    "build_bilevel_milp",
    "check_limits_inert",
    "enumerate_block_prices",
    "load_range_kw",
    "price_search",
    "solve_exact",
]


class LimitsBindError(ValueError):
    """A station's EVs can draw more than its lowest limit: the limits are real levers here."""


def check_limits_inert(case: PriolkarCase) -> float:
    """The largest power any station's EVs can draw together (kW); raise if it reaches the lowest limit."""
    counts = np.bincount(case.station, minlength=case.params.n_stations)
    worst = float(counts.max() * case.p_max_kw)
    if worst > case.params.station_cap_kw[0]:
        k = int(counts.argmax())
        raise LimitsBindError(
            f"station {k} has {counts[k]} EVs, which can draw {worst:g} kW, above the lowest station "
            f"limit {case.params.station_cap_kw[0]:g} kW: the limits and priorities are levers, and "
            "the exact model (which leaves them out) does not apply; use station_assignment='balanced'"
        )
    return worst


@dataclass(frozen=True)
class BlockPrices:
    """A restricted upper level: ``DP_t = f * BP_t`` with one factor ``f`` from ``levels`` per block.

    ``blocks[t]`` is the block of period ``t`` (0 .. n_blocks - 1).
    """

    blocks: np.ndarray
    levels: tuple[float, ...]

    @classmethod
    def equal(cls, n_blocks: int, levels) -> BlockPrices:
        """``n_blocks`` blocks of consecutive periods, as equal as possible."""
        return cls(np.arange(N_PERIODS) * n_blocks // N_PERIODS, tuple(float(x) for x in levels))

    @property
    def n_blocks(self) -> int:
        return int(self.blocks.max()) + 1


@dataclass(frozen=True)
class ExactResult:
    """The exact optimum: DR prices, the users' response the MILP chose, and its bounds."""

    dp: np.ndarray  # $/kWh per period
    schedule: np.ndarray  # N x T, kW: the optimistic response (ties resolved for the aggregator)
    outcome: Outcome
    f4: float  # exact F4 of ``schedule`` (a lower bound on the optimum)
    upper_bound: float  # the MILP's best bound: an upper bound (tangents under-estimate F2)
    mip_gap: float  # the last MILP's own relative gap
    tangent_rounds: int
    seconds: float
    f4_greedy: float  # F4 of ``dp`` with the users' earliest-period tie rule (as EHO evaluates it)
    status: str = "optimal"  # "optimal": bounds met within tol; "time_limit": the budget ran out first
    f4_search: float = float("nan")  # F4 of the price search (before the MILPs)

    @property
    def gap(self) -> float:
        """Relative: ``(upper_bound - f4) / |f4|`` (large where F4 is near 0: see ``abs_gap``)."""
        return (self.upper_bound - self.f4) / max(abs(self.f4), 1e-9)

    @property
    def abs_gap(self) -> float:
        """``upper_bound - f4``, in F4's (normalised) units."""
        return self.upper_bound - self.f4

    @property
    def proven(self) -> bool:
        return self.status == "optimal"


def load_range_kw(case: PriolkarCase) -> tuple[np.ndarray, np.ndarray]:
    """Per period, the least and the most load any feasible schedule can put there (kW, base included).

    An EV must draw ``E_i - P_max (h_i - 1)`` in each of its ``h_i`` window
    periods when that is positive, and can draw at most ``min(E_i, P_max)``.
    """
    win = case.window
    hours = win.sum(axis=1)
    must = np.clip(case.energy_kwh - case.p_max_kw * (hours - 1), 0.0, None)
    can = np.minimum(case.energy_kwh, case.p_max_kw)
    return case.base_kw + (win * must[:, None]).sum(axis=0), case.base_kw + (win * can[:, None]).sum(axis=0)


def build_bilevel_milp(case: PriolkarCase, norm: Normalisation, weights, *, tangents_per_hour: int = 24,
                       dp_blocks: BlockPrices | None = None,
                       dp_bounds: tuple[np.ndarray, np.ndarray] | None = None) -> pyo.ConcreteModel:
    """The KKT single-level model with F2 as ``mean_t s_t - mean^2`` and ``s_t >= L_t^2`` by tangents.

    ``tangents_per_hour`` equally spaced tangents over :func:`load_range_kw`;
    ``dp_blocks`` restricts DP to block levels (for the enumeration check);
    ``dp_bounds`` (``$/kWh`` per period) narrows Table 1's price bounds, and every
    big-M, dual bound and envelope follows.
    """
    p = case.params
    eps, pmax = p.wait_value_usd_per_h, case.p_max_kw
    a1, a2, a3 = weights
    win = case.window
    cells = [(int(i), int(t)) for i, t in np.argwhere(win)]
    evs = range(case.n_evs)
    periods = range(N_PERIODS)
    lo_f, hi_f = p.dr_price_factor
    dp_lo, dp_hi = (lo_f * case.bp, hi_f * case.bp) if dp_bounds is None else dp_bounds
    tau = {(i, t): (t - case.first[i]) / case.energy_kwh[i] for i, t in cells}
    c_lo = {(i, t): dp_lo[t] + eps * tau[i, t] for i, t in cells}
    c_hi = {(i, t): dp_hi[t] + eps * tau[i, t] for i, t in cells}
    # lambda_i is the cost of EV i's k-th cheapest period, k = ceil(E_i / P_max) (the marginal
    # one); an order statistic is monotone in every cost, so it lies between the k-th smallest
    # of the lowest and of the highest costs: tight bounds, hence small big-Ms
    lam_lo, lam_hi = {}, {}
    for i in evs:
        k = int(np.ceil(case.energy_kwh[i] / pmax - 1e-9))
        lows = sorted(c_lo[i, t] for t in periods if win[i, t])
        highs = sorted(c_hi[i, t] for t in periods if win[i, t])
        whole = abs(case.energy_kwh[i] / pmax - k) < 1e-9  # no fractional period: up to the next
        lam_lo[i], lam_hi[i] = lows[k - 1], highs[min(k, len(highs) - 1) if whole else k - 1]

    m = pyo.ConcreteModel(name="priolkar2025_bilevel_kkt")
    m.cells = pyo.Set(initialize=cells, dimen=2)
    m.dp = pyo.Var(periods, bounds=lambda _m, t: (float(dp_lo[t]), float(dp_hi[t])),
                   initialize=lambda _m, t: float(dp_hi[t]),  # kept in hours nobody can charge
                   doc="DR price ($/kWh), Table 1 bounds (Eq. 14 as corrected)")
    m.p = pyo.Var(m.cells, bounds=(0, pmax), doc="charging power (kW), Eq. 19")
    m.lam = pyo.Var(evs, bounds=lambda _m, i: (lam_lo[i], lam_hi[i]), doc="dual of Eq. 17 ($/kWh)")
    m.mu = pyo.Var(m.cells, bounds=lambda _m, i, t: (0, lam_hi[i] - c_lo[i, t]) if lam_hi[i] > c_lo[i, t]
                   else (0, 0), doc="dual of p <= P_max ($/kWh)")
    m.u = pyo.Var(m.cells, domain=pyo.Binary, doc="1: p > 0 allowed (zero reduced cost)")
    m.v = pyo.Var(m.cells, domain=pyo.Binary, doc="1: mu > 0 allowed (p at P_max)")

    def cost(mm, i, t):
        return mm.dp[t] + eps * tau[i, t]

    m.eq_energy_ev = pyo.Constraint(
        evs, rule=lambda mm, i: sum(mm.p[i, t] for t in periods if win[i, t]) == case.energy_kwh[i],
        doc="Eq. 17 with equality")
    m.ineq_reduced_cost_lb = pyo.Constraint(
        m.cells, rule=lambda mm, i, t: cost(mm, i, t) - mm.lam[i] + mm.mu[i, t] >= 0,
        doc="dual feasibility")
    big = {(i, t): c_hi[i, t] - lam_lo[i] + max(lam_hi[i] - c_lo[i, t], 0.0) for i, t in cells}  # mu <= its ub
    m.ineq_reduced_cost_ub = pyo.Constraint(
        m.cells, rule=lambda mm, i, t: cost(mm, i, t) - mm.lam[i] + mm.mu[i, t] <= big[i, t] * (1 - mm.u[i, t]),
        doc="p > 0 => zero reduced cost")
    m.ineq_p_on = pyo.Constraint(m.cells, rule=lambda mm, i, t: mm.p[i, t] <= pmax * mm.u[i, t])
    m.ineq_mu_on = pyo.Constraint(
        m.cells, rule=lambda mm, i, t: mm.mu[i, t] <= max(lam_hi[i] - c_lo[i, t], 0) * mm.v[i, t])
    m.ineq_p_full = pyo.Constraint(
        m.cells, rule=lambda mm, i, t: pmax - mm.p[i, t] <= pmax * (1 - mm.v[i, t]),
        doc="mu > 0 => p = P_max")

    # valid cardinalities: full periods carry P_max each, and E_i needs ceil(E_i / P_max) periods
    m.ineq_full_count = pyo.Constraint(
        evs, rule=lambda mm, i: sum(mm.v[i, t] for t in periods if win[i, t])
        <= int(np.floor(case.energy_kwh[i] / pmax + 1e-9)))
    m.ineq_used_count = pyo.Constraint(
        evs, rule=lambda mm, i: sum(mm.u[i, t] for t in periods if win[i, t])
        >= int(np.ceil(case.energy_kwh[i] / pmax - 1e-9)))
    m.ineq_full_used = pyo.Constraint(m.cells, rule=lambda mm, i, t: mm.v[i, t] <= mm.u[i, t])
    # w_it = DP_t p_it, bounded by its McCormick envelope, tied by strong duality: a relaxation
    # the LP can no longer inflate (F1 <= sum_t 2 BP_t L_t), exact at every KKT point
    m.w = pyo.Var(m.cells, bounds=lambda _m, i, t: (0, float(dp_hi[t]) * pmax), doc="DP_t p_it ($/h)")
    m.mc = pyo.ConstraintList()
    for i, t in cells:
        lo_dp, hi_dp = float(dp_lo[t]), float(dp_hi[t])
        m.mc.add(m.w[i, t] >= lo_dp * m.p[i, t])
        m.mc.add(m.w[i, t] >= hi_dp * m.p[i, t] + pmax * m.dp[t] - pmax * hi_dp)
        m.mc.add(m.w[i, t] <= hi_dp * m.p[i, t])
        m.mc.add(m.w[i, t] <= lo_dp * m.p[i, t] + pmax * m.dp[t] - pmax * lo_dp)
    m.eq_strong_duality = pyo.Constraint(
        evs, rule=lambda mm, i: sum(mm.w[i, t] + eps * tau[i, t] * mm.p[i, t] for t in periods if win[i, t])
        == mm.lam[i] * case.energy_kwh[i] - pmax * sum(mm.mu[i, t] for t in periods if win[i, t]),
        doc="each user's strong duality")
    m.load_kw = pyo.Expression(periods, rule=lambda mm, t: sum(mm.p[i, t] for i in evs if win[i, t])
                               + float(case.base_kw[t]))
    m.f1 = pyo.Expression(expr=sum(m.w[i, t] for i, t in cells)
                          - sum(float(case.bp[t]) * (m.load_kw[t] - float(case.base_kw[t])) for t in periods),
                          doc="Eq. 6: DR benefit ($)")
    mean = (case.energy_kwh.sum() + case.base_kw.sum()) / N_PERIODS
    low, top = load_range_kw(case)
    m.s = pyo.Var(periods, bounds=lambda _m, t: (float(low[t]) ** 2, float(top[t]) ** 2),
                  doc="stand-in for load_t^2 (kW^2)")
    m.tangents = pyo.ConstraintList(doc="s_t >= L_t^2 by tangents (outer approximation of Eq. 7)")
    for t in periods:
        for y in np.unique(np.linspace(low[t], top[t], max(tangents_per_hour, 2))):
            m.tangents.add(m.s[t] >= 2 * y * m.load_kw[t] - y**2)
    m.f2 = pyo.Expression(expr=sum(m.s[t] for t in periods) / N_PERIODS - mean**2,
                          doc="Eq. 7 as intended: variance of the hourly load (kW^2)")
    asap_centre = asap_centre_h(case)
    m.f3 = pyo.Expression(expr=sum(
        sum(t * m.p[i, t] for t in periods if win[i, t]) / case.energy_kwh[i] - asap_centre[i]
        for i in evs) / case.n_evs, doc="Eq. 8 in its linear form: mean wait (h)")
    m.objective = pyo.Objective(
        expr=a1 * m.f1 / norm.f1_usd - a2 * m.f2 / norm.f2_kw2 - a3 * m.f3 / norm.f3_h, sense=pyo.maximize)
    if dp_blocks is not None:
        levels = dp_blocks.levels
        m.z = pyo.Var(range(dp_blocks.n_blocks), range(len(levels)), domain=pyo.Binary,
                      doc="1: the block's DR price factor is this level")
        m.eq_one_level_block = pyo.Constraint(
            range(dp_blocks.n_blocks), rule=lambda mm, b: sum(mm.z[b, k] for k in range(len(levels))) == 1)
        m.eq_dp_block = pyo.Constraint(
            periods, rule=lambda mm, t: mm.dp[t] == float(case.bp[t]) * sum(
                f * mm.z[int(dp_blocks.blocks[t]), k] for k, f in enumerate(levels)))
    return m


def _set_start(m: pyo.ConcreteModel, case: PriolkarCase, dp: np.ndarray, sched: np.ndarray) -> None:
    """Write a bilevel-feasible point (prices and the users' exact response) into every variable of ``m``."""
    pmax = case.p_max_kw
    c = costs_per_kwh(case, dp)
    for t in range(N_PERIODS):
        m.dp[t].set_value(float(dp[t]), skip_validation=True)
    for i in range(case.n_evs):
        on = (sched[i] > 1e-9) & case.window[i]
        lam = float(c[i, on].max())
        m.lam[i].set_value(min(max(lam, m.lam[i].lb), m.lam[i].ub), skip_validation=True)
    for i, t in m.cells:
        lam = m.lam[i].value
        full = sched[i, t] >= pmax - 1e-9
        mu = max(lam - c[i, t], 0.0) if full else 0.0
        m.p[i, t].set_value(float(sched[i, t]), skip_validation=True)
        m.mu[i, t].set_value(min(mu, m.mu[i, t].ub), skip_validation=True)
        m.u[i, t].set_value(1 if sched[i, t] > 1e-9 else 0, skip_validation=True)
        m.v[i, t].set_value(1 if full else 0, skip_validation=True)
        m.w[i, t].set_value(float(dp[t] * sched[i, t]), skip_validation=True)
    load = sched.sum(axis=0) + case.base_kw
    for t in range(N_PERIODS):
        m.s[t].set_value(min(max(float(load[t]) ** 2, m.s[t].lb), m.s[t].ub), skip_validation=True)


def _read_point(m: pyo.ConcreteModel, case: PriolkarCase) -> tuple[np.ndarray, np.ndarray]:
    """The prices and the schedule of a solved model (clipped to the users' bounds against round-off)."""
    dp = np.array([pyo.value(m.dp[t]) for t in range(N_PERIODS)])
    sched = np.zeros((case.n_evs, N_PERIODS))
    for (i, t) in m.cells:
        sched[i, t] = pyo.value(m.p[i, t])
    return dp, np.where(case.window, np.clip(sched, 0, case.p_max_kw), 0)


def _evaluate(case: PriolkarCase, norm: Normalisation, weights, dp: np.ndarray) -> np.ndarray:
    """F4 of a batch of price vectors ``dp[..., t]`` with the exact (greedy) lower level."""
    a1, a2, a3 = weights
    p = respond(case, dp)
    ev = p.sum(axis=-2)
    load = ev + case.base_kw
    f1 = ((dp - case.bp) * ev).sum(axis=-1)
    centre = (p * np.arange(N_PERIODS)).sum(axis=-1) / case.energy_kwh
    f3 = (centre - asap_centre_h(case)).mean(axis=-1)
    return a1 * f1 / norm.f1_usd - a2 * load.var(axis=-1) / norm.f2_kw2 - a3 * f3 / norm.f3_h


def _coordinate_search(case, norm, weights, fac, levels, max_sweeps):
    """Improve the DP factors ``fac`` one hour at a time, every level of ``levels`` tried; ``(fac, F4)``."""
    cur = float(_evaluate(case, norm, weights, fac * case.bp))
    for _ in range(max_sweeps):
        improved = False
        for t in range(N_PERIODS):
            cand = np.tile(fac, (len(levels), 1))
            cand[:, t] = levels
            vals = _evaluate(case, norm, weights, cand * case.bp)
            j = int(np.argmax(vals))
            if vals[j] > cur + 1e-12:
                cur, fac, improved = float(vals[j]), cand[j], True
        if not improved:
            break
    return fac, cur


def price_search(case: PriolkarCase, weights=None, *, seconds: float = 10.0, n_levels: int = 121,
                 max_sweeps: int = 8, seed: int = 0, max_stall: int = 40) -> tuple[np.ndarray, float]:
    """A good price vector fast: iterated coordinate search over the 24 DP factors.

    A coordinate search tries every level of a grid in every hour (the lower
    level solved exactly and vectorised) and keeps the best, sweep after sweep.
    It starts from flat factors (2.0, 1.95, ..., 1.75), then, until
    ``seconds`` are spent or ``max_stall`` perturbations in a row found
    nothing better, from the best point with a few hours perturbed
    (iterated local search): F4 jumps where a user's ranking of hours flips,
    and one sweep alone stalls. Returns ``(dp, F4)``; a heuristic, so a lower bound.
    """
    start = time.perf_counter()
    weights = case.params.weights if weights is None else weights
    norm = normalisation(case)
    lo_f, hi_f = case.params.dr_price_factor
    levels = np.linspace(lo_f, hi_f, n_levels)
    rng = np.random.default_rng(seed)
    best_fac, best = None, -np.inf
    for f0 in np.clip(hi_f - np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25]), lo_f, hi_f):
        fac, val = _coordinate_search(case, norm, weights, np.full(N_PERIODS, f0), levels, max_sweeps)
        if val > best:
            best_fac, best = fac, val
    stall = 0
    while time.perf_counter() - start < seconds and stall < max_stall:
        stall += 1
        fac = best_fac.copy()
        hours = rng.choice(N_PERIODS, size=int(rng.integers(2, 7)), replace=False)
        fac[hours] = np.clip(fac[hours] + rng.normal(0.0, 0.1, len(hours)), lo_f, hi_f)
        fac, val = _coordinate_search(case, norm, weights, fac, levels, max_sweeps)
        if val > best + 1e-12:
            best_fac, best, stall = fac, val, 0
    return best_fac * case.bp, best


def solve_exact(case: PriolkarCase, weights=None, *, tol: float = 1e-4, max_rounds: int = 30,
                time_limit_s: float | None = None, solver: str = "highs", threads: int | None = 1,
                tangents_per_hour: int = 24, dp_blocks: BlockPrices | None = None,
                start_dp: np.ndarray | None = None, tee: bool = False,
                search_s: float | None = None, polish_share: float = 0.2) -> ExactResult:
    """Solve the optimistic bilevel problem to ``tol`` (relative, F4 between its bounds).

    ``time_limit_s`` is the budget for the whole call (price search, build and
    every MILP round); when it runs out, the best point found and the best
    proven bound come back with ``status="time_limit"``. ``dp_blocks``
    restricts the prices (see :class:`BlockPrices`); ``start_dp`` replaces the
    price search's start. ``search_s``: seconds of :func:`price_search` (default a
    fifth of the budget, or 2 s without one). ``tangents_per_hour``: the
    fixed outer approximation of ``L_t^2`` (error at most ``spacing^2 / 4``).
    ``polish_share``: the part of the budget for two MILPs over small price boxes
    around the search's point (ties; 0 to skip).
    """
    check_limits_inert(case)
    start = time.perf_counter()
    weights = case.params.weights if weights is None else weights
    norm = normalisation(case)
    if start_dp is None and dp_blocks is None:
        if search_s is None:
            search_s = 2.0 if time_limit_s is None else 0.2 * time_limit_s
        start_dp, _ = price_search(case, weights, seconds=search_s)
    elif start_dp is None:
        start_dp, _ = enumerate_block_prices(case, weights, dp_blocks)[:2]
    start_dp = np.asarray(start_dp, dtype=float)
    sched0 = respond(case, start_dp)
    out0 = outcome(case, start_dp, sched0)
    best = (start_dp, f4(out0, norm, weights), sched0, out0)
    f4_search = best[1]
    if dp_blocks is None and polish_share > 0:
        # the optimistic response splits a user's energy over periods it is indifferent between,
        # and the price search (ties to the earlier period) never finds such prices: a MILP over
        # a small box of prices around its point does, fast (small big-Ms), and is a valid start
        budget = None if time_limit_s is None else polish_share * time_limit_s
        for width in (0.05, 0.02):
            lo_f, hi_f = case.params.dr_price_factor
            box = (np.maximum(best[0] - width * case.bp, lo_f * case.bp),
                   np.minimum(best[0] + width * case.bp, hi_f * case.bp))
            near = build_bilevel_milp(case, norm, weights, tangents_per_hour=tangents_per_hour, dp_bounds=box)
            _set_start(near, case, best[0], best[2])
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SolverLimitWarning)
                    solve(near, solver, mip_gap=min(case.params.solver.mip_gap, tol),
                          time_limit_s=None if budget is None else budget / 2, threads=threads, warmstart=True)
            except SolverError:  # e.g. HiGHS rejected the start on round-off and found none in time
                continue
            dp, sched = _read_point(near, case)
            out = outcome(case, dp, sched)
            if f4(out, norm, weights) > best[1]:
                best = (dp, f4(out, norm, weights), sched, out)
    m = build_bilevel_milp(case, norm, weights, tangents_per_hour=tangents_per_hour, dp_blocks=dp_blocks)
    if dp_blocks is not None:  # the start's block levels
        for b in range(dp_blocks.n_blocks):
            t = int(np.flatnonzero(dp_blocks.blocks == b)[0])
            k = int(np.argmin([abs(f * case.bp[t] - start_dp[t]) for f in dp_blocks.levels]))
            for j in range(len(dp_blocks.levels)):
                m.z[b, j].set_value(int(j == k))
    _set_start(m, case, best[0], best[2])
    upper, mip_gap, status = np.inf, np.inf, "time_limit"
    for rounds in range(1, max_rounds + 1):
        left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - start)
        if left is not None and left < 1.0:
            rounds -= 1
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SolverLimitWarning)
                res = solve(m, solver, mip_gap=min(case.params.solver.mip_gap, tol), time_limit_s=left,
                            threads=threads, warmstart=True, tee=tee)
        except NoIncumbentError:  # the start rejected on round-off, none found in time: no bound
            break
        dp, sched = _read_point(m, case)
        out = outcome(case, dp, sched)
        value = f4(out, norm, weights)
        # maximising: the solver's bound is above its incumbent; tangents under-estimate F2.
        # A later round only adds cuts, so every round's bound is valid: keep the least
        bound = res.best_bound if res.best_bound is not None else res.objective
        upper = min(upper, float(bound))
        mip_gap = res.relative_gap if res.relative_gap is not None else 0.0
        if value > best[1]:
            best = (dp, value, sched, out)
        if (upper - best[1]) / max(abs(best[1]), 1e-9) <= tol:
            status = "optimal"
            break
        if res.status != "optimal":
            break  # the budget ran out inside this round: more tangents would not help
        for t in range(N_PERIODS):
            y = float(out.load_kw[t])
            m.tangents.add(m.s[t] >= 2 * y * m.load_kw[t] - y**2)
        _set_start(m, case, best[0], best[2])
    dp, value, sched, out = best
    greedy = outcome(case, dp, respond(case, dp))
    return ExactResult(dp=dp, schedule=sched, outcome=out, f4=value, upper_bound=float(upper),
                       mip_gap=float(mip_gap), tangent_rounds=rounds,
                       seconds=time.perf_counter() - start, f4_greedy=f4(greedy, norm, weights),
                       status=status, f4_search=f4_search)


def enumerate_block_prices(case: PriolkarCase, weights, prices: BlockPrices,
                           *, batch: int = 4096) -> tuple[np.ndarray, float, np.ndarray]:
    """The best DP over a restricted upper level, by enumerating every combination of block levels.

    The notes' "enumeration alternative" (Priolkar notes Sec. 5, item 5): each
    of ``len(levels) ** n_blocks`` price vectors is evaluated with the exact
    lower level (:func:`respond`, ties to the earlier period). Returns
    ``(dp, F4, schedule)`` of the best.
    """
    norm = normalisation(case)
    levels = np.asarray(prices.levels)
    combos = np.array(list(itertools.product(range(len(levels)), repeat=prices.n_blocks)))
    best_val, best_dp = -np.inf, None
    for j in range(0, len(combos), batch):
        fac = levels[combos[j:j + batch]][:, prices.blocks]  # (batch, T)
        dp = fac * case.bp
        vals = _evaluate(case, norm, weights, dp)
        k = int(np.argmax(vals))
        if vals[k] > best_val:
            best_val, best_dp = float(vals[k]), dp[k]
    return best_dp, best_val, respond(case, best_dp)
