"""Kerama (2025): where the peak reduction comes from.

The aggregators' problems (Eqs. 8-14) are LPs whose optimum is often not
unique: with flat time-of-use blocks an aggregator is indifferent between the
hours of one block. The optimistic bi-level model (the paper's, and
:func:`evgrid.papers.kerama2025.decomposition.solve_benders`) lets the DSO pick, among the
aggregators' equally optimal schedules, the one best for the feeder. This
module separates that choice from the aggregators' own price response:

* :func:`followers_alone_schedule`: each aggregator solves its own LP, with no
  DSO at all (the vertex HiGHS returns: one of the optimal schedules, not a
  chosen one);
* :func:`worst_tie_schedule`: among the schedules that are optimal for every
  aggregator at the given caps, the one with the highest feeder peak: what a
  DSO that cannot pick the tie (the *pessimistic* reading) must be ready for.

Both return schedules in the format of
:func:`evgrid.papers.kerama2025.model.schedule_from_model`, to be verified by
AC power flow with :func:`evgrid.papers.kerama2025.evaluate.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.core.solvers import solve
from evgrid.papers.kerama2025.case import SCHEDULE_COLUMNS, KeramaCase
from evgrid.papers.kerama2025.model import aggregator_bids, build_aggregator_lp, declare_aggregator

#: An aggregator's cost may exceed its optimum by this much (relative, and at least $1e-6)
#: in a "tie": the solver's optimality tolerance, not a modelling slack.
TIE_TOLERANCE = 1e-7


def _caps_for(caps_kw: pd.DataFrame | None, aggregator: int):
    if caps_kw is None:
        return None
    return {t: float(caps_kw.loc[aggregator, t]) for t in caps_kw.columns}


def followers_alone_schedule(
    case: KeramaCase, caps_kw: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[tuple[int, int], float]]:
    """Every aggregator's own LP (Eqs. 8-14), solved alone, at the given caps (None: none).

    Returns the schedule and each ``(aggregator, scenario)``'s optimal cost
    (minus its Eq. 8 profit), which *is* unique; the schedule is the vertex
    HiGHS returns, one of possibly many optimal ones.
    """
    rows, optimum = [], {}
    for s in case.scenarios:
        for a in case.aggregators:
            model = build_aggregator_lp(case, a, s, _caps_for(caps_kw, a))
            optimum[a, s] = solve(model).objective
            rows += aggregator_bids(model, case, s, a)
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS), optimum


@dataclass(frozen=True)
class WorstTie:
    """Outcome of :func:`worst_tie_schedule`."""

    schedule: pd.DataFrame
    #: per scenario: the hour whose linear feeder load the ties can raise most, and that load (kW)
    peak_hour: dict[int, int]
    peak_kw_linear: dict[int, float]


def _import_bound(block: pyo.Block, t: int) -> float:
    """Most the block can import at ``t``: its plugged chargers at full power, within its bid bound."""
    chargers = sum(block.p_ch_kw[e, tt].ub for e, tt in block.ev_t if tt == t)
    return min(chargers, block.b_imp_kw[t].ub)


def base_net_load_kw(case: KeramaCase, scenario: int) -> np.ndarray:
    """Feeder load without EVs and without losses, per period: loads minus PV (kW)."""
    return (case.load_kw.sum(axis=0) - case.pv_kw[scenario].sum(axis=0)).to_numpy(dtype=float)


def worst_tie_schedule(
    case: KeramaCase,
    caps_kw: pd.DataFrame | None = None,
    optimum: dict[tuple[int, int], float] | None = None,
) -> WorstTie:
    """The aggregators' optimal schedules that load the feeder most, per scenario.

    For each scenario, every aggregator is held at its own optimum
    (``cost_usd <= phi + tol``, with ``phi`` from :func:`followers_alone_schedule`),
    and for each hour ``t`` an LP maximises the fleets' total net import at
    ``t``; the hour whose base load plus that import is largest gives the
    schedule. The feeder peak is measured without losses here (the AC check of
    the returned schedule gives the real one). One model per scenario, its
    objective changed hour by hour; hours are tried in the order of an upper
    bound (base load plus every plugged charger at full power, within the
    bids' bounds and caps), and the search stops when no remaining hour's
    bound can beat the best load found, so the answer is exact without
    solving all 24 LPs. ``optimum`` (from :func:`followers_alone_schedule` at
    the same caps) saves re-solving the aggregators alone.
    """
    if optimum is None:
        _, optimum = followers_alone_schedule(case, caps_kw)
    rows, peak_hour, peak_kw = [], {}, {}
    for s in case.scenarios:
        m = pyo.ConcreteModel(name=f"kerama2025_worst_tie_scenario_{s}")
        m.agg = pyo.Block(case.aggregators)
        for a in case.aggregators:
            declare_aggregator(m.agg[a], case, case.fleet(a, s), b_max_kw=case.b_max_kw[a],
                               import_cap_kw=_caps_for(caps_kw, a))
        m.ineq_cost_tie = pyo.Constraint(
            case.aggregators,
            rule=lambda m, a, s=s: m.agg[a].cost_usd
            <= optimum[a, s] + max(TIE_TOLERANCE * abs(optimum[a, s]), 1e-6),
            doc="each aggregator stays at its own optimum (a tie, not a sacrifice)",
        )
        base = base_net_load_kw(case, s)
        bound = {t: base[t] + sum(_import_bound(m.agg[a], t) for a in case.aggregators)
                 for t in case.periods}
        best_t, best_value, best_rows = None, -np.inf, None
        for t in sorted(case.periods, key=lambda t: (-bound[t], t)):
            if bound[t] <= best_value + 1e-6:
                break  # no later hour can load the feeder more
            m.objective = pyo.Objective(
                expr=sum(m.agg[a].b_imp_kw[t] - m.agg[a].b_exp_kw[t] for a in case.aggregators),
                sense=pyo.maximize,
            )
            value = base[t] + solve(m).objective
            if value > best_value + 1e-6:
                best_t, best_value = t, value
                best_rows = [
                    r for a in case.aggregators for r in aggregator_bids(m.agg[a], case, s, a)
                ]
            m.del_component(m.objective)
        peak_hour[s], peak_kw[s] = best_t, float(best_value)
        rows += best_rows
    return WorstTie(pd.DataFrame(rows, columns=SCHEDULE_COLUMNS), peak_hour, peak_kw)
