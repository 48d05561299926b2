"""The figures of notebook 03 (Priolkar & Kunkolienkar 2025), one function per file.

Each function takes the data the notebook already holds and returns the
:class:`matplotlib.figure.Figure`; the notebook saves it
(:func:`evgrid.core.outputs.save_figure`) under the name given in each
docstring. Figs. 1-4 of the paper are not in the available text, only the
numbers it quotes from them; these figures show the same quantities from the
solved models, with the quoted numbers marked where there are any.

Prices in $/kWh, power in kW, waits in hours, on the axes; the x axis of a
daily profile is the clock hour of the 08:00-08:00 horizon.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evgrid.papers.priolkar2025.report import WAIT_BINS, wait_counts

__all__ = [
    "METHOD_LABELS",
    "plot_calibration",
    "plot_convergence",
    "plot_load_profiles",
    "plot_prices",
    "plot_table9_gaps",
    "plot_wait_histogram",
]

#: How the result files' method names read on a figure.
METHOD_LABELS = {
    "eho": "EHO (paper's operator)",
    "eho_box": "EHO (box frame)",
    "random": "random search",
    "de": "differential evolution",
}

def _hour_axis(ax, clock_hour: np.ndarray) -> None:
    ticks = np.arange(0, len(clock_hour), 2)
    ax.set_xticks(ticks, [f"{int(clock_hour[t]):02d}" for t in ticks])
    ax.set_xlabel("clock hour (horizon 08:00 to 08:00)")
    ax.set_xlim(-0.5, len(clock_hour) - 0.5)


def plot_prices(clock_hour: np.ndarray, bp: np.ndarray, dps: Mapping[str, np.ndarray],
                dr_factor: tuple[float, float] = (0.8, 2.0)) -> Figure:
    """Fig. 1: DR prices against the base price (``figures/03_fig1_prices.png``).

    Parameters
    ----------
    clock_hour : array
        Clock hour of each period, in horizon order.
    bp : array
        Base price per period ($/kWh).
    dps : dict
        Label -> DR price per period ($/kWh), e.g. the exact optimum's and an EHO run's.
    dr_factor : tuple
        Table 1's bounds of DP / BP: shaded.

    Returns
    -------
    matplotlib.figure.Figure
        Steps per period: BP (black), each DR price (colours), the allowed band (grey).
    """
    fig, ax = plt.subplots(figsize=(9, 4))
    t = np.arange(len(bp))
    ax.fill_between(t, dr_factor[0] * bp, dr_factor[1] * bp, step="mid", color="0.9",
                    label=f"allowed DR price ({dr_factor[0]:g}-{dr_factor[1]:g} x BP, Table 1)")
    ax.step(t, bp, where="mid", color="black", lw=2, label="base price BP")
    for label, dp in dps.items():
        ax.step(t, dp, where="mid", lw=1.5, label=label)
    _hour_axis(ax, clock_hour)
    ax.set_ylabel("price ($/kWh)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("DR prices set by the aggregator")
    fig.tight_layout()
    return fig


def plot_load_profiles(clock_hour: np.ndarray, loads: Mapping[str, np.ndarray],
                       paper_peaks_kw: Mapping[str, float] | None = None) -> Figure:
    """Fig. 2: the hourly load of each schedule (``figures/03_fig2_load_profiles.png``).

    Parameters
    ----------
    clock_hour : array
        Clock hour of each period, in horizon order.
    loads : dict
        Label -> load per period (kW): uncontrolled, EHO, exact, centralised.
    paper_peaks_kw : dict, optional
        Label -> a peak the paper reports (kW), drawn as a dotted line.

    Returns
    -------
    matplotlib.figure.Figure
        One step line per schedule; the paper's peaks as dotted lines.
    """
    fig, ax = plt.subplots(figsize=(9, 4))
    t = np.arange(len(clock_hour))
    for label, load in loads.items():
        ax.step(t, load, where="mid", lw=1.6, label=f"{label} (peak {np.max(load):.0f} kW)")
    for label, peak in (paper_peaks_kw or {}).items():
        ax.axhline(peak, ls=":", color="0.4", lw=1)
        ax.annotate(f"paper: {label} {peak:g} kW", (0, peak), xytext=(2, 2), textcoords="offset points",
                    fontsize=7, color="0.3")
    _hour_axis(ax, clock_hour)
    ax.set_ylabel("load of the stations (kW)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Hourly load: uncontrolled, price-induced and centralised")
    fig.tight_layout()
    return fig


def plot_wait_histogram(waits: Mapping[str, np.ndarray], paper_counts: np.ndarray | None = None) -> Figure:
    """Fig. 3: EVs by wait (``figures/03_fig3_wait_histogram.png``).

    Parameters
    ----------
    waits : dict
        Label -> per-EV wait (h).
    paper_counts : array, optional
        The paper's EVs per bin of :data:`evgrid.papers.priolkar2025.report.WAIT_BINS` (Fig. 3 as its text quotes it).

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars, one group per bin, one bar per schedule (and the paper's).
    """
    series = {label: wait_counts(w) for label, w in waits.items()}
    if paper_counts is not None:
        series["paper (Fig. 3 text)"] = np.asarray(paper_counts)
    names = list(WAIT_BINS)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for j, (label, counts) in enumerate(series.items()):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, counts, width, label=label,
               color="0.5" if label.startswith("paper") else None)
    ax.set_xticks(x, names)
    ax.set_xlabel("wait (energy-weighted delay against charging at once)")
    ax.set_ylabel("EVs")
    ax.legend(fontsize=8)
    ax.set_title("Waiting time of the EV users")
    fig.tight_layout()
    return fig


def plot_convergence(conv: pd.DataFrame, optimum: float | None = None, bound: float | None = None) -> Figure:
    """Fig. 4: best F4 so far against evaluations, spread over seeds (``figures/03_fig4_convergence.png``).

    Parameters
    ----------
    conv : DataFrame
        ``<row>_convergence.csv``: ``method``, ``evaluations``, ``f4_median``,
        ``f4_q25``, ``f4_q75``, ``f4_min``, ``f4_max``, ``runs``.
    optimum, bound : float, optional
        The exact optimum's F4 (its incumbent) and its proven upper bound.

    Returns
    -------
    matplotlib.figure.Figure
        Median per method with the interquartile band; the optimum as a line.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method, part in conv.groupby("method", sort=False):
        label = METHOD_LABELS.get(method, method)
        line, = ax.plot(part["evaluations"], part["f4_median"], lw=1.8,
                        label=f"{label}: median of {int(part['runs'].iloc[0])} seeds")
        ax.fill_between(part["evaluations"], part["f4_q25"], part["f4_q75"], color=line.get_color(), alpha=0.2)
    if optimum is not None:
        ax.axhline(optimum, color="black", lw=1.5, label=f"exact optimum ({optimum:.3f})")
    if bound is not None and optimum is not None and bound - optimum > 1e-6 * max(1.0, abs(optimum)):
        ax.axhline(bound, color="black", lw=1, ls="--", label=f"proven upper bound ({bound:.3f})")
    ax.set_xlabel("lower-level solves (fitness evaluations)")
    ax.set_ylabel("best F4 so far (normalised, Eq. 9)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Convergence, with the spread over seeds (band: quartiles)")
    fig.tight_layout()
    return fig


def plot_calibration(curve: pd.DataFrame, target_h: float, chosen: float) -> Figure:
    """The calibration of epsilon (``figures/03_epsilon_calibration.png``).

    Parameters
    ----------
    curve : DataFrame
        :func:`evgrid.papers.priolkar2025.calibrate.wait_curve`'s table.
    target_h : float
        The paper's optimised mean wait (h).
    chosen : float
        The epsilon in ``params.yaml`` ($/h).

    Returns
    -------
    matplotlib.figure.Figure
        Median optimised mean wait against epsilon, with quartiles; the target and the value chosen.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4))
    e = curve["epsilon_usd_per_h"]
    ax.fill_between(e, curve["wait_q25_h"], curve["wait_q75_h"], alpha=0.2, label="quartiles over seeds")
    ax.plot(e, curve["wait_median_h"], "o-", label="median over seeds")
    ax.axhline(target_h, color="black", ls="--", lw=1, label=f"paper's mean wait {target_h:g} h (Table 4)")
    ax.axvline(chosen, color="C3", lw=1, label=f"params.yaml: {chosen:g} $/h")
    ax.set_xlabel("epsilon, value of an hour of waiting ($/h)")
    ax.set_ylabel("mean wait after EHO (h)")
    ax.legend(fontsize=8)
    ax.set_title("Calibrating epsilon (Eq. 12) to the paper's mean wait")
    fig.tight_layout()
    return fig


def plot_table9_gaps(summary: pd.DataFrame) -> Figure:
    """Each heuristic's F4 against the exact optimum, per Table 9 row (``figures/03_table9_gaps.png``).

    Parameters
    ----------
    summary : DataFrame
        One line per row and method: ``row``, ``method``, ``f4_median``,
        ``f4_q25``, ``f4_q75``; and one per row with ``method == "exact"``
        holding the optimum's incumbent in ``f4_median`` and, where it was not
        proven, its upper bound in ``upper_bound``.

    Returns
    -------
    matplotlib.figure.Figure
        Per row, the median F4 of each method (error bars: quartiles) beside the optimum (black; its
        whisker reaches the proven upper bound where the MILP stopped at its time limit).
    """
    rows = list(dict.fromkeys(summary["row"]))
    methods = [m for m in dict.fromkeys(summary["method"]) if m != "exact"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    x = np.arange(len(rows))
    width = 0.8 / (len(methods) + 1)
    for j, method in enumerate([*methods, "exact"]):
        part = summary[summary["method"] == method].set_index("row").reindex(rows)
        pos = x + (j - len(methods) / 2) * width
        if method == "exact":
            above = (part["upper_bound"] - part["f4_median"]).clip(lower=0).fillna(0) if "upper_bound" in part \
                else np.zeros(len(part))
            ax.bar(pos, part["f4_median"], width, color="black", label="exact optimum (bar: incumbent, "
                   "whisker: proven bound)", yerr=np.vstack([np.zeros(len(part)), above]), capsize=3,
                   error_kw={"ecolor": "0.4"})
            continue
        err = np.vstack([part["f4_median"] - part["f4_q25"], part["f4_q75"] - part["f4_median"]])
        ax.bar(pos, part["f4_median"], width, yerr=err, capsize=2, label=METHOD_LABELS.get(method, method))
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(x, [r.replace("-normalised", "\n(normalised)").replace("-", ":") for r in rows], fontsize=8)
    ax.set_xlabel("Table 9 weights alpha_1 : alpha_2 : alpha_3")
    ax.set_ylabel("F4 (normalised, Eq. 9)")
    ax.legend(fontsize=8, ncols=3)
    ax.set_title("Heuristics (median over seeds) against the true optimum")
    fig.tight_layout()
    return fig
