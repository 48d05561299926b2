"""Every figure function returns a Figure whose axes say what they show.

One test per function of ``evgrid.analysis.plotting`` (notebook 00),
``evgrid.papers.kerama2025.figures`` (notebook 01) and
``evgrid.papers.eva2025.figures`` (notebook 02) and
``evgrid.papers.priolkar2025.figures`` (notebook 03), each from small synthetic
inputs or the committed result files. "Labelled" means a non-empty x and y
label on every axes, where an axis shared with another (``sharey``, a twin's x)
may carry its label on one of them, as a row of panels does on its first.
"""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evgrid.analysis.plotting import plot_one_line_diagrams, plot_voltage_profiles
from evgrid.analysis.powerflow import PowerFlowResult
from evgrid.core.paths import repo_path
from evgrid.networks import load_ieee13, load_ieee33
from evgrid.networks.ieee13 import ieee13_published_voltages
from evgrid.papers import eva2025 as ev
from evgrid.papers.eva2025.figures import (
    plot_load_heatmap,
    plot_month_profit,
    plot_months,
    plot_schedules,
)
from evgrid.papers.kerama2025.figures import (
    FIG3_SCHEDULES,
    RADAR_SPOKES,
    TABLE2_UNITS,
    plot_benders_trace,
    plot_feeder_load_profiles,
    plot_fig3_baseline_vs_proposed,
    plot_fig4_budget_radar,
    plot_pessimistic_caps,
    plot_soc_envelopes,
    plot_worst_hour_voltage,
)
from evgrid.papers.kerama2025.sweep import TABLE_COLUMNS
from evgrid.papers.priolkar2025.figures import (
    METHOD_LABELS,
    plot_calibration,
    plot_convergence,
    plot_load_profiles,
    plot_prices,
    plot_table9_gaps,
    plot_wait_histogram,
)
from evgrid.papers.priolkar2025.report import wait_counts


@pytest.fixture(autouse=True)
def _headless():
    plt.switch_backend("Agg")
    yield
    plt.close("all")  # a failed assertion must not leave its figure open for the next test


def _has_label(ax: Axes, axis: str) -> bool:
    shared = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    return any(getattr(a, f"get_{axis}label")().strip() for a in shared.get_siblings(ax))


def unlabelled(fig: Figure, exempt: dict[Axes, str] | None = None) -> list[str]:
    """``"<axes title> (x)"`` for every axis of ``fig`` without a label.

    ``exempt`` maps axes that have no data axes to the reason why. A colour
    bar is labelled along its length only.
    """
    exempt = exempt or {}
    missing = []
    for k, ax in enumerate(fig.axes):
        if ax in exempt:
            assert exempt[ax], "an exemption needs its reason"
            continue
        name = ax.get_title() or f"axes {k}"
        if hasattr(ax, "_colorbar"):
            long_axis = "y" if ax._colorbar.orientation == "vertical" else "x"
            if not getattr(ax, f"get_{long_axis}label")().strip():
                missing.append(f"{name} (colour bar)")
            continue
        missing += [f"{name} ({axis})" for axis in ("x", "y") if not _has_label(ax, axis)]
    return missing


def check(fig: Figure, exempt: dict[Axes, str] | None = None, *, n_axes: int | None = None) -> None:
    """``fig`` is a Figure, has ``n_axes`` axes (if given) and every axis is labelled; then close it."""
    try:
        assert isinstance(fig, Figure)
        assert fig.axes, "the figure has no axes"
        if n_axes is not None:
            assert len(fig.axes) == n_axes, [ax.get_title() for ax in fig.axes]
        assert not unlabelled(fig, exempt), f"axes without a label: {unlabelled(fig, exempt)}"
    finally:
        plt.close(fig)


# --- the check itself --------------------------------------------------------------------


def test_the_check_finds_an_axis_without_a_label():
    fig, (left, right) = plt.subplots(1, 2)
    left.set_xlabel("hour")
    left.set_ylabel("kW")
    right.set_xlabel("hour")
    assert unlabelled(fig) == ["axes 1 (y)"]
    plt.close(fig)


