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
* the variance F2 is convex in the load: an outer approximation by tangents
  (Kelley's cutting planes) under-estimates it, so the MILP's optimum is an
  upper bound on F4, and F4 evaluated exactly at its solution a lower bound.
  Tangents are added at the solution's loads until the two meet within
  ``tol`` (:class:`ExactResult` reports both).

The station limits and the priority weights are left out, and this is exact
only because they cannot bind: every station's EVs draw at most
``n_k * P_max`` kW, below the lowest limit (Table 1: 50 kW);
:func:`check_limits_inert` proves it for the instance or raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from evgrid.core.solvers import solve
from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase
from evgrid.papers.priolkar2025.lower import Outcome, asap_centre_h, outcome, respond
from evgrid.papers.priolkar2025.upper import Normalisation, f4, normalisation

__all__ = ["ExactResult", "LimitsBindError", "build_bilevel_milp", "check_limits_inert", "solve_exact"]


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
class ExactResult:
    """The exact optimum: DR prices, the users' response the MILP chose, and its bounds."""

    dp: np.ndarray  # $/kWh per period
    schedule: np.ndarray  # N x T, kW: the optimistic response (ties resolved for the aggregator)
    outcome: Outcome
    f4: float  # exact F4 of ``schedule`` (a lower bound on the optimum)
    upper_bound: float  # the last MILP's objective: an upper bound (tangents under-estimate F2)
    mip_gap: float  # the last MILP's own relative gap
    tangent_rounds: int
    seconds: float
    f4_greedy: float  # F4 of ``dp`` with the users' earliest-period tie rule (as EHO evaluates it)

    @property
    def gap(self) -> float:
        return (self.upper_bound - self.f4) / max(abs(self.f4), 1e-9)


def build_bilevel_milp(case: PriolkarCase, norm: Normalisation, weights) -> pyo.ConcreteModel:
    """The KKT single-level model with F2 as ``mean_t s_t - mean^2``, ``s_t`` cut by tangents later."""
    p = case.params
    eps, pmax = p.wait_value_usd_per_h, case.p_max_kw
    a1, a2, a3 = weights
    win = case.window
    cells = [(int(i), int(t)) for i, t in np.argwhere(win)]
    evs = range(case.n_evs)
    periods = range(N_PERIODS)
    lo_f, hi_f = p.dr_price_factor
    tau = {(i, t): (t - case.first[i]) / case.energy_kwh[i] for i, t in cells}
    c_lo = {(i, t): lo_f * case.bp[t] + eps * tau[i, t] for i, t in cells}
    c_hi = {(i, t): hi_f * case.bp[t] + eps * tau[i, t] for i, t in cells}
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
    m.dp = pyo.Var(periods, bounds=lambda _m, t: (lo_f * case.bp[t], hi_f * case.bp[t]),
                   initialize=lambda _m, t: hi_f * case.bp[t],  # kept in hours nobody can charge
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
    big = {(i, t): c_hi[i, t] - lam_lo[i] + (lam_hi[i] - c_lo[i, t]) for i, t in cells}
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
    m.w = pyo.Var(m.cells, bounds=lambda _m, i, t: (0, hi_f * case.bp[t] * pmax), doc="DP_t p_it ($/h)")
    m.mc = pyo.ConstraintList()
    for i, t in cells:
        lo_dp, hi_dp = lo_f * case.bp[t], hi_f * case.bp[t]
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
    top = np.array([case.base_kw[t] + pmax * win[:, t].sum() for t in periods])
    m.s = pyo.Var(periods, bounds=lambda _m, t: (0, float(top[t]) ** 2), doc="stand-in for load_t^2 (kW^2)")
    m.tangents = pyo.ConstraintList()
    for t in periods:
        for y in np.linspace(0, top[t], 9):
            m.tangents.add(m.s[t] >= 2 * y * m.load_kw[t] - y**2)
    m.f2 = pyo.Expression(expr=sum(m.s[t] for t in periods) / N_PERIODS - mean**2)
    asap_centre = asap_centre_h(case)
    m.f3 = pyo.Expression(expr=sum(
        sum(t * m.p[i, t] for t in periods if win[i, t]) / case.energy_kwh[i] - asap_centre[i]
        for i in evs) / case.n_evs)
    m.objective = pyo.Objective(
        expr=a1 * m.f1 / norm.f1_usd - a2 * m.f2 / norm.f2_kw2 - a3 * m.f3 / norm.f3_h, sense=pyo.maximize)
    m._top = top
    return m


def solve_exact(case: PriolkarCase, weights=None, *, tol: float = 1e-4, max_rounds: int = 30,
                time_limit_s: float | None = None, solver: str = "highs") -> ExactResult:
    """Solve the optimistic bilevel problem to ``tol`` (relative, F4 between its bounds)."""
    check_limits_inert(case)
    start = time.perf_counter()
    weights = case.params.weights if weights is None else weights
    norm = normalisation(case)
    m = build_bilevel_milp(case, norm, weights)
    win = case.window
    best = None
    for rounds in range(1, max_rounds + 1):
        res = solve(m, solver, mip_gap=case.params.solver.mip_gap, time_limit_s=time_limit_s,
                    warmstart=rounds > 1)
        dp = np.array([pyo.value(m.dp[t]) for t in range(N_PERIODS)])
        sched = np.zeros((case.n_evs, N_PERIODS))
        for (i, t) in m.cells:
            sched[i, t] = pyo.value(m.p[i, t])
        sched = np.where(win, np.clip(sched, 0, case.p_max_kw), 0)
        out = outcome(case, dp, sched)
        value = f4(out, norm, weights)
        # maximising: the solver's bound is above its incumbent; tangents under-estimate F2
        upper = res.best_bound if res.best_bound is not None else res.objective
        mip_gap = res.relative_gap if res.relative_gap is not None else 0.0
        if best is None or value > best[1]:
            best = (dp, value, sched, out)
        if (upper - best[1]) / max(abs(best[1]), 1e-9) <= tol:
            break
        for t in range(N_PERIODS):
            y = float(out.load_kw[t])
            m.tangents.add(m.s[t] >= 2 * y * m.load_kw[t] - y**2)
    dp, value, sched, out = best
    greedy = outcome(case, dp, respond(case, dp))
    return ExactResult(dp=dp, schedule=sched, outcome=out, f4=value, upper_bound=float(upper),
                       mip_gap=float(mip_gap), tangent_rounds=rounds,
                       seconds=time.perf_counter() - start, f4_greedy=f4(greedy, norm, weights))
