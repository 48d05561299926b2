"""The figures of notebooks 04 and 05 (Villanueva-Machado et al. 2025, parts 1 and 2), one function per figure.

Each function takes the data the notebook already holds (arrays, DataFrames,
:class:`~evgrid.papers.villanueva2025.mcs.McsScenario` objects) and returns the
:class:`matplotlib.figure.Figure`; none reads a result file. The notebook saves
each one (:func:`evgrid.core.outputs.save_figure`).

* :func:`plot_time_distributions`, :func:`plot_speed_by_hour`: Fig. 4(b)-(d) of the paper, the
  Monte Carlo's inputs, beside what the authors' code actually sampled from;
* :func:`plot_sample_energy`, :func:`plot_bus_counts`: the Monte Carlo's outputs against the
  authors' chosen samples and Table 1;
* :func:`plot_daily_energy`, :func:`plot_profiles`, :func:`plot_gaps`: the per-bus MILPs
  (Tables 2 and 4, Figs. 6 and 8) and how well each was solved.

Part 2 (notebook 05, the centralized AC OPF), from the study's ``days.csv`` and ``caps.csv``
(:func:`.opf_study.read_study`):

* :func:`plot_system_load`: Fig. 6, the system load over the day per scenario and sample;
* :func:`plot_opf_day`: Fig. 7(a), the OPF's generation, load and NSP over the day of chosen cases;
* :func:`plot_caps`: Fig. 7(b), the DNO's caps per bus over the day, ours against the authors';
* :func:`plot_nsp`: the non-supplied power per period of every case that has any.

The distribution analysis, from ``feeder13/envelopes.csv`` (:mod:`.feeder13`):

* :func:`plot_feeder_voltages`: Fig. 9, the per-phase voltage envelopes at the IEEE 13-node
  feeder's far buses over the synthetic days of each dataset, against the +-5 % band.

Paper values come in as the frame of :func:`evgrid.core.compare.load_paper_values` (columns
``table``, ``row``, ``column``, ``value``; rows ``"Bus 2"``, columns such as
``"Scenario 1 min Dep"`` or ``"Scenario 3 CR max"``), never typed in here.

Clock time: half-hour slot ``k`` (1-based, the authors' "slot code") covers
``[(k-1)/2, k/2)`` h; codes 49-56 are 00:00-04:00 of the next day, drawn at 24-28 h.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evgrid.papers.villanueva2025.authors import SAMPLES, SCENARIOS
from evgrid.papers.villanueva2025.mcs import McsScenario, bus_counts

__all__ = [
    "SCHEDULE_LABELS",
    "mcs_table1",
    "PROFILE_LABELS",
    "plot_bus_counts",
    "plot_caps",
    "plot_caps_response",
    "plot_daily_energy",
    "plot_feeder_voltages",
    "plot_gaps",
    "plot_nsp",
    "plot_opf_day",
    "plot_profiles",
    "plot_sample_energy",
    "plot_speed_by_hour",
    "plot_system_load",
    "plot_time_distributions",
]

#: How the Monte Carlo's modes read on a figure.
SCHEDULE_LABELS = {
    "authors": "authors' code (quarter-hour schedule read per half hour)",
    "as_described": "as described (workbook's quarter-hour schedule)",
}
#: How the OPF study's profile sets (``days.csv``'s ``profiles``) read on a figure.
PROFILE_LABELS = {
    "none": "no EVs",
    "authors_paper": "authors' profiles",
    "authors_resolved": "authors' inputs, re-solved",
    "own": "our Monte Carlo",
}
_BUS_LABEL = "load bus (IEEE 14-bus number)"
_CLOCK_LABEL = "clock time (h)"
_SLOT_H = 0.5


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _hhmm(hours: float) -> str:
    minutes = int(round(hours * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _normal_pdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def _slot_to_clock_h(code: np.ndarray | float) -> np.ndarray | float:
    """Slot code -> clock hour as the workbook labels it (code 17 -> 8.0 h): ``(code - 1) / 2``."""
    return (np.asarray(code, dtype=float) - 1.0) * _SLOT_H


def _hour_ticks(ax: Axes, end_h: int, step_h: int) -> None:
    ax.set_xlim(0, end_h)
    ax.set_xticks(np.arange(0, end_h + 1, step_h))


def _scenario_order(names) -> list:
    known = [s for s in SCENARIOS if s in set(names)]
    return known + sorted({n for n in names if n not in SCENARIOS}, key=str)


_PAPER_COLUMN = re.compile(r"Scenario (\d)( CR)? (min|max)(?: (Dep|Arr))?$")


def _paper_tidy(paper: pd.DataFrame) -> pd.DataFrame:
    """The loader's rows (``row`` ``"Bus k"``, ``column`` ``"Scenario 3 CR min"``) as ``scenario, sample, bus, kind, value``.

    ``scenario`` is named as in the authors' runs (``"Sc1"``, ``"Sc3-CR"``); ``kind`` is
    ``"Dep"``/``"Arr"`` for Table 1 and empty otherwise. Rows that are not per bus are dropped.
    """
    rows = []
    for row, column, value in zip(paper["row"], paper["column"], paper["value"], strict=True):
        bus = re.fullmatch(r"Bus (\d+)", str(row).strip())
        match = _PAPER_COLUMN.match(str(column).strip())
        if bus is None or match is None:
            continue
        number, cr, sample, kind = match.groups()
        rows.append({"scenario": f"Sc{number}{'-CR' if cr else ''}", "sample": sample, "bus": int(bus.group(1)),
                     "kind": kind or "", "value": float(value)})
    return pd.DataFrame(rows, columns=["scenario", "sample", "bus", "kind", "value"])


def _table1_tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1, wide (index bus, columns ``"Scenario 1 min Dep"``...) or the loader's long rows, made tidy."""
    if {"row", "column", "value"} <= set(table.columns):
        return _paper_tidy(table[table["table"] == "Table 1"] if "table" in table.columns else table)
    long = table.rename_axis("bus").reset_index().melt(id_vars="bus", var_name="column", value_name="value")
    long["row"] = "Bus " + long["bus"].astype(int).astype(str)
    return _paper_tidy(long)