def test_the_check_takes_a_shared_axis_label_from_its_sibling_only():
    fig, axes = plt.subplots(1, 2, sharey=True)
    for ax in axes:
        ax.set_xlabel("hour")
    assert unlabelled(fig) == ["axes 0 (y)", "axes 1 (y)"]
    axes[0].set_ylabel("kW")
    assert unlabelled(fig) == []
    twin = axes[1].twinx()  # shares x with its host, not y
    assert unlabelled(fig) == ["axes 2 (y)"]
    twin.set_ylabel("price")
    assert unlabelled(fig) == []
    plt.close(fig)


def test_the_check_reads_a_colour_bar_along_its_length():
    fig, ax = plt.subplots()
    im = ax.imshow(np.arange(4.0).reshape(2, 2))
    ax.set_xlabel("hour")
    ax.set_ylabel("day")
    bar = fig.colorbar(im, ax=ax)
    assert unlabelled(fig) == ["axes 1 (colour bar)"]
    bar.set_label("kW")
    assert unlabelled(fig) == []
    plt.close(fig)


# --- notebook 00: evgrid.analysis.plotting --------------------------------------------------


def test_one_line_diagrams():
    fig = plot_one_line_diagrams({"ieee33": load_ieee33(), "ieee13": load_ieee13()})
    for ax in fig.axes:
        assert not ax.axison  # the exemption below holds only while the diagram draws no axes
    check(fig, {ax: "a one-line diagram: bus positions are a layout, not a quantity" for ax in fig.axes},
          n_axes=2)


def test_voltage_profiles_from_the_committed_results():
    table = pd.read_csv(repo_path("results/test_systems/voltage_profiles.csv"))
    flows = {
        name: PowerFlowResult(network=name, buses=rows.drop(columns="network"), losses_kw=0.0)
        for name, rows in table.groupby("network", sort=False)
    }
    fig = plot_voltage_profiles(flows, vmin_pu=0.95, vmax_pu=1.05,
                                references={"ieee13": ieee13_published_voltages()})
    check(fig, n_axes=len(flows))


# --- notebook 01: evgrid.papers.kerama2025.figures ------------------------------------------

CLOCK = (np.arange(24) + 12) % 24  # Kerama's horizon: noon to noon


def _kerama_case():
    """The parts of a KeramaCase the figures read: 2 scenarios, a 5-bus feeder with one lateral."""
    buses = pd.DataFrame({"bus": range(5), "name": [str(b + 1) for b in range(5)]})
    branches = pd.DataFrame({"from_bus": [0, 1, 2, 1], "to_bus": [1, 2, 3, 4]})
    return SimpleNamespace(
        scenarios=[0, 1], periods=list(range(24)), clock_hour=CLOCK,
        price_usd_per_kwh=np.where((CLOCK >= 17) & (CLOCK < 21), 0.30, 0.10),
        network=SimpleNamespace(buses=buses, branches=branches),
    )


def _kerama_metrics(level_kw: float):
    """The part of a Metrics the figures read: ``series[scenario, realisation]``."""
    rng = np.random.default_rng(int(level_kw))
    series = {
        (s, real): SimpleNamespace(
            import_kw=pd.Series(level_kw + 100 * rng.random(24)),
            vm_pu=pd.DataFrame(1.0 - 0.05 * rng.random((5, 24))),
        )
        for s in (0, 1) for real in ("forecast", "low_voltage")
    }
    return SimpleNamespace(series=series)


def test_benders_trace():
    trace = pd.DataFrame({"iteration": [1, 2, 3], "lower_bound": [100.0, 100.0, 101.0],
                          "upper_bound": [130.0, 110.0, 101.5], "seconds": [1.0, 2.0, 3.0]})
    check(plot_benders_trace(trace, high_point_bound=100.0), n_axes=1)


