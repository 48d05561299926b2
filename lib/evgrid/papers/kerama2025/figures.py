"""The figures of notebook 01 (Kerama 2025), one function per file under ``figures/``.

Each function takes the data the notebook already holds and returns the
:class:`matplotlib.figure.Figure`; the notebook saves it
(:func:`evgrid.core.outputs.save_figure`) under the name given in each docstring.
Figures 3 and 4 reproduce the paper's; the others are ours, behind Table 2
and the pessimistic solution (the paper has none like them).

Money is in $ (the paper's unit), power in kW, voltage in pu.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from evgrid.papers.kerama2025.case import KeramaCase
    from evgrid.papers.kerama2025.evaluate import Metrics

#: The colour of each evaluated schedule (the keys of the notebook's ``evaluated``).
SCHEDULE_COLORS = {
    "Uncontrolled, same energy": "tab:gray",
    "Followers alone": "tab:orange",
    "Bilevel, optimistic": "tab:blue",
    "Worst tie": "tab:red",
}

#: Figure 3's bars, left to right: schedule -> tick label.
FIG3_SCHEDULES = {
    "Uncontrolled, same energy": "uncontrolled\n(same energy)",
    "Followers alone": "followers\nalone",
    "Bilevel, optimistic": "bilevel\noptimistic",
    "Worst tie": "worst\ntie",
}

#: The unit of each Table 2 row, Figure 3's y axes.
TABLE2_UNITS = {
    "Peak feeder load": "kW",
    "System energy cost": "$ per day",
    "Worst-case constraint violations": "bus-hours (voltage)",
    "Aggregator profit": "$ per day",
}

#: Figure 4's spokes: label -> Table 3 column.
RADAR_SPOKES = {
    "peak load": "Peak feeder load",
    "energy cost": "System energy cost",
    "|profit|": "Aggregator profit",
    "violations + 1": "Worst-case constraint violations",
}


def plot_benders_trace(trace: pd.DataFrame, high_point_bound: float) -> Figure:
    """Benders' lower and upper bounds per iteration (``figures/01_benders_trace.png``).

    Not a figure of the paper (which does not decompose); it shows what the
    gap of the notebook's solve certifies.

    Parameters
    ----------
    trace : pandas.DataFrame
        ``iteration``, ``lower_bound``, ``upper_bound`` ($), one row per
        Benders iteration (:attr:`BendersResult.trace`).
    high_point_bound : float
        The sum of the scenarios' high-point relaxations ($), drawn as
        iteration 0.

    Returns
    -------
    matplotlib.figure.Figure
        Iteration on x, expected cost plus peak penalty ($) on y.
    """
    start = pd.DataFrame({"iteration": [0], "lower_bound": [high_point_bound], "upper_bound": [np.nan]})
    trace = pd.concat([start, trace[["iteration", "lower_bound", "upper_bound"]]])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.step(trace["iteration"], trace["lower_bound"], where="post", marker="o", label="lower bound (master)")
    ax.step(trace["iteration"], trace["upper_bound"], where="post", marker="s", label="upper bound (best caps)")
    ax.set_xlabel("Benders iteration (0: high-point relaxation)")
    ax.set_ylabel("expected cost + peak penalty ($)")
    ax.set_title("Benders bounds")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_fig3_baseline_vs_proposed(table2: pd.DataFrame) -> Figure:
    """Figure 3 of Kerama (2025): Table 2 per schedule, with the paper's values.

    Written to ``figures/01_fig3_baseline_vs_proposed.png``. One panel per
    Table 2 row, one bar per schedule of :data:`FIG3_SCHEDULES`; open diamonds
    are the paper's baseline and proposed values.

    Parameters
    ----------
    table2 : pandas.DataFrame
        Indexed by Table 2's rows (the keys of :data:`TABLE2_UNITS`): peak
        feeder load (kW, expected), system energy cost ($ per day), worst-case
        constraint violations (count) and aggregator profit ($ per day). One
        column per schedule (at least those of :data:`FIG3_SCHEDULES`), plus
        ``paper baseline`` and ``paper proposed`` (NaN where the paper has none).

    Returns
    -------
    matplotlib.figure.Figure
        Four panels side by side, each in its row's unit.
    """
    shown = list(FIG3_SCHEDULES)
    x = np.arange(len(shown))
    fig, axes = plt.subplots(1, len(table2), figsize=(14, 3.4), squeeze=False)
    for ax, (row, values) in zip(axes[0], table2.iterrows(), strict=True):
        ax.bar(x, values[shown].to_numpy(dtype=float), 0.6, color=[SCHEDULE_COLORS[n] for n in shown],
               label="computed")
        ax.scatter([0, 2], [values["paper baseline"], values["paper proposed"]], marker="D",
                   facecolor="none", edgecolor="k", zorder=3, label="paper (baseline, proposed)")
        ax.set_xticks(x, list(FIG3_SCHEDULES.values()), fontsize=7)
        ax.set_xlabel("schedule", fontsize=8)
        ax.set_ylabel(TABLE2_UNITS[row])
        ax.set_title(row, fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Figure 3 · where the peak reduction comes from (open diamonds: the paper's values)")
    fig.tight_layout()
    return fig


def plot_pessimistic_caps(
    pessimistic: pd.DataFrame,
    *,
    optimistic_peak_kw: float,
    uncontrolled_peak_kw: float,
    chosen_cap_kw: float,
) -> Figure:
    """The worst tie's peak at each uniform off-peak cap (``figures/01_pessimistic_caps.png``).

    Not a figure of the paper, which solves only the optimistic bilevel problem.

    Parameters
    ----------
    pessimistic : pandas.DataFrame
        One row per cap level (``results/kerama2025/pessimistic.csv``) with
        ``cap_kw`` (kW per aggregator), ``servable``, ``guaranteed`` and
        ``worst_tie_peak_kw`` (kW, expected).
    optimistic_peak_kw, uncontrolled_peak_kw : float
        Expected peak import (kW) of the optimistic bilevel schedule and of
        uncontrolled charging with the same energy, drawn as horizontal lines.
    chosen_cap_kw : float
        The pessimistic solution's cap (kW), drawn as a vertical line.

    Returns
    -------
    matplotlib.figure.Figure
        Cap (kW) on x, expected peak import (kW) on y; the legend outside, right.
    """
    fig, ax = plt.subplots(figsize=(9, 3.6))
    serv = pessimistic[pessimistic["servable"]]
    ax.plot(serv["cap_kw"], serv["worst_tie_peak_kw"], marker="o", color="tab:red",
            label="worst tie, expected peak")
    bad = serv[~serv["guaranteed"]]
    ax.scatter(bad["cap_kw"], bad["worst_tie_peak_kw"], s=90, facecolors="none", edgecolors="k",
               label="limits not guaranteed")
    ax.axhline(optimistic_peak_kw, color="tab:blue", ls="--", label="optimistic bilevel")
    ax.axhline(uncontrolled_peak_kw, color="tab:gray", ls=":", label="uncontrolled, same energy")
    ax.axvline(chosen_cap_kw, color="tab:green", lw=1, label="pessimistic solution")
    ax.set_xlabel("off-peak import cap per aggregator (kW)")
    ax.set_ylabel("expected peak import (kW)")
    ax.set_title("Pessimistic DSO: worst tie at each uniform off-peak cap")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _hour_labels(case: KeramaCase) -> list[str]:
    return [f"{h:02d}" for h in case.clock_hour]


def plot_feeder_load_profiles(case: KeramaCase, schedules: dict[str, Metrics]) -> Figure:
    """Hourly substation import of each schedule, and the price (``figures/01_feeder_load_profiles.png``).

    Not a figure of the paper; it shows the hours behind Table 2's peak.

    Parameters
    ----------
    case : KeramaCase
        The instance: its ``scenarios``, ``clock_hour`` and ``price_usd_per_kwh``.
    schedules : dict
        Schedule name (a key of :data:`SCHEDULE_COLORS`) -> its :class:`Metrics`;
        the import (kW) of the forecast realisation is read from ``series``.

    Returns
    -------
    matplotlib.figure.Figure
        Clock hour on x; substation import (kW) on the left, the median over
        the scenarios and the band between the lowest and highest; the
        time-of-use price ($/kWh) on the right.
    """
    hours = _hour_labels(case)
    periods = range(len(hours))
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for name, m in schedules.items():
        color = SCHEDULE_COLORS[name]
        load = pd.DataFrame({s: m.series[s, "forecast"].import_kw.to_numpy() for s in case.scenarios})
        ax.fill_between(periods, load.min(axis=1), load.max(axis=1), color=color, alpha=0.25)
        ax.plot(periods, load.median(axis=1), color=color,
                label=f"{name.lower()} (median, band: scenarios)")
    ax2 = ax.twinx()
    ax2.step(periods, case.price_usd_per_kwh, where="mid", color="tab:red", lw=1, ls="--")
    ax2.set_ylabel("price ($/kWh)", color="tab:red")
    ax.set_xticks(range(0, len(hours), 2), hours[::2])
    ax.set_xlabel("clock hour")
    ax.set_ylabel("substation import (kW)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Hourly feeder load")
    fig.tight_layout()
    return fig


def plot_soc_envelopes(
    soc: pd.DataFrame,
    *,
    aggregator_buses: Sequence[int],
    soc_required: float,
    clock_hour: Sequence[int],
) -> Figure:
    """State of charge of each aggregator's plugged-in EVs (``figures/01_soc_envelopes.png``).

    Not a figure of the paper; it shows Eqs. (11)-(15) at work in the
    optimistic bilevel schedule.

    Parameters
    ----------
    soc : pandas.DataFrame
        ``aggregator`` (0-based), ``t`` (period) and ``soc`` (fraction of the
        battery), one row per plugged-in EV, period and scenario.
    aggregator_buses : sequence of int
        Aggregator ``a`` sits at bus ``aggregator_buses[a]`` (Baran & Wu numbers).
    soc_required : float
        The state of charge each EV must reach by departure, a dotted line.
    clock_hour : sequence of int
        The clock hour of each period.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per aggregator, sharing the state-of-charge axis (fraction);
        clock hour on x. Band: every EV and scenario; line: their mean.
    """
    hours = [f"{h:02d}" for h in clock_hour]
    fig, axes = plt.subplots(1, len(aggregator_buses), figsize=(14, 3), sharey=True, squeeze=False)
    for a, (ax, bus) in enumerate(zip(axes[0], aggregator_buses, strict=True)):
        g = soc[soc["aggregator"] == a].groupby("t")["soc"]
        t = g.mean().index
        ax.fill_between(t, g.min(), g.max(), alpha=0.3, label="all EVs, all scenarios")
        ax.plot(t, g.mean(), label="mean")
        ax.axhline(soc_required, color="k", ls=":", lw=1)
        ax.set_title(f"aggregator {a + 1} (bus {bus})", fontsize=9)
        ax.set_xticks(range(0, len(hours), 6), hours[::6])
        ax.set_xlabel("clock hour", fontsize=8)
    axes[0, 0].set_ylabel("state of charge")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("SOC envelope per aggregator (plugged-in EVs)")
    fig.tight_layout()
    return fig


def plot_worst_hour_voltage(
    case: KeramaCase,
    schedules: dict[str, Metrics],
    *,
    scenario: int,
    period: int,
    vmin_pu: float,
    vmax_pu: float,
) -> Figure:
    """AC voltage along the feeder at one scenario and hour (``figures/01_worst_hour_voltage.png``).

    Not a figure of the paper; it shows where Table 2's worst-case voltage
    violations occur.

    Parameters
    ----------
    case : KeramaCase
        The instance: its network's bus names and branches, and ``clock_hour``.
    schedules : dict
        Schedule name (a key of :data:`SCHEDULE_COLORS`) -> its :class:`Metrics`;
        voltages are read from ``series`` for the forecast (solid) and the
        low-voltage worst case (dashed).
    scenario, period : int
        Which scenario and period to draw (the notebook picks the lowest voltage).
    vmin_pu, vmax_pu : float
        Voltage limits (pu), red lines.

    Returns
    -------
    matplotlib.figure.Figure
        Bus on x, |V| (pu) on y; each branch of the feeder is a line segment,
        so laterals do not join the main line.
    """
    names = case.network.buses["name"].astype(str).tolist()
    edges = case.network.branches[["from_bus", "to_bus"]].to_numpy()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for name, m in schedules.items():
        color = SCHEDULE_COLORS[name]
        for real, ls in (("forecast", "-"), ("low_voltage", "--")):
            vm = m.series[scenario, real].vm_pu[period].to_numpy()
            for f, t in edges:  # draw the feeder's branches, so laterals do not join the main line
                ax.plot([f, t], [vm[f], vm[t]], ls, color=color, lw=1)
            ax.plot(range(len(vm)), vm, ls, color=color, marker=".", lw=0,
                    label=f"{name.lower()}, {real.replace('_', ' ')}")
    ax.set_xticks(range(len(names)), names)
    for lim in (vmin_pu, vmax_pu):
        ax.axhline(lim, color="tab:red", lw=0.8)
    ax.set_xlabel("bus (lines: the feeder's branches)")
    ax.set_ylabel("|V| (pu, AC)")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"Voltage profile at the worst hour: {case.clock_hour[period]:02d}:00, scenario {scenario}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_fig4_budget_radar(table3: pd.DataFrame) -> Figure:
    """Figure 4 of Kerama (2025): Table 3's budget sensitivity as radars.

    Written to ``figures/01_fig4_budget_radar.png``: the computed values
    left, the paper's right.

    Parameters
    ----------
    table3 : pandas.DataFrame
        Table 3 in long form (:func:`evgrid.core.compare.compare_with_paper`'s
        output): ``row`` (one budget Γ), ``column`` (a Table 2 metric, the
        values of :data:`RADAR_SPOKES`), ``computed`` and ``paper``. Units:
        kW, $ per day, count, $ per day.

    Returns
    -------
    matplotlib.figure.Figure
        Two polar panels; one spoke per metric, its absolute value (violations
        plus one) divided by its largest over Γ (dimensionless, 0-1); one line
        per Γ.
    """
    angles = np.linspace(0, 2 * np.pi, len(RADAR_SPOKES), endpoint=False).tolist()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), subplot_kw={"polar": True})
    for ax, source in zip(axes, ("computed", "paper"), strict=True):
        t3 = table3.pivot(index="row", columns="column", values=source)
        t3 = t3.abs() + t3.columns.isin(["Worst-case constraint violations"])  # violations + 1
        t3 = t3 / t3.max()
        for label, row in t3.iterrows():
            vals = [row[col] for col in RADAR_SPOKES.values()]
            ax.plot(angles + angles[:1], vals + vals[:1], marker="o", label=label)
        ax.set_xticks(angles, list(RADAR_SPOKES), fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_rlabel_position(225)
        ax.set_title(f"{source}", fontsize=10, pad=14)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0))
    fig.suptitle("Figure 4 · budget sensitivity, each metric divided by its largest value over Γ")
    fig.tight_layout()
    return fig
