"""The figures of notebook 02 (EV aggregator in the day-ahead market), one function per file.

Each function takes the data the notebook already holds and returns the
:class:`matplotlib.figure.Figure`; the notebook saves it
(:func:`evgrid.core.outputs.save_figure`) under the name given in each docstring.
The paper prints no figure (its "Case Study and Results" is three headline
numbers), so these are ours; each says which of its claims it shows.

Money is in EUR, power in kW, prices in EUR/MWh on the axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evgrid.papers.eva2025.strategies import STRATEGIES, STRATEGY_LABELS

if TYPE_CHECKING:
    from evgrid.papers.eva2025.inputs import EvaDay
    from evgrid.papers.eva2025.strategies import StrategyResult


def plot_schedules(days: dict[str, EvaDay], results: dict[str, dict[str, StrategyResult]]) -> Figure:
    """The schedule stack of each strategy on each representative day (``figures/02_schedules.png``).

    Section 3's four strategies (:data:`STRATEGIES`) side by side, with the
    day-ahead price: where charging and V2G go against the price.

    Parameters
    ----------
    days : dict
        Row label (``typical``, ``volatile``, ``negative``) -> its
        :class:`EvaDay`: ``day``, ``n_periods``, ``grid_limit_kw`` and
        ``price_eur_per_kwh``.
    results : dict
        Row label -> strategy -> :class:`StrategyResult`: ``schedule`` (``t``,
        ``p_ch_kw``, ``p_dis_kw`` per EV) and ``site_kw`` (site load after
        demand response, kW).

    Returns
    -------
    matplotlib.figure.Figure
        One row per day, one column per strategy; hour (Amsterdam) on x.
        Bars (kW, left axis): site load, EV charging stacked on it, V2G
        discharging below zero; red dotted: the grid limit (kW). Black steps
        (right axis, shared along a row): the day-ahead price (EUR/MWh).
    """
    fig, axes = plt.subplots(len(days), len(STRATEGIES), figsize=(15, 8.5), sharex=True, sharey="row",
                             squeeze=False)
    for i, (label, d) in enumerate(days.items()):
        hours = np.arange(d.n_periods)
        price_axis = None
        for j, s in enumerate(STRATEGIES):
            ax, r = axes[i, j], results[label][s]
            sched = r.schedule.groupby("t")[["p_ch_kw", "p_dis_kw"]].sum().reindex(range(d.n_periods),
                                                                                  fill_value=0)
            ax.bar(hours, r.site_kw, color="tab:gray", label="site load")
            ax.bar(hours, sched["p_ch_kw"], bottom=r.site_kw, color="tab:blue", label="EV charging")
            ax.bar(hours, -sched["p_dis_kw"], color="tab:green", label="V2G discharging")
            ax.axhline(d.grid_limit_kw, color="tab:red", lw=0.8, ls=":")
            ax2 = ax.twinx()
            # One day's price in every column: one price axis per row, labelled at its right end.
            if price_axis is None:
                price_axis = ax2
            else:
                ax2.sharey(price_axis)
            ax2.step(hours, d.price_eur_per_kwh * 1e3, where="mid", color="k", lw=1)
            ax2.tick_params(labelsize=7)
            if j == len(STRATEGIES) - 1:
                ax2.set_ylabel("price (EUR/MWh)", fontsize=8)
            if i == 0:
                ax.set_title(STRATEGY_LABELS[s], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{label} {d.day:%Y-%m-%d}\nkW", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("hour (Amsterdam)")
    fig.suptitle("Price (black) and the schedule stack per strategy on the representative days; red: grid limit")
    fig.tight_layout()
    return fig


def plot_months(overview: pd.DataFrame, *, paper_cost_reduction: float = 0.20) -> Figure:
    """Cost reduction and V2G gain per month of 2024 (``figures/02_months.png``).

    The paper's first claim (operating cost down 20%) month by month, and
    what V2G adds over smart charging.

    Parameters
    ----------
    overview : pandas.DataFrame
        One row per month (:func:`month_overview`): ``month``,
        ``ev_cost_reduction_smart`` and ``ev_cost_reduction_full`` (fractions
        of uncontrolled charging's EV operating cost), ``v2g_net_gain_eur``
        (EUR per month).
    paper_cost_reduction : float
        The paper's operating cost reduction (fraction), a dotted line.

    Returns
    -------
    matplotlib.figure.Figure
        Left: cost reduction (%) per month, strategies 2 and 4. Right: V2G's
        net gain over smart charging (EUR/month).
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    x = np.arange(len(overview))
    axes[0].bar(x - 0.2, overview["ev_cost_reduction_smart"] * 100, 0.4, label="2 smart, no V2G")
    axes[0].bar(x + 0.2, overview["ev_cost_reduction_full"] * 100, 0.4, label="4 V2G + demand response")
    axes[0].axhline(100 * paper_cost_reduction, color="k", ls=":", lw=1,
                    label=f"paper: {100 * paper_cost_reduction:.0f}%")
    axes[0].set_xticks(x, overview["month"], fontsize=8)
    axes[0].set_xlabel("month")
    axes[0].set_ylabel("EV operating cost reduction (%)")
    axes[0].set_title("Against uncontrolled charging, per month of 2024")
    axes[0].legend(fontsize=8)
    axes[1].bar(x, overview["v2g_net_gain_eur"], color="tab:green")
    axes[1].set_xticks(x, overview["month"], fontsize=8)
    axes[1].set_xlabel("month")
    axes[1].set_ylabel("V2G net gain over smart charging (EUR/month)")
    axes[1].set_title("What V2G adds, per month")
    fig.tight_layout()
    return fig


def plot_month_profit(base: pd.DataFrame, month: str) -> Figure:
    """Daily net profit of each strategy over one month (``figures/02_month_profit.png``).

    What each strategy earns, day by day: the spread behind the month's means
    and the paper's revenue claim.

    Parameters
    ----------
    base : pandas.DataFrame
        The month's rows of the base variant: ``day`` (``YYYY-MM-DD``),
        ``strategy`` and ``net_profit_eur`` (EUR per day), one row per day and
        strategy of :data:`STRATEGIES`.
    month : str
        ``YYYY-MM``, for the title and the x label.

    Returns
    -------
    matplotlib.figure.Figure
        Left: box plot of the daily net profit (EUR/day) per strategy. Right:
        each optimised strategy's gain over uncontrolled charging (EUR/day)
        by day of the month.
    """
    strategies = list(STRATEGIES)
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    data = [base.loc[base["strategy"] == s, "net_profit_eur"] for s in strategies]
    axes[0].boxplot(data, tick_labels=[STRATEGY_LABELS[s] for s in strategies])
    axes[0].set_xlabel("strategy")
    axes[0].set_ylabel("net profit per day (EUR)")
    axes[0].set_title(f"Daily net profit, {month}")
    axes[0].tick_params(axis="x", labelsize=8)
    diff = base.pivot(index="day", columns="strategy", values="net_profit_eur")
    for s in strategies[1:]:
        axes[1].plot(pd.to_datetime(diff.index).day, diff[s] - diff["uncontrolled"], marker=".",
                     label=STRATEGY_LABELS[s])
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set_xlabel(f"day of {month}")
    axes[1].set_ylabel("gain over uncontrolled (EUR/day)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_load_heatmap(month_load: pd.DataFrame, month: str, *, grid_limit_kw: float) -> Figure:
    """The site's hourly net import over one month, per strategy (``figures/02_load_heatmap.png``).

    The paper's third claim (reduced peak demand fluctuations), which a
    price-taking aggregator does not bear out.

    Parameters
    ----------
    month_load : pandas.DataFrame
        ``day``, ``strategy``, ``hour`` and ``net_kw`` (site plus EVs, kW;
        negative: export), as in ``results/eva2025/months/YYYY-MM_load.csv``.
    month : str
        ``YYYY-MM``, for the y label.
    grid_limit_kw : float
        The colour scale runs from ``-grid_limit_kw`` to ``grid_limit_kw`` (kW).

    Returns
    -------
    matplotlib.figure.Figure
        Strategies 1, 3 and 4 side by side; hour (Amsterdam) on x, day of the
        month on y, net import (kW) in colour. Save it with
        ``bbox_inches="tight"``: the colour bar is placed outside the grid.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, s in zip(axes, ["uncontrolled", "v2g", "v2g_dr"], strict=True):
        grid = month_load[month_load["strategy"] == s].pivot(index="day", columns="hour", values="net_kw")
        im = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-grid_limit_kw, vmax=grid_limit_kw,
                       extent=[-0.5, grid.shape[1] - 0.5, grid.shape[0] + 0.5, 0.5])
        ax.set_title(STRATEGY_LABELS[s], fontsize=10)
        ax.set_xlabel("hour (Amsterdam)")
    axes[0].set_ylabel(f"day of {month}")
    fig.colorbar(im, ax=axes, label="site net import (kW)")
    fig.suptitle("Hourly aggregate load (site + EVs; blue: export)")
    return fig
