"""Paper 2's four strategies, and what a schedule costs and earns at the day's real prices.

:func:`run_strategy` schedules a day with one of :data:`STRATEGIES`
(uncontrolled charging from arrival, :func:`uncontrolled_schedule`; smart
charging; V2G; V2G with demand response: the package docstring says what
each is) and :func:`schedule_metrics` settles any schedule at the real prices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.core.solvers import InfeasibleModelError, solve
from evgrid.formulations.fleet import (
    FLEET_COLUMNS,
    fleet_schedule,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)
from evgrid.papers.eva2025.inputs import EvaDay, hour_fractions
from evgrid.papers.eva2025.model import (
    GridLimitError,
    build_aggregator_schedule,
    check_grid_capacity,
)

__all__ = [
    "STRATEGIES",
    "STRATEGY_LABELS",
    "Strategy",
    "StrategyResult",
    "delivered_by_ev",
    "net_load_kw",
    "run_strategy",
    "schedule_metrics",
    "solve_or_explain",
    "uncontrolled_schedule",
]


Strategy = Literal["uncontrolled", "smart", "v2g", "v2g_dr"]
STRATEGIES: tuple[Strategy, ...] = ("uncontrolled", "smart", "v2g", "v2g_dr")
STRATEGY_LABELS = {
    "uncontrolled": "1 uncontrolled",
    "smart": "2 smart, no V2G",
    "v2g": "3 smart + V2G",
    "v2g_dr": "4 V2G + demand response",
}


def uncontrolled_schedule(fleet: pd.DataFrame, n_periods: int) -> pd.DataFrame:
    """Strategy 1: every EV charges at full power from the moment it arrives until it has its need.

    :func:`evgrid.formulations.fleet.uncontrolled_charging` with ``target="required"``,
    sub-hourly: in the arrival and departure hours the charger runs only for
    the plugged-in share of the hour (:func:`hour_fractions`), so an EV
    arriving at 08:40 charges 1/3 of an hour at full power in hour 8.
    """
    return uncontrolled_charging(fleet[FLEET_COLUMNS], n_periods, target="required",
                                 hour_shares=hour_fractions(fleet))


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


def solve_or_explain(model, day: EvaDay, solver: str, mip_gap: float,
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
        solve_or_explain(model, day, solver, mip_gap, time_limit_s)
        schedule = fleet_schedule(model.fleet)
        site = day.site_load_kw.copy()
        if strategy == "v2g_dr":
            site = site + np.array([pyo.value(model.up_kw[t] - model.down_kw[t]) for t in model.t])
    metrics = schedule_metrics(day, schedule, site)
    metrics["simultaneous_ev_hours"] = len(simultaneous_charge_discharge(schedule))
    return StrategyResult(strategy, schedule, site, metrics, time.perf_counter() - tick)


def net_load_kw(day: EvaDay, result: StrategyResult) -> np.ndarray:
    """The site's net import in each hour (kW): site load plus EV charging minus discharging."""
    s = result.schedule
    net = (s["p_ch_kw"] - s["p_dis_kw"]).groupby(s["t"]).sum()
    return result.site_kw + net.reindex(range(day.n_periods), fill_value=0.0).to_numpy()