def mcs_table1(scenarios: Mapping[int, McsScenario]) -> pd.DataFrame:
    """Our Table 1 in the layout of :func:`.dataset.table1_from_assignment`, for :func:`plot_bus_counts`.

    Parameters
    ----------
    scenarios : dict
        Scenario number -> :class:`McsScenario` (:func:`.mcs.run_mcs`).

    Returns
    -------
    pandas.DataFrame
        Index ``bus``; columns ``"Scenario {s} {min,max} {Dep,Arr}"``: weighted EVs of the chosen
        samples by home (Dep) and work (Arr) bus (:func:`.mcs.bus_counts`).
    """
    columns = {}
    for number, scenario in sorted(scenarios.items()):
        for sample in SAMPLES:
            counts = bus_counts(scenario, sample)
            columns[f"Scenario {number} {sample} Dep"] = counts["dep_evs"]
            columns[f"Scenario {number} {sample} Arr"] = counts["arr_evs"]
    return pd.DataFrame(columns).rename_axis("bus")


# --------------------------------------------------------------------------------------------
# Monte Carlo inputs: Fig. 4(b)-(d)
# --------------------------------------------------------------------------------------------


def plot_time_distributions(
    histograms: pd.DataFrame,
    fitted: Mapping[str, tuple[float, float]],
    paper_normals: Mapping[str, tuple[float, float]],
    simulated: McsScenario | Mapping[str, np.ndarray] | None = None,
) -> Figure:
    """Fig. 4(b): departure and arrival times, workbook vs fitted vs stated vs drawn.

    Parameters
    ----------
    histograms : DataFrame
        :func:`.dataset.time_histograms`: index ``slot_code`` 1..56, columns ``departures`` and
        ``arrivals`` (counts).
    fitted : dict
        :func:`.dataset.fit_time_normals`: ``{"departure": (mean, sd), "arrival": ...}`` in slot codes.
    paper_normals : dict
        The paper's stated normals (Sec. 2.3), ``{"departure": (mean_h, sd_h), "arrival": ...}`` in hours.
    simulated : McsScenario or dict, optional
        Our Monte Carlo's times: an object with ``dep_slot`` and ``arr_slot`` (1-based slots), or
        ``{"departure": slots, "arrival": slots}`` of equal shape. An arrival slot before its
        vehicle's departure slot is the next morning and is drawn at slot + 48.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (departure, arrival), densities per hour over 0-28 h.

    Notes
    -----
    The workbook labels each count with the start of its half hour (code 17 = 08:00), and both the
    authors' fit and the paper's stated means read that label as the time (mean code 17.07 =
    08:02), so a code ``k`` is drawn at ``(k - 1) / 2`` h, its bar centred there; the drawn slots
    of our Monte Carlo likewise.
    """
    if simulated is not None and not isinstance(simulated, Mapping):
        simulated = {"departure": simulated.dep_slot, "arrival": simulated.arr_slot}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True, layout="constrained")
    clock = _slot_to_clock_h(histograms.index.to_numpy())
    grid = np.linspace(0.0, 28.0, 561)
    edges = np.arange(-0.25, 28.26, _SLOT_H)
    for ax, key, column in zip(axes, ("departure", "arrival"), ("departures", "arrivals"), strict=True):
        counts = histograms[column].to_numpy(dtype=float)
        ax.bar(clock, counts / (counts.sum() * _SLOT_H), width=_SLOT_H, color="0.82", edgecolor="0.6", lw=0.5,
               label="authors' workbook (histogram)")
        mean_code, sd_code = fitted[key]
        mean_h, sd_h = float(_slot_to_clock_h(mean_code)), sd_code * _SLOT_H
        ax.plot(grid, _normal_pdf(grid, mean_h, sd_h), color="C0", lw=2,
                label=f"fitted by the authors' code: N({_hhmm(mean_h)}, {_hhmm(sd_h)})")
        p_mean, p_sd = paper_normals[key]
        ax.plot(grid, _normal_pdf(grid, p_mean, p_sd), color="C3", lw=1.6, ls="--",
                label=f"paper, Sec. 2.3: N({_hhmm(p_mean)}, {_hhmm(p_sd)})")
        if simulated is not None:
            dep = np.asarray(simulated["departure"], dtype=float).ravel()
            slots = dep if key == "departure" else np.asarray(simulated["arrival"], dtype=float).ravel()
            if key == "arrival":
                slots = np.where(slots < dep, slots + 48, slots)
            density, _ = np.histogram(_slot_to_clock_h(slots), bins=edges, density=True)
            ax.stairs(density, edges, color="C2", lw=1.4, label=f"our Monte Carlo ({slots.size:,} draws)")
        _hour_ticks(ax, 28, 4)
        ax.set_xlabel(f"{_CLOCK_LABEL}; above 24: next day")
        ax.set_ylabel("probability density (1/h)")
        ax.set_title(f"{key.capitalize()} time")
        ax.legend(fontsize=7, loc="upper left" if key == "arrival" else "upper right")
        ax.grid(alpha=0.3)
    fig.suptitle("Departure and arrival times of the EVs (Fig. 4b)")
    return fig