def test_fig3_units_cover_every_table2_row():
    assert list(TABLE2_UNITS) == list(TABLE_COLUMNS)


def test_fig3_baseline_vs_proposed():
    table2 = pd.DataFrame({name: [4000.0 - 100 * k, 12000.0, 10.0 * k, -600.0]
                           for k, name in enumerate([*FIG3_SCHEDULES, "Uncontrolled, to full"])},
                          index=list(TABLE_COLUMNS))
    table2["paper baseline"] = [4500.0, 6000.0, 10.0, 2200.0]
    table2["paper proposed"] = [3600.0, 5100.0, np.nan, 2500.0]
    check(plot_fig3_baseline_vs_proposed(table2), n_axes=4)


def test_pessimistic_caps_from_the_committed_results():
    pess = pd.read_csv(repo_path("results/kerama2025/pessimistic.csv"))
    pess["cap_kw"] = pess["cap_fraction"] * 40 * 7.2
    fig = plot_pessimistic_caps(pess, optimistic_peak_kw=3400.0, uncontrolled_peak_kw=4900.0,
                                chosen_cap_kw=float(pess["cap_kw"].median()))
    check(fig, n_axes=1)


def test_feeder_load_profiles():
    schedules = {"Uncontrolled, same energy": _kerama_metrics(4000), "Bilevel, optimistic": _kerama_metrics(3000)}
    check(plot_feeder_load_profiles(_kerama_case(), schedules), n_axes=2)  # the price is a twin


def test_soc_envelopes():
    rng = np.random.default_rng(1)
    soc = pd.DataFrame([(a, t, ev, 0.25 + 0.02 * t + 0.05 * rng.random())
                        for a in (0, 1) for t in range(24) for ev in range(3)],
                       columns=["aggregator", "t", "ev", "soc"])
    fig = plot_soc_envelopes(soc, aggregator_buses=[18, 33], soc_required=0.8, clock_hour=CLOCK)
    check(fig, n_axes=2)


def test_worst_hour_voltage():
    schedules = {"Uncontrolled, same energy": _kerama_metrics(4000), "Bilevel, optimistic": _kerama_metrics(3000)}
    fig = plot_worst_hour_voltage(_kerama_case(), schedules, scenario=1, period=7, vmin_pu=0.95, vmax_pu=1.05)
    check(fig, n_axes=1)


def test_fig4_budget_radar():
    rows = ["gamma 0.10", "gamma 0.20 (baseline)", "gamma 0.30"]
    table3 = pd.DataFrame([(row, col, 100.0 * (k + 1) + j, 90.0 * (k + 1) + j)
                           for k, row in enumerate(rows) for j, col in enumerate(RADAR_SPOKES.values())],
                          columns=["row", "column", "computed", "paper"])
    fig = plot_fig4_budget_radar(table3)
    for ax in fig.axes:  # what the exemption below relies on: polar axes, each spoke named
        assert ax.name == "polar"
        assert [t.get_text() for t in ax.get_xticklabels()] == list(RADAR_SPOKES)
    check(fig, {ax: "a radar: its spokes are named by their tick labels and its radius (each metric over "
                    "its largest value across the budgets) by the figure's title" for ax in fig.axes},
          n_axes=2)


# --- notebook 02: evgrid.papers.eva2025.figures ---------------------------------------------


def _month_files():
    return {m: repo_path("results/eva2025/months", f"{m}.csv") for m in ev.STUDY_MONTHS}


