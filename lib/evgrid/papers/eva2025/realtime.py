"""Paper 2's real-time adjustment (Section 4.3): rolling horizon against perfect foresight.

The day-ahead prices are public before the day, so the rolling horizon
(:func:`rolling_horizon`) knows them and forecasts only the sessions, from the
same weekday of the previous weeks (:func:`past_same_weekday`,
:func:`forecast_fleet`); two labelled variants forecast the prices instead
(:func:`forecast_previous`): re-planned every hour, or one day-ahead plan
(:func:`day_ahead_only`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd

from evgrid.core.solvers import solve
from evgrid.data.market import local_day
from evgrid.formulations.fleet import FLEET_COLUMNS, fleet_schedule
from evgrid.papers.eva2025.inputs import (
    EvaDay,
    by_clock_hour,
    day_periods,
    fleet_options,
    market_prices,
    sessions_on,
    sessions_to_fleet,
)
from evgrid.papers.eva2025.model import build_aggregator_schedule
from evgrid.papers.eva2025.strategies import StrategyResult, schedule_metrics, solve_or_explain

__all__ = [
    "FORECAST_WEEKS",
    "REALTIME_LABELS",
    "day_ahead_only",
    "forecast_fleet",
    "forecast_previous",
    "past_same_weekday",
    "rolling_horizon",
]


#: Weeks of past sessions the rolling horizon's session forecast pools.
FORECAST_WEEKS = 4

#: Labels of the real-time comparison's schedules.
REALTIME_LABELS = {
    "v2g": "perfect foresight (strategy 3)",
    "rolling_horizon": "rolling horizon: day-ahead prices, sessions forecast",
    "rolling_horizon_price_forecast": "variant: rolling horizon, prices forecast (previous week)",
    "day_ahead_price_forecast": "variant: one day-ahead plan, prices forecast (previous week)",
}


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
    solve_or_explain(model, day, solver, mip_gap)
    schedule = fleet_schedule(model.fleet)
    metrics = schedule_metrics(day, schedule, day.site_load_kw)
    return StrategyResult("day_ahead_price_forecast", schedule, day.site_load_kw, metrics,
                          time.perf_counter() - tick)


def _with_prices(day: EvaDay, prices: tuple[np.ndarray, np.ndarray]) -> EvaDay:
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
    lag = {"previous_week": 7, "previous_day": 1}[how]
    source = local_day(prices_eur_per_mwh, pd.Timestamp(day) - pd.Timedelta(days=lag), tz)
    return by_clock_hour(source, day_periods(day, tz))


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
                              **fleet_options(params))
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