def plot_speed_by_hour(
    schedules: Mapping[str, np.ndarray],
    classes: Mapping[str, tuple[float, float]] | Mapping[str, Mapping[str, tuple[float, float]]],
) -> Figure:
    """Fig. 4(c): the traffic speed over the day, per schedule.

    Parameters
    ----------
    schedules : dict
        Name (``"authors"``, ``"as_described"`` or any label) -> either class labels
        (``"HS"``/``"MS"``/``"LS"``, 48 half hours or 96 quarter hours, e.g.
        ``McsOptions(mode=...).resolved()["schedule"]``), or speeds (km/h): one per slot, or an
        (n, slots) array of draws (e.g. ``McsScenario.speed_kmh``), drawn as their mean and sd.
    classes : dict
        ``{"HS": (mean, sd), "MS": ..., "LS": ...}`` km/h for every schedule, or one such dict per
        schedule name (the authors' code used LS (20, 10), the workbook lists (25, 10)).

    Returns
    -------
    matplotlib.figure.Figure
        One step line per schedule (class mean), its +-1 sd band shaded. The band is that of the
        unclipped normal; the Monte Carlo clips draws to [10, 100] km/h.
    """
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    for j, (name, schedule) in enumerate(schedules.items()):
        values = np.asarray(schedule)
        own = classes.get(name)
        cls = own if isinstance(own, Mapping) else classes
        if values.dtype.kind in "USO":
            mean = np.array([cls[str(c)][0] for c in values], dtype=float)
            sd = np.array([cls[str(c)][1] for c in values], dtype=float)
        elif values.ndim == 2:
            mean = values.mean(axis=0)
            sd = values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])
        else:
            mean, sd = values.astype(float), np.zeros(values.size)
        edges = np.arange(mean.size + 1) * 24.0 / mean.size
        color = f"C{j}"
        ax.stairs(mean, edges, baseline=None, color=color, lw=2, label=SCHEDULE_LABELS.get(name, name))
        if np.any(sd > 0):
            ax.fill_between(edges, np.append(mean - sd, mean[-1] - sd[-1]), np.append(mean + sd, mean[-1] + sd[-1]),
                            step="post", color=color, alpha=0.15, lw=0, label=f"{name}: +-1 sd")
    shared = classes if all(not isinstance(v, Mapping) for v in classes.values()) else None
    for label, (mean, _sd) in (shared or {}).items():
        ax.axhline(mean, color="0.6", lw=0.6, ls=":")
        ax.annotate(label, (24, mean), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7,
                    color="0.4")
    _hour_ticks(ax, 24, 2)
    ax.set_xlabel(_CLOCK_LABEL)
    ax.set_ylabel("traffic speed (km/h)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    ax.set_title("Speed classes over the day (Fig. 4c): mean and +-1 sd")
    return fig


# --------------------------------------------------------------------------------------------
# Monte Carlo outputs
# --------------------------------------------------------------------------------------------


def plot_sample_energy(scenarios: Mapping[int, McsScenario], authors_gchr: pd.DataFrame | None = None) -> Figure:
    """Eq. (3): the daily road energy GChR of every sample, and the minimum and maximum chosen.

    Parameters
    ----------
    scenarios : dict
        Scenario number -> :class:`McsScenario`.
    authors_gchr : DataFrame, optional
        :func:`.dataset.read_samples`: ``scenario`` (``"Sc1"``... ``"Sc3-CR"``), ``sample``
        (min/max), ``gchr_mwh_reported`` (or ``gchr_mwh``), ``mcs_sample_index``. Sc3-CR's samples
        are drawn in scenario 3's panel, with their own marker.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per scenario: histograms of GChR with the minimum-sample and the maximum-sample
        weights (one histogram where they agree: random weighting), the chosen samples as solid
        lines, the authors' as dashed lines with outlined markers.
    """
    keys = sorted(scenarios)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 5.6), squeeze=False, layout="constrained")
    for ax, key in zip(axes[0], keys, strict=True):
        sc = scenarios[key]
        same = np.array_equal(sc.gchr_min_mwh, sc.gchr_max_mwh)
        both = sc.gchr_min_mwh if same else np.concatenate([sc.gchr_min_mwh, sc.gchr_max_mwh])
        bins = np.histogram_bin_edges(both, bins=int(np.clip(sc.n_samples // 4, 5, 30)))
        if same:
            ax.hist(sc.gchr_min_mwh, bins, color="0.6", alpha=0.7, label="every sample")
        else:
            ax.hist(sc.gchr_min_mwh, bins, color="C0", alpha=0.45, label="every sample, minimum's weights")
            ax.hist(sc.gchr_max_mwh, bins, color="C1", alpha=0.45, label="every sample, maximum's weights")
        for sample, values, index, color in (("min", sc.gchr_min_mwh, sc.sample_min, "C0"),
                                             ("max", sc.gchr_max_mwh, sc.sample_max, "C1")):
            ax.axvline(values[index], color=color, lw=2,
                       label=f"our {sample}: sample {index + 1}, {values[index]:.2f} MWh")
        if authors_gchr is not None:
            column = "gchr_mwh_reported" if "gchr_mwh_reported" in authors_gchr else "gchr_mwh"
            for name, marker in ((f"Sc{key}", "v"), (f"Sc{key}-CR", "D")):
                for row in authors_gchr[authors_gchr["scenario"] == name].itertuples(index=False):
                    value = float(getattr(row, column))
                    color = "C0" if row.sample == "min" else "C1"
                    ax.axvline(value, color=color, lw=1, ls="--")
                    number = getattr(row, "mcs_sample_index", None)
                    ax.plot([value], [0.95], marker=marker, ms=8, mfc="none", mec=color, mew=1.5, ls="none",
                            transform=ax.get_xaxis_transform(),
                            label=f"authors' {name} {row.sample}" + (f": sample {number}" if number else "")
                            + f", {value:.2f} MWh")
        ax.set_xlabel("GChR, daily road energy of the sample (MWh)")
        ax.set_ylabel("samples (count)")
        ax.set_title(f"Scenario {key}: {sc.n_evs:,} EVs, {sc.n_samples} samples ({sc.options.mode})", fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
        ax.grid(alpha=0.3)
    fig.suptitle("Daily charging energy GChR of every Monte Carlo sample (Eq. 3)")
    return fig


def plot_bus_counts(table1_ours: pd.DataFrame, table1_paper: pd.DataFrame) -> Figure:
    """Table 1: weighted EVs per load bus, by home (Dep) and work (Arr) bus, ours vs the paper's.

    Parameters
    ----------
    table1_ours : DataFrame
        Index ``bus``, columns ``"Scenario {s} {min,max} {Dep,Arr}"`` (:func:`mcs_table1`, or
        :func:`.dataset.table1_from_assignment` for the authors' samples).
    table1_paper : DataFrame
        The paper's Table 1: the same layout, or the rows of
        :func:`evgrid.core.compare.load_paper_values` (only ``table == "Table 1"`` is read).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per scenario (rows) and sample (columns): per bus, Dep and Arr bars, ours filled,
        the paper's outlined over them.
    """
    ours, paper = _table1_tidy(table1_ours), _table1_tidy(table1_paper)
    scenarios = _scenario_order(pd.concat([ours["scenario"], paper["scenario"]]).unique())
    buses = sorted(set(ours["bus"]) | set(paper["bus"]))
    x = np.arange(len(buses))
    fig, axes = plt.subplots(len(scenarios), len(SAMPLES), figsize=(11, 2.8 * len(scenarios)), squeeze=False,
                             sharex=True, sharey="row", layout="constrained")
    for i, scenario in enumerate(scenarios):
        for j, sample in enumerate(SAMPLES):
            ax = axes[i, j]
            for k, (kind, color) in enumerate((("Dep", "C0"), ("Arr", "C1"))):
                pos = x + (k - 0.5) * 0.4
                for frame, filled in ((ours, True), (paper, False)):
                    part = frame[(frame["scenario"] == scenario) & (frame["sample"] == sample)
                                 & (frame["kind"] == kind)].set_index("bus")["value"].reindex(buses)
                    if part.isna().all():
                        continue
                    if filled:
                        home = "home" if kind == "Dep" else "work"
                        ax.bar(pos, part.fillna(0), 0.4, color=color, alpha=0.8, label=f"ours: {kind} ({home} bus)")
                    else:
                        ax.bar(pos, part.fillna(0), 0.4, facecolor="none", edgecolor="k", lw=1.1,
                               label="paper (Table 1)" if k == 0 else None)
            ax.set_xticks(x, [str(b) for b in buses])
            ax.set_xlabel(_BUS_LABEL)
            ax.set_ylabel("EVs at the bus (count)")
            ax.set_title(f"{scenario}, {sample} sample", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.suptitle("EVs per load bus (Table 1): ours filled, the paper's outlined")
    return fig


# --------------------------------------------------------------------------------------------
# the per-bus MILPs: Tables 2 and 4, Figs. 6 and 8
# --------------------------------------------------------------------------------------------


def _energy_scale(values: np.ndarray) -> str:
    """``"linear"``, ``"log"`` or ``"symlog"``: log when the magnitudes span more than 20x."""
    values = values[np.isfinite(values)]
    nonzero = np.abs(values[values != 0])
    if nonzero.size == 0 or nonzero.max() / nonzero.min() <= 20:
        return "linear"
    return "log" if np.all(values > 0) else "symlog"


def plot_daily_energy(
    computed: pd.DataFrame, paper: pd.DataFrame | None = None, authors_runs: pd.DataFrame | None = None
) -> Figure:
    """Tables 2 and 4: daily traded energy per bus (MWh), one panel per scenario and sample.

    Parameters
    ----------
    computed : DataFrame
        ``scenario`` (``"Sc1"``... ``"Sc3-CR"``), ``sample``, ``bus``, ``daily_energy_mwh`` and,
        optionally, ``pricing`` (one bar per pricing): the runs table of :mod:`.study`.
    paper : DataFrame, optional
        Rows of :func:`evgrid.core.compare.load_paper_values` (Tables 2 and 4; rows ``"Bus k"``,
        columns ``"Scenario 1 min"``, ``"Scenario 3 CR max"``), or a tidy frame with ``scenario``,
        ``sample``, ``bus``, ``value``.
    authors_runs : DataFrame, optional
        The authors' own profiles' energy: :func:`.authors.authors_daily_energy` (``energy_mwh``) or
        a runs table with ``authors_daily_energy_mwh``.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per scenario (rows) and sample (columns) of ``computed``: bars (ours), outlined
        circles (the paper), crosses (the authors' profiles). The y axis is logarithmic (symlog
        where a value is zero or negative, linear within +-0.1 MWh) when the magnitudes span more
        than 20x; the figure's title says which.
    """
    computed = computed.assign(scenario=computed["scenario"].map(lambda s: f"Sc{s}" if isinstance(s, int | np.integer)
                                                                 else str(s)))
    if paper is not None and "row" in paper.columns:
        paper = _paper_tidy(paper[paper["table"].isin(["Table 2", "Table 4"])] if "table" in paper else paper)
    authors = None
    if authors_runs is not None:
        column = "energy_mwh" if "energy_mwh" in authors_runs else "authors_daily_energy_mwh"
        authors = authors_runs.drop_duplicates(["scenario", "sample", "bus"])[["scenario", "sample", "bus", column]]
        authors = authors.rename(columns={column: "value"})
    pricings = list(dict.fromkeys(computed["pricing"])) if "pricing" in computed else [None]
    scenarios = _scenario_order(computed["scenario"].unique())
    samples = [s for s in SAMPLES if s in set(computed["sample"])] + sorted(set(computed["sample"]) - set(SAMPLES))
    values = [computed["daily_energy_mwh"].to_numpy(float)]
    values += [f["value"].to_numpy(float) for f in (paper, authors) if f is not None]
    scale = _energy_scale(np.concatenate(values))
    fig, axes = plt.subplots(len(scenarios), len(samples), figsize=(5.5 * len(samples), 2.9 * len(scenarios)),
                             squeeze=False, sharey=True, layout="constrained")
    width = 0.8 / len(pricings)
    for i, scenario in enumerate(scenarios):
        for j, sample in enumerate(samples):
            ax = axes[i, j]
            ours = computed[(computed["scenario"] == scenario) & (computed["sample"] == sample)]
            buses = sorted(ours["bus"].astype(int).unique())
            x = np.arange(len(buses))
            for k, pricing in enumerate(pricings):
                part = ours if pricing is None else ours[ours["pricing"] == pricing]
                energy = part.groupby("bus")["daily_energy_mwh"].first().reindex(buses)
                ax.bar(x + (k - (len(pricings) - 1) / 2) * width, energy, width, color=f"C{k}", alpha=0.8,
                       label="ours" if pricing is None else f"ours, {pricing} pricing")
            for frame, style, label in ((paper, {"marker": "o", "mfc": "none", "mec": "k", "ms": 7, "mew": 1.4},
                                         "paper (Table 2/4)"),
                                        (authors, {"marker": "x", "color": "C3", "ms": 6, "mew": 1.4},
                                         "authors' P^EM files")):
                if frame is None:
                    continue
                ref = frame[(frame["scenario"] == scenario) & (frame["sample"] == sample)]
                ref = ref.groupby("bus")["value"].first().reindex(buses)
                if ref.notna().any():
                    ax.plot(x, ref, ls="none", label=label, **style)
            if scale == "symlog":
                ax.set_yscale("symlog", linthresh=0.1)
                ax.axhline(0, color="k", lw=0.6)
            elif scale == "log":
                ax.set_yscale("log")
            ax.set_xticks(x, [str(b) for b in buses])
            ax.set_xlabel(_BUS_LABEL)
            ax.set_ylabel("daily traded energy (MWh)")
            ax.set_title(f"{scenario}, {sample} sample", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
    axes[0, -1].legend(fontsize=7, loc="best")
    how = {"linear": "linear y axis", "log": "logarithmic y axis",
           "symlog": "symmetric-log y axis (linear within +-0.1 MWh)"}[scale]
    fig.suptitle(f"Daily traded energy per bus, sum of P^EM x 0.5 h (Tables 2 and 4); {how}")
    return fig


def plot_profiles(profiles: pd.DataFrame, title: str) -> Figure:
    """Figs. 6 and 8: the per-bus half-hourly trade P^EM of one scenario and sample.

    Parameters
    ----------
    profiles : DataFrame
        ``scenario``, ``sample``, ``bus``, ``t`` (1..48; t = 1 is 00:00-00:30), ``p_em_mw`` (MW;
        + buys, - sells) and optionally ``pricing`` (one panel each), of one scenario and sample
        (the ``<scenario>_profiles.csv`` of :mod:`.study`, filtered).
    title : str
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        One line per bus, at the periods' midpoints, and a zero line.

    Raises
    ------
    ValueError
        If ``profiles`` holds more than one scenario and sample, or nothing.
    """
    if profiles.empty:
        raise ValueError("profiles is empty: filter one scenario and sample that was solved")
    cases = profiles[["scenario", "sample"]].drop_duplicates()
    if len(cases) > 1:
        raise ValueError(f"profiles holds {len(cases)} scenario/sample pairs "
                         f"({cases.to_records(index=False).tolist()}): filter one")
    pricings = list(dict.fromkeys(profiles["pricing"])) if "pricing" in profiles else [None]
    fig, axes = plt.subplots(1, len(pricings), figsize=(8.5 * len(pricings) + 1.5, 4.2), squeeze=False,
                             sharey=True, layout="constrained")
    buses = sorted(profiles["bus"].astype(int).unique())
    cmap = plt.get_cmap("tab20" if len(buses) > 10 else "tab10")
    for ax, pricing in zip(axes[0], pricings, strict=True):
        part = profiles if pricing is None else profiles[profiles["pricing"] == pricing]
        for n, bus in enumerate(buses):
            rows = part[part["bus"] == bus].sort_values("t")
            ax.plot((rows["t"].to_numpy(float) - 0.5) * _SLOT_H, rows["p_em_mw"], lw=1.4, color=cmap(n % cmap.N),
                    label=f"bus {bus}")
        ax.axhline(0, color="k", lw=0.8)
        _hour_ticks(ax, 24, 3)
        ax.set_xlabel(_CLOCK_LABEL)
        ax.set_ylabel("traded power P^EM (MW; + buys, - sells)")
        if pricing is not None:
            ax.set_title(f"{pricing} pricing", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="aggregator")
    fig.suptitle(title)
    return fig


def plot_gaps(runs: pd.DataFrame, floor_pct: float = 1e-3) -> Figure:
    """How well each MILP was solved: our proven relative gap against the authors' CPLEX gap.

    Parameters
    ----------
    runs : DataFrame
        The runs table of :mod:`.study`: ``run``, ``scenario``, ``sample``, ``bus``, ``pricing``,
        ``status``, ``rel_gap`` (fraction) and, for the authors' runs, ``authors_rel_gap`` (fraction).
    floor_pct : float
        Gaps below this (%), zero included, are drawn at it (a log axis has no zero).

    Returns
    -------
    matplotlib.figure.Figure
        Per run (grouped by scenario, then sample and bus), a marker per pricing for our gap and an
        outlined square for the authors'; runs without a gap (failed, no bound) as crosses at the
        top; the 1 % target dashed.
    """
    runs = runs.copy()
    runs["_order"] = runs["scenario"].map({s: i for i, s in enumerate(_scenario_order(runs["scenario"].unique()))})
    runs["_sample"] = runs["sample"].map({s: i for i, s in enumerate(SAMPLES)}).fillna(len(SAMPLES))
    order = runs.sort_values(["_order", "_sample", "bus"]).drop_duplicates("run")
    pos, x, previous = {}, 0, None
    for run, scenario in zip(order["run"], order["scenario"], strict=True):
        if previous is not None and scenario != previous:
            x += 1.5  # a gap between scenarios
        pos[run], previous, x = x, scenario, x + 1
    fig, ax = plt.subplots(figsize=(max(8.0, 0.09 * len(pos) + 3), 4.3), layout="constrained")
    pricings = list(dict.fromkeys(runs["pricing"])) if "pricing" in runs else [None]
    markers = "o^sv"
    for k, pricing in enumerate(pricings):
        part = runs if pricing is None else runs[runs["pricing"] == pricing]
        xs = part["run"].map(pos).to_numpy(float)
        gap = 100.0 * pd.to_numeric(part["rel_gap"], errors="coerce").to_numpy(float)
        ok = np.isfinite(gap)
        name = "ours" if pricing is None else f"ours, {pricing} pricing"
        ax.plot(xs[ok], np.maximum(gap[ok], floor_pct), ls="none", marker=markers[k % 4], ms=4.5, color=f"C{k}",
                label=name)
        if (~ok).any():
            ax.plot(xs[~ok], np.full((~ok).sum(), 0.97), ls="none", marker="x", color=f"C{k}", ms=6,
                    transform=ax.get_xaxis_transform(), label=f"{name}: no gap (failed or no bound)")
    if "authors_rel_gap" in runs:
        authors = order[["run", "authors_rel_gap"]]
        gap = 100.0 * pd.to_numeric(authors["authors_rel_gap"], errors="coerce").to_numpy(float)
        ok = np.isfinite(gap)
        ax.plot(authors["run"].map(pos).to_numpy(float)[ok], np.maximum(gap[ok], floor_pct), ls="none", marker="s",
                ms=6, mfc="none", mec="k", label="authors' CPLEX (their runs)")
    ax.axhline(1.0, color="C3", ls="--", lw=1, label="1 % target")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor_pct / 2)
    centres = order.assign(x=order["run"].map(pos)).groupby("scenario", sort=False)["x"].agg(["min", "max"])
    ax.set_xticks(((centres["min"] + centres["max"]) / 2).to_numpy(), centres.index.tolist())
    for lo in centres["min"].to_numpy()[1:]:
        ax.axvline(lo - 1.25, color="0.7", lw=0.8)
    ax.set_xlabel("run (grouped by scenario; within: min then max sample, buses in order)")
    ax.set_ylabel(f"relative MIP gap (%, below {floor_pct:g} % drawn at it)")
    ax.set_title("Proven relative gap of every per-bus MILP")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------------------------
# part 2, the centralized AC OPF: Figs. 6 and 7
# --------------------------------------------------------------------------------------------


_PERIOD_EDGES_H = np.arange(49) * _SLOT_H
_CASE_COLUMNS = ("profiles", "scenario", "sample")


def _case_rows(days: pd.DataFrame, profiles: str, scenario: str = "", sample: str = "") -> pd.DataFrame:
    """One case's rows of ``days.csv`` (``""`` or NaN for the no-EV day's scenario and sample), by t."""
    scen = days["scenario"].fillna("").astype(str)
    samp = days["sample"].fillna("").astype(str)
    rows = days[(days["profiles"] == profiles) & (scen == scenario) & (samp == sample)]
    return rows.sort_values("t")


def _per_period(rows: pd.DataFrame, values: pd.Series | np.ndarray) -> np.ndarray:
    """``values`` of one case's rows as 48 half-hour values (NaN where a period is missing)."""
    out = np.full(48, np.nan)
    t = rows["t"].to_numpy(dtype=int)
    out[t - 1] = np.asarray(values, dtype=float)
    return out


def _case_label(profiles: str, scenario: str, sample: str) -> str:
    if profiles == "none":
        return PROFILE_LABELS["none"]
    return f"{scenario} {sample}, {PROFILE_LABELS.get(profiles, profiles)}"


def plot_system_load(days: pd.DataFrame, profiles: str | tuple[str, ...] = "authors_paper") -> Figure:
    """Fig. 6: the system load sum_k (Pd_k LF_t + P^EM_k,t) over the day, per scenario; min and max panels.

    Parameters
    ----------
    days : DataFrame
        ``days.csv`` of the OPF study: ``profiles``, ``scenario``, ``sample`` (empty or NaN for
        the no-EV day), ``t`` (1..48; t = 1 is 00:00-00:30), ``pd_mw`` (the total load incl. EVs,
        Eq. 43).
    profiles : str or tuple of str
        The profile sets to draw, one row of panels each (``"authors_paper"``: the paper's Fig. 6).
        The no-EV day, if in ``days``, is drawn in every panel.

    Returns
    -------
    matplotlib.figure.Figure
        One row per profile set, one column per sample (min, max): a step line per scenario.

    Raises
    ------
    ValueError
        If a profile set has no day in ``days``.
    """
    sets = (profiles,) if isinstance(profiles, str) else tuple(profiles)
    fig, axes = plt.subplots(len(sets), len(SAMPLES), figsize=(11, 3.6 * len(sets)), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    no_ev = _case_rows(days, "none")
    for i, name in enumerate(sets):
        part = days[days["profiles"] == name]
        if part.empty:
            raise ValueError(f"profiles = {name!r}: no day of that profile set in days "
                             f"(found {sorted(set(days['profiles']))})")
        scenarios = _scenario_order(part["scenario"].fillna("").astype(str).unique())
        for j, sample in enumerate(SAMPLES):
            ax = axes[i, j]
            if not no_ev.empty:
                ax.stairs(_per_period(no_ev, no_ev["pd_mw"]), _PERIOD_EDGES_H, baseline=None, color="k", lw=1.2,
                          ls="--", label=PROFILE_LABELS["none"])
            for k, scenario in enumerate(scenarios):
                rows = _case_rows(days, name, scenario, sample)
                if rows.empty:
                    continue
                ax.stairs(_per_period(rows, rows["pd_mw"]), _PERIOD_EDGES_H, baseline=None, color=f"C{k}", lw=1.5,
                          label=scenario)
            _hour_ticks(ax, 24, 3)
            ax.set_xlabel(_CLOCK_LABEL)
            ax.set_ylabel("system load incl. EVs (MW)")
            ax.set_title(f"{PROFILE_LABELS.get(name, name)}: {sample} samples", fontsize=9)
            ax.legend(fontsize=7, loc="upper left")
            ax.grid(alpha=0.3)
    fig.suptitle("System load over the day, sum over buses of Pd_k LF_t + P^EM_k,t (Fig. 6)")
    return fig


def plot_opf_day(days: pd.DataFrame, cases: list[tuple[str, str, str]] | tuple[tuple[str, str, str], ...],
                 firm_capacity_mw: float | None = None) -> Figure:
    """Fig. 7(a): the OPF's generation, load and non-supplied power over the day, for chosen cases.

    Parameters
    ----------
    days : DataFrame
        ``days.csv``: the case columns, ``t``, ``pd_mw`` (load incl. EVs), ``p_slack_mw`` and
        ``p_gen2_mw`` (generation at buses 1 and 2), ``nsp_mw`` (the bus-14 unit).
    cases : sequence of (profiles, scenario, sample)
        The days to draw, e.g. ``[("authors_paper", "Sc1", "max"), ("authors_paper", "Sc3", "min")]``
        (the paper's blue and red).
    firm_capacity_mw : float, optional
        Drawn as a horizontal line: the generation at buses 1 and 2 can reach at most this (272.4 MW).

    Returns
    -------
    matplotlib.figure.Figure
        Top: generation (solid) and load (dashed) per case; bottom: NSP per case (MW).

    Raises
    ------
    ValueError
        If a case has no rows in ``days``, or ``cases`` is empty.
    """
    if not cases:
        raise ValueError("cases is empty: name at least one (profiles, scenario, sample)")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True, height_ratios=(2.2, 1),
                                      layout="constrained")
    for k, (profiles, scenario, sample) in enumerate(cases):
        rows = _case_rows(days, profiles, scenario, sample)
        if rows.empty:
            raise ValueError(f"case {(profiles, scenario, sample)} has no rows in days")
        label = _case_label(profiles, scenario, sample)
        color = f"C{k}"
        top.stairs(_per_period(rows, rows["p_slack_mw"] + rows["p_gen2_mw"]), _PERIOD_EDGES_H, baseline=None,
                   color=color, lw=1.8, label=f"{label}: generation, buses 1 + 2")
        top.stairs(_per_period(rows, rows["pd_mw"]), _PERIOD_EDGES_H, baseline=None, color=color, lw=1.2, ls="--",
                   label=f"{label}: load incl. EVs")
        bottom.stairs(_per_period(rows, rows["nsp_mw"]), _PERIOD_EDGES_H, color=color, lw=1.5,
                      fill=False, label=f"{label}: NSP ({float(rows['nsp_mw'].sum()) * _SLOT_H:.2f} MWh)")
    if firm_capacity_mw is not None:
        top.axhline(firm_capacity_mw, color="0.4", lw=1, ls=":", label=f"firm capacity {firm_capacity_mw:g} MW")
    top.set_ylabel("active power (MW)")
    top.set_title("Generation and load", fontsize=9)
    top.legend(fontsize=7, loc="lower right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("NSP at the bus-14 unit (MW)")
    bottom.set_title("Non-supplied power", fontsize=9)
    bottom.set_ylim(bottom=0)
    bottom.legend(fontsize=7, loc="upper left")
    bottom.grid(alpha=0.3)
    for ax in (top, bottom):
        _hour_ticks(ax, 24, 3)
    top.set_xlabel(_CLOCK_LABEL)
    bottom.set_xlabel(_CLOCK_LABEL)
    fig.suptitle("CEVCM OPF over the day: generation, load and NSP (Fig. 7a)")
    return fig


def plot_caps(caps: pd.DataFrame) -> Figure:
    """Fig. 7(b): the DNO's caps P^EM_cap,k,t per bus over the day, ours stacked, beside the authors'.

    Parameters
    ----------
    caps : DataFrame
        ``caps.csv`` of the OPF study: ``t``, ``bus``, ``cap_mw`` (ours, Eqs. 54-55) and
        ``authors_cap_mw`` (the authors' caps, their capped runs' inputs).

    Returns
    -------
    matplotlib.figure.Figure
        Left: our caps stacked by bus, our total and the authors' total (MW). Right: per bus, our
        cap minus the authors' (MW); the buses whose difference stays within 0.01 MW in grey.
    """
    buses = sorted(caps["bus"].astype(int).unique())
    ours = caps.pivot(index="t", columns="bus", values="cap_mw").reindex(index=range(1, 49), columns=buses)
    theirs = caps.pivot(index="t", columns="bus", values="authors_cap_mw").reindex(index=range(1, 49), columns=buses)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained")
    cmap = plt.get_cmap("tab20" if len(buses) > 10 else "tab10")
    bottom = np.zeros(48)
    for n, bus in enumerate(buses):
        values = ours[bus].to_numpy(dtype=float)
        left.stairs(bottom + np.nan_to_num(values), _PERIOD_EDGES_H, baseline=bottom, fill=True, alpha=0.8,
                    color=cmap(n % cmap.N), label=f"bus {bus}")
        bottom = bottom + np.nan_to_num(values)
    left.stairs(ours.sum(axis=1, min_count=1).to_numpy(float), _PERIOD_EDGES_H, baseline=None, color="k", lw=1.2,
                label="our total")
    left.stairs(theirs.sum(axis=1, min_count=1).to_numpy(float), _PERIOD_EDGES_H, baseline=None, color="C3",
                lw=1.4, ls="--", label="authors' total")
    _hour_ticks(left, 24, 3)
    left.set_xlabel(_CLOCK_LABEL)
    left.set_ylabel("admissible EV load, cap (MW)")
    left.set_title("Our caps, stacked by bus, and both totals", fontsize=9)
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="cap of")
    left.grid(alpha=0.3)
    diff = ours - theirs
    for n, bus in enumerate(buses):
        values = diff[bus].to_numpy(dtype=float)
        small = bool(np.nanmax(np.abs(values), initial=0.0) <= 0.01)
        right.stairs(values, _PERIOD_EDGES_H, baseline=None, lw=0.8 if small else 1.6,
                     color="0.7" if small else cmap(n % cmap.N), label=f"_bus {bus}" if small else f"bus {bus}")
    right.axhline(0, color="k", lw=0.6)
    _hour_ticks(right, 24, 3)
    right.set_xlabel(_CLOCK_LABEL)
    right.set_ylabel("our cap - the authors' (MW)")
    right.set_title("Difference per bus (grey: within 0.01 MW all day)", fontsize=9)
    right.legend(fontsize=7, loc="best")
    right.grid(alpha=0.3)
    fig.suptitle("The DNO's caps on the EV load per bus (Eqs. 54-55, Fig. 7b)")
    return fig


def plot_caps_response(profiles: pd.DataFrame, caps: pd.DataFrame, title: str = "") -> Figure:
    """Fig. 8: each aggregator's traded power P^EM_{k,t} under its cap P^EM_cap,k,t (Eqs. 56-57), one panel per bus.

    Parameters
    ----------
    profiles : DataFrame
        Capped runs' profiles: ``sample`` (min/max), ``bus``, ``t`` (1-48), ``p_em_mw`` (MW; NaN
        for a run without a schedule, drawn as absent and named in the panel).
    caps : DataFrame
        ``caps.csv``: ``t``, ``bus``, ``cap_mw``.
    title : str
        Figure title; a default names the figure.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per load bus: the cap (black steps, with the zero line) and the min- and max-sample
        P^EM (MW) over the clock day.
    """
    buses = sorted(caps["bus"].astype(int).unique())
    n_col = 4
    n_row = int(np.ceil(len(buses) / n_col))
    fig, axes = plt.subplots(n_row, n_col, figsize=(13, 2.6 * n_row), layout="constrained", sharex=True)
    axes = np.atleast_1d(axes).ravel()
    colors = {"min": "C0", "max": "C3"}
    for ax, bus in zip(axes, buses, strict=False):
        cap = caps[caps["bus"] == bus].set_index("t")["cap_mw"].reindex(range(1, 49)).to_numpy(float)
        ax.stairs(cap, _PERIOD_EDGES_H, baseline=None, color="k", lw=1.4, label="cap")
        ax.axhline(0, color="0.5", lw=0.6)
        missing = []
        for sample in SAMPLES:
            rows = profiles[(profiles["bus"] == bus) & (profiles["sample"] == sample)]
            values = rows.set_index("t")["p_em_mw"].reindex(range(1, 49)).to_numpy(float)
            if rows.empty or not np.isfinite(values).any():
                missing.append(sample)
                continue
            ax.stairs(values, _PERIOD_EDGES_H, baseline=None, color=colors[sample], lw=1.1,
                      label=rf"$P^{{\mathrm{{EM}}}}$, {sample} sample")
        if missing:
            ax.text(0.02, 0.95, f"no schedule: {', '.join(missing)}", transform=ax.transAxes, fontsize=7,
                    va="top", color="C3")
        ax.set_title(f"bus {bus}", fontsize=9)
        _hour_ticks(ax, 24, 6)
        ax.grid(alpha=0.3)
        ax.set_xlabel(_CLOCK_LABEL, fontsize=8)
        ax.set_ylabel("power (MW)", fontsize=8)
    for ax in axes[len(buses):]:
        fig.delaxes(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(title or "Each aggregator's traded power within its cap (Eqs. 56-57, Fig. 8)")
    return fig


def plot_nsp(days: pd.DataFrame, threshold_mw: float = 1e-4) -> Figure:
    """The non-supplied power per period of every case of ``days.csv`` that has any.

    Parameters
    ----------
    days : DataFrame
        ``days.csv``: the case columns, ``t``, ``nsp_mw``.
    threshold_mw : float
        A case is drawn if its NSP exceeds this in some period.

    Returns
    -------
    matplotlib.figure.Figure
        Bars per period (clock time), side by side per case, labelled with the case's daily NSE;
        the title counts the cases without NSP. With no NSP anywhere, an empty panel that says so.
    """
    keys = days[list(_CASE_COLUMNS)].fillna("").astype(str)
    cases = list(dict.fromkeys(map(tuple, keys.to_numpy())))
    with_nsp = [c for c in cases if float(_case_rows(days, *c)["nsp_mw"].max()) > threshold_mw]
    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    width = _SLOT_H * 0.8 / max(len(with_nsp), 1)
    for k, case in enumerate(with_nsp):
        rows = _case_rows(days, *case)
        values = _per_period(rows, rows["nsp_mw"])
        centres = (np.arange(1, 49) - 0.5) * _SLOT_H + (k - (len(with_nsp) - 1) / 2) * width
        hit = values > threshold_mw
        ax.bar(centres[hit], values[hit], width, color=f"C{k}",
               label=f"{_case_label(*case)}: {np.nansum(values) * _SLOT_H:.2f} MWh")
    if not with_nsp:
        ax.text(0.5, 0.5, "no NSP in any case", transform=ax.transAxes, ha="center", va="center")
    _hour_ticks(ax, 24, 3)
    ax.set_xlabel(_CLOCK_LABEL)
    ax.set_ylabel("non-supplied power, bus-14 unit (MW)")
    ax.set_ylim(bottom=0)
    if with_nsp:
        ax.legend(fontsize=7, loc="upper left", title="case: NSE")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"Non-supplied power per half hour: {len(with_nsp)} of {len(cases)} days have some "
                 f"({len(cases) - len(with_nsp)} none)")
    return fig


# --------------------------------------------------------------------------------------------
# the distribution analysis: Fig. 9
# --------------------------------------------------------------------------------------------


_PHASE_COLORS = {"a": "C0", "b": "C1", "c": "C2"}


def _stairs_band(ax: Axes, low: np.ndarray, high: np.ndarray, **kwargs) -> None:
    """Fill between two per-period series drawn as steps over the 48 half hours."""
    ax.fill_between(_PERIOD_EDGES_H, np.append(low, low[-1]), np.append(high, high[-1]), step="post", lw=0,
                    **kwargs)


def plot_feeder_voltages(envelopes: pd.DataFrame, buses: list[str] | tuple[str, ...] | None = None,
                         vmin_pu: float = 0.95, vmax_pu: float = 1.05, no_ev: str = "no EVs",
                         violations: pd.DataFrame | None = None) -> Figure:
    """Fig. 9: per-phase voltages at the IEEE 13-node feeder's far buses over the day, per dataset, against the band.

    Parameters
    ----------
    envelopes : DataFrame
        ``feeder13/envelopes.csv`` (:func:`.feeder13.voltage_envelopes`): ``dataset``, ``bus``
        (text), ``phase``, ``t`` (1..48; t = 1 is 00:00-00:30), ``vm_min_pu``, ``vm_max_pu``,
        ``vm_p05``, ``vm_p95`` over the synthetic days.
    buses : sequence of str, optional
        The buses to draw, one row of panels each; default every bus in ``envelopes``, in its order.
    vmin_pu, vmax_pu : float
        The voltage band drawn (the NTCSE's +-5 % for urban MV).
    no_ev : str
        The dataset label of the day without EVs: drawn as a dashed line per phase in every panel,
        not as a column of its own.
    violations : DataFrame, optional
        ``feeder13/violations.csv`` (:func:`.feeder13.violation_counts`): each panel's title then
        counts the bus's values outside the band (its phases' rows summed).

    Returns
    -------
    matplotlib.figure.Figure
        One row per bus, one column per EV dataset: per phase, the min-max envelope (light) and the
        5-95 % band (dark) over the synthetic days, the no-EV day (dashed), the band's limits (red).

    Raises
    ------
    ValueError
        If ``envelopes`` has no EV dataset, or a bus of ``buses`` is not in it.
    """
    frame = envelopes.assign(bus=envelopes["bus"].astype(str))
    datasets = [d for d in dict.fromkeys(frame["dataset"]) if d != no_ev]
    if not datasets:
        raise ValueError(f"envelopes holds no EV dataset (found {sorted(set(frame['dataset']))})")
    known = list(dict.fromkeys(frame["bus"]))
    rows = known if buses is None else [str(b) for b in buses]
    missing = [b for b in rows if b not in known]
    if missing:
        raise ValueError(f"bus {missing[0]!r} is not in envelopes; allowed {known}")
    fig, axes = plt.subplots(len(rows), len(datasets), figsize=(5.5 * len(datasets), 2.2 * len(rows) + 0.8),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    for i, bus in enumerate(rows):
        for j, dataset in enumerate(datasets):
            ax = axes[i, j]
            for phase, part in frame[(frame["bus"] == bus) & (frame["dataset"] == dataset)].groupby("phase"):
                color = _PHASE_COLORS.get(phase, "0.4")
                _stairs_band(ax, _per_period(part, part["vm_min_pu"]), _per_period(part, part["vm_max_pu"]),
                             color=color, alpha=0.18, label=f"phase {phase.upper()}: min-max")
                _stairs_band(ax, _per_period(part, part["vm_p05"]), _per_period(part, part["vm_p95"]),
                             color=color, alpha=0.45, label=f"phase {phase.upper()}: 5-95 %")
                base = frame[(frame["bus"] == bus) & (frame["dataset"] == no_ev) & (frame["phase"] == phase)]
                if not base.empty:
                    ax.stairs(_per_period(base, base["vm_min_pu"]), _PERIOD_EDGES_H, baseline=None, color=color,
                              lw=1.0, ls="--", label=f"phase {phase.upper()}: {no_ev}")
            for limit in (vmin_pu, vmax_pu):
                ax.axhline(limit, color="C3", lw=1.0, ls=":")
            title = f"bus {bus}, {dataset} EV energy"
            if violations is not None:
                hit = violations[(violations["dataset"] == dataset) & (violations["bus"].astype(str) == bus)
                                 & (violations["phase"] != "all")]
                if not hit.empty:
                    title += f": {int(hit['n_violations'].sum())} of {int(hit['n_values'].sum())} outside"
            ax.set_title(title, fontsize=9)
            _hour_ticks(ax, 24, 3)
            ax.set_xlabel(_CLOCK_LABEL)
            ax.set_ylabel("voltage (p.u.)")
            ax.grid(alpha=0.3)
    axes[0, 0].plot([], [], color="C3", lw=1.0, ls=":", label=f"band {vmin_pu:g}-{vmax_pu:g} p.u.")
    entries: dict[str, object] = {}  # one legend below all panels, each label once, phases in order
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    labels = sorted(entries, key=lambda label: (label.startswith("band"), label))
    fig.legend([entries[label] for label in labels], labels, loc="outside lower center", ncol=4, fontsize=7)
    fig.suptitle("Per-phase voltages at the IEEE 13-node feeder's buses over the synthetic days (Fig. 9)")
    return fig