def test_schedules():
    hours = np.arange(24)
    days = {label: SimpleNamespace(day=pd.Timestamp(day), n_periods=24, grid_limit_kw=350.0,
                                   price_eur_per_kwh=(80 + 40 * np.sin(hours / 4) - 60 * k) / 1e3)
            for k, (label, day) in enumerate([("typical", "2024-05-07"), ("negative", "2024-08-21")])}
    schedule = pd.DataFrame({"ev": [0, 0, 1, 1], "t": [8, 9, 9, 18], "p_ch_kw": [6.6, 6.6, 3.0, 0.0],
                             "p_dis_kw": [0.0, 0.0, 0.0, 6.6]})
    results = {label: {s: SimpleNamespace(schedule=schedule, site_kw=50 + 30 * np.sin(hours / 3) ** 2)
                       for s in ev.STRATEGIES} for label in days}
    fig = plot_schedules(days, results)
    n = len(ev.STRATEGIES)
    assert len(fig.axes) == 2 * 2 * n  # the panels, then a price twin per panel
    twins = fig.axes[2 * n:]
    for row in (twins[:n], twins[n:]):  # one day per row: its price axes are one axis, labelled once
        assert all(row[0].get_shared_y_axes().joined(row[0], ax) for ax in row)
        assert row[-1].get_ylabel() == "price (EUR/MWh)"
    check(fig)


def test_months_from_the_committed_results():
    metrics = pd.concat([pd.read_csv(f) for f in _month_files().values()], ignore_index=True)
    check(plot_months(ev.month_overview(metrics)), n_axes=2)


def test_month_profit_from_the_committed_results():
    metrics = pd.read_csv(_month_files()["2024-08"])
    check(plot_month_profit(metrics[metrics["variant"] == "base"], "2024-08"), n_axes=2)


def test_load_heatmap_from_the_committed_results():
    load = pd.read_csv(repo_path("results/eva2025/months/2024-08_load.csv"))
    check(plot_load_heatmap(load, "2024-08", grid_limit_kw=350.0), n_axes=4)  # three maps and the colour bar


# --- notebook 03: Priolkar & Kunkolienkar (2025) ------------------------------------------


def _clock():
    return (8 + np.arange(24)) % 24


def test_priolkar_prices():
    bp = 0.12 + 0.05 * np.sin(np.arange(24) / 4) ** 2
    check(plot_prices(_clock(), bp, {"exact optimum": 1.8 * bp, "EHO": 0.9 * bp}), n_axes=1)


def test_priolkar_load_profiles():
    loads = {"uncontrolled": 100 * np.sin(np.arange(24) / 8) ** 2, "centralised": np.full(24, 50.0)}
    check(plot_load_profiles(_clock(), loads, paper_peaks_kw={"uncontrolled": 413}), n_axes=1)


def test_priolkar_wait_histogram():
    fig = plot_wait_histogram({"EHO": np.array([0.2, 1.5, 2.5, 4.0, -0.1])}, paper_counts=[26, 15, 6, 3])
    assert wait_counts(np.array([0.2, 1.5, 2.5, 4.0, -0.1])).tolist() == [2, 1, 1, 1]
    check(fig, n_axes=1)


def test_priolkar_convergence_and_gaps():
    evals = np.arange(1, 6) * 50
    conv = pd.concat([pd.DataFrame({"method": m, "evaluations": evals, "f4_median": -1 / evals, "f4_q25": -2 / evals,
                                    "f4_q75": -0.5 / evals, "f4_min": -3 / evals, "f4_max": 0 * evals, "runs": 30})
                      for m in METHOD_LABELS])
    check(plot_convergence(conv, optimum=0.1, bound=0.12), n_axes=1)
    summary = pd.DataFrame([{"row": r, "method": m, "f4_median": v, "f4_q25": v - 0.01, "f4_q75": v + 0.01}
                            for r in ("0.6-0.3-0.1", "0.3-0.3-0.3-normalised")
                            for m, v in [*((m, -0.1) for m in METHOD_LABELS), ("exact", 0.2)]]).assign(upper_bound=0.25)
    check(plot_table9_gaps(summary), n_axes=1)


def test_priolkar_calibration():
    curve = pd.DataFrame({"epsilon_usd_per_h": [0.1, 0.2], "wait_median_h": [2.0, 1.0], "wait_q25_h": [1.8, 0.9],
                          "wait_q75_h": [2.2, 1.1], "runs": 30})
    check(plot_calibration(curve, 1.275, 0.175), n_axes=1)
