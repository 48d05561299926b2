"""Paper 2's model: the aggregator's profit-maximising schedule of one day (Section 3).

:func:`build_aggregator_schedule` builds it on the shared battery block
(:func:`evgrid.formulations.fleet.declare_ev_fleet`), with the charge/discharge
exclusion binaries only where they are needed (:func:`exclusion_hours`);
:func:`check_grid_capacity` proves before any build that smart charging
cannot meet the grid limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.formulations.fleet import FLEET_COLUMNS, declare_ev_fleet, energy_need_windows
from evgrid.papers.eva2025.inputs import EvaDay, hour_fractions

__all__ = ["GridLimitError", "build_aggregator_schedule", "check_grid_capacity", "exclusion_hours"]


def exclusion_hours(
    day: EvaDay, buy: np.ndarray | None = None, sell: np.ndarray | None = None
) -> list[int]:
    """Hours in which charging and discharging one EV at once could pay.

    Charging ``x`` kW and discharging ``eta x`` kW (``eta = eta_ch eta_dis``)
    in the same hour leaves the battery where it was; it only turns
    ``(1 - eta) x`` of energy into losses, which the site must import (or
    not export), and wears the battery by ``kappa (1 + eta) x``. The site
    values a kWh at ``buy`` when it imports and at ``sell <= buy`` when it
    exports, so this pays only if ``(1 - eta) sell + kappa (1 + eta) < 0``:
    at a sell price below ``-kappa (1 + eta) / (1 - eta)``, i.e. only at
    negative prices. In every other hour an optimal LP solution never does
    it, and the exclusion binaries (Kerama Eq. 15; the paper's "charge and
    discharge exclusion") of those hours are redundant.
    """
    buy = day.buy_eur_per_kwh if buy is None else buy
    sell = day.sell_eur_per_kwh if sell is None else sell
    eta = float(day.eta_round_trip.min()) if len(day.fleet) else 1.0
    margin = (1 - eta) * np.minimum(sell, buy) + day.degradation_eur_per_kwh * (1 + eta)
    return [int(t) for t in np.nonzero(margin <= 0)[0]]  # a tie could leave both on


def build_aggregator_schedule(
    day: EvaDay,
    *,
    v2g: bool = True,
    demand_response: bool = False,
    exclusion: Literal["auto", "all", "none"] = "auto",
    periods: Sequence[int] | None = None,
    fleet: pd.DataFrame | None = None,
    prices: tuple[np.ndarray, np.ndarray] | None = None,
    shortfall_eur_per_kwh: float | None = None,
) -> pyo.ConcreteModel:
    """The aggregator's profit-maximising schedule of one day (paper Section 3).

    Objective (3.1), per hour ``t`` (1 h periods)::

        max  sum_t  sell_t d_t - buy_t b_t
             - kappa sum_e (p_ch[e,t] + p_dis[e,t])        battery wear, C_batt
             - c_dr (up_t + down_t) / 2                     demand response (v2g_dr)

    with the market position ``b_t - d_t = L'_t + sum_e (p_ch - p_dis)``,
    ``b_t, d_t >= 0`` (bought and sold energy), the site load ``L'_t`` (fixed,
    or shifted by demand response: ``L'_t = L_t + up_t - down_t``,
    ``up_t, down_t <= phi L_t``, ``sum_t up_t = sum_t down_t``), the EV block
    of :func:`evgrid.formulations.fleet.declare_ev_fleet` ((3.2): SOC dynamics, capacity,
    charger, window and required energy) and the grid limit (3.2),
    ``-G <= b_t - d_t <= G``.

    The paper's E_ch and E_dis are the fleet's; we settle the *net* position
    so that energy moved from one EV to another or to the site inside one
    hour is not bought and sold at once (with ``buy >= sell`` it never would
    be: the model nets it either way).

    Parameters
    ----------
    day : EvaDay
        Prices, fleet, site load and limits.
    v2g : bool
        Allow discharging (strategies 3 and 4).
    demand_response : bool
        Let the site load shift (strategy 4).
    exclusion : {"auto", "all", "none"}
        Charge/discharge exclusion binaries: only in the hours of
        :func:`exclusion_hours` (``"auto"``, exact), in every hour, or none
        (the LP relaxation).
    periods, fleet, prices
        For a rolling horizon: the hours to schedule (default: the whole
        day), the EVs with their current energy (default ``day.fleet``) and
        the (buy, sell) prices to plan with (default the day's).
    shortfall_eur_per_kwh : float, optional
        Make the required energy soft, each kWh missing at departure costing
        this much (a rolling horizon, which cannot see later arrivals, may
        otherwise promise the grid capacity twice). Default: hard.
    """
    periods = list(range(day.n_periods)) if periods is None else [int(t) for t in periods]
    fleet = day.fleet if fleet is None else fleet
    buy, sell = (day.buy_eur_per_kwh, day.sell_eur_per_kwh) if prices is None else prices
    if exclusion not in ("auto", "all", "none"):
        raise ValueError(f"exclusion must be 'auto', 'all' or 'none', got {exclusion!r}")
    binary_hours: Iterable[int] | bool
    if not v2g or exclusion == "none":
        binary_hours = False
    elif exclusion == "all":
        binary_hours = True
    else:
        binary_hours = [t for t in exclusion_hours(day, buy, sell) if t in set(periods)]

    m = pyo.ConcreteModel(name="eva2025_aggregator")
    m.t = pyo.Set(initialize=periods, ordered=True, doc="hours")
    m.fleet = pyo.Block()
    declare_ev_fleet(m.fleet, fleet[FLEET_COLUMNS], allow_discharge=v2g, exclusive_binaries=binary_hours)
    # Sub-hourly plug-in: in its first and last hour an EV is there only part of the hour.
    p_max = fleet.set_index("ev")["p_max_kw"]
    for (e, t), share in hour_fractions(fleet).items():
        if (e, t) in m.fleet.ev_t:
            m.fleet.p_ch_kw[e, t].setub(share * float(p_max[e]))
            if v2g:
                m.fleet.p_dis_kw[e, t].setub(share * float(p_max[e]))
    by_t: dict[int, list] = {t: [] for t in periods}
    for e, t in m.fleet.ev_t:
        by_t[t].append(e)

    g = day.grid_limit_kw
    m.buy_kw = pyo.Var(m.t, bounds=(0, g), doc="energy bought in hour t (kWh = kW x 1 h)")
    m.sell_kw = pyo.Var(m.t, bounds=(0, g), doc="energy sold in hour t (kWh)")
    load = day.site_load_kw
    if demand_response:
        phi = day.dr_shift_fraction
        m.up_kw = pyo.Var(m.t, bounds=lambda _m, t: (0, phi * load[t]), doc="load moved into t")
        m.down_kw = pyo.Var(m.t, bounds=lambda _m, t: (0, phi * load[t]), doc="load moved out of t")
        m.eq_dr_energy_neutral = pyo.Constraint(
            expr=sum(m.up_kw[t] for t in m.t) == sum(m.down_kw[t] for t in m.t),
            doc="demand response moves load within the day",
        )

    def site(t):
        return load[t] + (m.up_kw[t] - m.down_kw[t] if demand_response else 0.0)

    m.eq_market_position = pyo.Constraint(
        m.t,
        rule=lambda _m, t: _m.buy_kw[t] - _m.sell_kw[t]
        == site(t) + sum(_m.fleet.p_ch_kw[e, t] - _m.fleet.p_dis_kw[e, t] for e in by_t[t]),
        doc="net position = site load + EV charging - EV discharging; grid limit (3.2) by bounds",
    )
    wear = day.degradation_eur_per_kwh
    profit = sum(sell[t] * m.sell_kw[t] - buy[t] * m.buy_kw[t] for t in m.t) - wear * sum(
        m.fleet.p_ch_kw[e, t] + m.fleet.p_dis_kw[e, t] for e, t in m.fleet.ev_t
    )
    if demand_response:
        profit -= day.dr_cost_eur_per_kwh * sum(m.up_kw[t] + m.down_kw[t] for t in m.t) / 2
    if shortfall_eur_per_kwh is not None:
        f = fleet.set_index("ev")
        m.fleet.ineq_energy_required_ev.deactivate()
        m.shortfall_kwh = pyo.Var(m.fleet.ev, bounds=(0, None), doc="energy missing at departure")
        m.ineq_energy_required_soft = pyo.Constraint(
            m.fleet.ev,
            rule=lambda _m, e: _m.fleet.e_kwh[e, int(f.at[e, "departure"]) - 1] + _m.shortfall_kwh[e]
            >= f.at[e, "e_req_kwh"],
            doc="required energy at departure, with a penalised shortfall",
        )
        profit -= shortfall_eur_per_kwh * sum(m.shortfall_kwh[e] for e in m.fleet.ev)
    m.objective = pyo.Objective(expr=profit, sense=pyo.maximize, doc="aggregator profit (3.1)")
    return m


class GridLimitError(ValueError):
    """The grid limit cannot carry the energy the EVs need, whatever the schedule."""


def check_grid_capacity(day: EvaDay) -> None:
    """Raise :class:`GridLimitError` if no schedule without V2G can meet the grid limit (3.2).

    A necessary condition for smart charging, checked before its model is
    built: in every hour the site load fits under the limit, and in every
    window of hours ``[a, b)`` the energy that the EVs plugged in only
    within it must take (``(e_req - e_init) / eta_ch``,
    :func:`evgrid.formulations.fleet.energy_need_windows`) fits in the room
    the limit leaves above the site load. The message names the window, the
    energy needed and the room. With V2G or demand response it is not
    necessary (discharging EVs or shifted load make room), and
    :func:`run_strategy` uses it only to explain an infeasible solve.
    """
    T, g = day.n_periods, day.grid_limit_kw
    over = np.nonzero(day.site_load_kw > g + 1e-9)[0]
    if len(over):
        raise GridLimitError(
            f"the site load alone exceeds grid_limit_kw = {g:g} kW in hours "
            f"{over.tolist()} (peak {day.site_load_kw.max():.0f} kW)"
        )
    room = g - day.site_load_kw
    for w in energy_need_windows(day.fleet, T).itertuples():
        room_kwh = room[w.t_start : w.t_end].sum()
        if w.need_kwh > room_kwh + 1e-6:
            raise GridLimitError(
                f"the {w.n_evs} EVs plugged in only within hours {w.t_start}-{w.t_end} need "
                f"{w.need_kwh:.0f} kWh from the grid, but grid_limit_kw = {g:g} kW "
                f"leaves {room_kwh:.0f} kWh above the site load: raise the limit"
            )
