"""Priolkar & Kunkolienkar (2025): the centralised schedule, a bound no price signal can beat.

If the aggregator controlled every EV's charging directly (the cooperative
relaxation of the bilevel problem), it could choose any schedule meeting
Eqs. 17-19. Its least variance of the hourly load (F2, a convex QP solved
by HiGHS) and least peak (an LP) are therefore lower bounds on what any DR
price vector, EHO's or the exact bilevel optimum's, can induce.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from evgrid.core.solvers import solve
from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase

__all__ = ["build_central", "central_schedule"]


def build_central(case: PriolkarCase, objective: str = "variance") -> pyo.ConcreteModel:
    """The centralised model: Eqs. 17-19 for every EV; ``objective`` ``"variance"`` (QP) or ``"peak"`` (LP)."""
    if objective not in ("variance", "peak"):
        raise ValueError(f"objective = {objective!r}: choose 'variance' or 'peak'")
    win = case.window
    cells = [(int(i), int(t)) for i, t in np.argwhere(win)]
    m = pyo.ConcreteModel(name=f"priolkar2025_central_{objective}")
    m.p = pyo.Var(cells, bounds=(0, case.p_max_kw), doc="charging power (kW), Eq. 19")
    m.eq_energy_ev = pyo.Constraint(
        range(case.n_evs),
        rule=lambda mm, i: sum(mm.p[i, t] for t in range(N_PERIODS) if win[i, t]) == case.energy_kwh[i],
        doc="Eq. 17 with equality")
    m.load_kw = pyo.Expression(range(N_PERIODS), rule=lambda mm, t: sum(
        mm.p[i, t] for i in range(case.n_evs) if win[i, t]) + float(case.base_kw[t]))
    if objective == "peak":
        m.peak_kw = pyo.Var(bounds=(0, None))
        m.ineq_peak = pyo.Constraint(range(N_PERIODS), rule=lambda mm, t: mm.load_kw[t] <= mm.peak_kw)
        m.objective = pyo.Objective(expr=m.peak_kw)
    else:  # the mean load is fixed, so the variance is mean(L^2) minus a constant
        m.objective = pyo.Objective(expr=sum(m.load_kw[t] ** 2 for t in range(N_PERIODS)) / N_PERIODS)
    return m


def central_schedule(case: PriolkarCase, objective: str = "variance") -> np.ndarray:
    """The centralised optimum's schedule (N x T, kW)."""
    m = build_central(case, objective)
    solve(m, case.params.solver.solver)
    p = np.zeros((case.n_evs, N_PERIODS))
    for (i, t), var in m.p.items():
        p[i, t] = var.value or 0.0
    return np.clip(p, 0.0, case.p_max_kw)
