"""Paper 2's study: a day with every strategy, a month, and the paper's headline figures.

:func:`run_day` runs the four strategies and the real-time variants on one
day, :func:`run_month` every day of a month (the pipeline's
``python -m evgrid.papers.eva2025 month YYYY-MM``, :func:`run_month_files`),
and :func:`headline_figures`, :func:`month_overview` and
:func:`metrics_summary` turn the month tables into the figures the paper
reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from evgrid.core.config import ConfigError, load_section, validate_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks, options_from_mapping
from evgrid.core.paths import output_path
from evgrid.data.market import PriceDataError
from evgrid.papers.eva2025.inputs import (
    CapRule,
    EvaDay,
    EvaInputs,
    acn_date,
    load_inputs,
    make_day,
    month_days,
)
from evgrid.papers.eva2025.realtime import (
    day_ahead_only,
    forecast_fleet,
    forecast_previous,
    past_same_weekday,
    rolling_horizon,
)
from evgrid.papers.eva2025.strategies import STRATEGIES, StrategyResult, net_load_kw, run_strategy

__all__ = [
    "CAP_VARIANTS",
    "capped_summary",
    "headline_figures",
    "main",
    "metrics_summary",
    "month_files",
    "month_overview",
    "run_day",
    "run_month",
    "run_month_files",
    "tariff_for_revenue_increase",
    "tariff_sensitivity",
]


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
              parallel: ParallelOptions | Mapping | None = None,
              days: Sequence[pd.Timestamp] | None = None,
              ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp]]:
    """Every day of ``params.month`` (or just ``days``): each strategy's metrics and hourly net load.

    Returns ``(metrics, load, skipped)``: one row per (day, variant,
    strategy) with the metrics of :func:`schedule_metrics` and the day's
    :func:`capped_summary`; one row per (day, strategy, hour) with the site's
    net import ``net_kw`` (base variant); and the days left out because the
    price file lacks one of their hours (2024-12-31: its 00:00). Variant
    ``base`` runs every strategy and the real-time comparison; variant
    ``window_cap`` (:data:`CAP_VARIANTS`) the four strategies. A tqdm
    progress bar shows the days.

    The days are independent: they run through
    :func:`evgrid.core.parallel.map_tasks` where ``parallel`` says (None: one
    after another in this process); the tables are the same either way.
    """
    options = ParallelOptions(workers=1) if parallel is None else options_from_mapping(parallel)
    days = month_days(params.month) if days is None else pd.DatetimeIndex(days)
    # stdout, not stderr: executed notebooks keep no stderr output (map_tasks' bar is on stdout)
    outcomes = map_tasks(_month_day, [(params, inputs, day) for day in days], options=options,
                         desc=f"month {params.month}", progress=progress)
    rows = [row for day_rows, _loads in outcomes if day_rows is not None for row in day_rows]
    loads = [frame for _rows, day_loads in outcomes if day_loads is not None for frame in day_loads]
    skipped = [day for day, (day_rows, _loads) in zip(days, outcomes, strict=True) if day_rows is None]
    metrics = pd.DataFrame(rows)
    if "forecast_days" in metrics:
        metrics["forecast_days"] = metrics["forecast_days"].fillna(-1).astype(int)
    return metrics, pd.concat(loads, ignore_index=True), skipped


def _month_day(task) -> tuple[list[dict] | None, list[pd.DataFrame] | None]:
    """One day of :func:`run_month` (a pure task): its metric rows and net-load frames.

    ``(None, None)`` when the price file lacks one of the day's hours.
    """
    params, inputs, day = task
    try:
        inputs.prices_on(day)
    except PriceDataError:
        return None, None
    rows, loads = [], []
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
    return rows, loads


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

    The days run where the ``parallel`` section of ``params_file`` says
    (:func:`evgrid.core.parallel.load_parallel`).

    ``<results_dir>/months/<month>.csv``: one row per (day, variant,
    strategy), no wall-clock times; ``<month>_load.csv``: the hourly net load.
    """
    base = load_section("eva2025", params_file)
    params = validate_section("eva2025", {**base.model_dump(), "month": month})
    parallel = load_parallel(params_file)
    tick = time.perf_counter()
    inputs = load_inputs(params, month_days(month))
    metrics, load, skipped = run_month(params, inputs, progress=progress, parallel=parallel)
    main, load_file = month_files(params.results_dir, month)
    write_csv(metrics.drop(columns=["solve_s"]), output_path(main))
    write_csv(load, output_path(load_file))
    left = f"; left out (price file lacks an hour): {', '.join(str(d.date()) for d in skipped)}" if skipped else ""
    print(f"month {month}: {metrics['day'].nunique()} days in {time.perf_counter() - tick:.0f} s{left}",
          flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """``python -m evgrid.papers.eva2025 month YYYY-MM [--params FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m evgrid.papers.eva2025",
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
