"""The figures of ``evgrid.papers.villanueva2025.figures`` (notebook 04): each returns a Figure whose
every axes has an x and a y label with a unit in brackets, and draws what it is given.

Inputs: the authors' dataset where it is cheap to read (histograms, chosen samples, their P^EM
files), the Monte Carlo with 5 samples per scenario, the paper's values through their loader,
and small synthetic run tables.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

from evgrid.core.compare import load_paper_values
from evgrid.papers.villanueva2025 import authors, dataset
from evgrid.papers.villanueva2025.figures import (
    mcs_table1,
    plot_bus_counts,
    plot_daily_energy,
    plot_gaps,
    plot_profiles,
    plot_sample_energy,
    plot_speed_by_hour,
    plot_time_distributions,
)
from evgrid.papers.villanueva2025.mcs import McsOptions, run_mcs

UNIT = re.compile(r"\(.+\)|\[.+\]")


@pytest.fixture(autouse=True)
def _headless():
    plt.switch_backend("Agg")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def paper() -> pd.DataFrame:
    return load_paper_values("villanueva2025")


@pytest.fixture(scope="module")
def small_mcs():
    return {mode: run_mcs(McsOptions(mode=mode, n_samples=(5, 5, 5))) for mode in ("authors", "as_described")}


def check(fig: Figure, *, n_axes: int | None = None) -> Figure:
    """``fig`` is a Figure with ``n_axes`` axes, each with x and y labels that carry a unit."""
    assert isinstance(fig, Figure)
    assert fig.axes, "the figure has no axes"
    if n_axes is not None:
        assert len(fig.axes) == n_axes, [ax.get_title() for ax in fig.axes]
    for k, ax in enumerate(fig.axes):
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            assert UNIT.search(label), f"axes {k} ({ax.get_title()!r}): {axis} label {label!r} has no unit"
    return fig


def test_the_check_finds_a_label_without_a_unit():
    fig, ax = plt.subplots()
    ax.set_xlabel("clock time (h)")
    ax.set_ylabel("power")
    with pytest.raises(AssertionError, match="y label 'power'"):
        check(fig)
    plt.close(fig)


def _paper_normals(paper: pd.DataFrame) -> dict[str, tuple[float, float]]:
    text = paper[paper["table"] == "Text"].set_index("row")["value"]
    return {key: (float(text[f"{name} time mean"]), float(text[f"{name} time sd"]))
            for key, name in (("departure", "Departure"), ("arrival", "Arrival"))}


def test_time_distributions_on_the_authors_workbook(paper, small_mcs):
    hist, fitted = dataset.time_histograms(), dataset.fit_time_normals()
    fig = check(plot_time_distributions(hist, fitted, _paper_normals(paper), small_mcs["authors"][1]), n_axes=2)
    for ax, key in zip(fig.axes, ("departure", "arrival"), strict=True):
        assert ax.get_xlim() == (0, 28)
        # the workbook's histogram is a density: its bars integrate to one
        assert sum(p.get_height() * p.get_width() for p in ax.patches if not isinstance(p, StepPatch)) \
            == pytest.approx(1.0)
        fit = ax.lines[0]
        peak = fit.get_xdata()[np.argmax(fit.get_ydata())]
        assert peak == pytest.approx((fitted[key][0] - 1) / 2, abs=0.05)
        paper_line = ax.lines[1]
        assert paper_line.get_xdata()[np.argmax(paper_line.get_ydata())] == pytest.approx(
            _paper_normals(paper)[key][0], abs=0.05)
    plt.close(fig)


def test_time_distributions_draw_a_post_midnight_arrival_after_24_h():
    hist = pd.DataFrame({"departures": np.r_[np.zeros(16), 10.0, np.zeros(39)],
                         "arrivals": np.r_[np.zeros(40), 10.0, np.zeros(15)]}, index=pd.RangeIndex(1, 57))
    fig = plot_time_distributions(hist, {"departure": (17.0, 2.0), "arrival": (41.0, 4.0)},
                                  {"departure": (8.0, 1.0), "arrival": (22.0, 4.0)},
                                  {"departure": np.array([17, 17]), "arrival": np.array([3, 41])})
    check(fig, n_axes=2)
    values, edges, _ = next(p for p in fig.axes[1].patches if isinstance(p, StepPatch)).get_data()
    centres = (edges[:-1] + edges[1:]) / 2
    assert sorted(centres[values > 0]) == pytest.approx([20.0, 25.0])  # slot 41 = 20:00, slot 3 + 48 = 25:00
    plt.close(fig)


def test_speed_by_hour_per_schedule(small_mcs):
    schedules, classes = {}, {}
    for mode in ("authors", "as_described"):
        options = McsOptions(mode=mode)
        resolved = options.resolved()
        schedules[mode] = np.array(resolved["schedule"])
        classes[mode] = {"HS": options.speed_hs_kmh, "MS": options.speed_ms_kmh, "LS": resolved["speed_ls_kmh"]}
    fig = check(plot_speed_by_hour(schedules, classes), n_axes=1)
    steps = [p for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    authors_means, authors_edges, _ = steps[0].get_data()
    described_means, described_edges, _ = steps[1].get_data()
    assert len(authors_means) == 48 and len(described_means) == 96
    assert authors_edges[-1] == described_edges[-1] == 24
    # the authors read the quarter-hour schedule per half hour: 14:30 is MS, 17:00 LS at 20 km/h
    assert authors_means[29] == classes["authors"]["MS"][0]
    assert authors_means[34] == classes["authors"]["LS"][0]
    # the workbook's schedule: 08:30-10:45 LS at 25 km/h, midnight HS
    assert described_means[34] == classes["as_described"]["LS"][0] and described_means[0] == 50
    plt.close(fig)
    # drawn speeds (samples x slots) and one shared class table work too
    shared = dataset.speed_classes()
    check(plot_speed_by_hour({"drawn": small_mcs["authors"][1].speed_kmh, "schedule": schedules["authors"]},
                             shared), n_axes=1)
    plt.close("all")


def test_sample_energy_marks_ours_and_the_authors(small_mcs):
    samples = dataset.read_samples()
    for mode, scenarios in small_mcs.items():
        fig = check(plot_sample_energy(scenarios, samples), n_axes=3)
        for ax, sc in zip(fig.axes, scenarios.values(), strict=True):
            xs = {round(float(line.get_xdata()[0]), 6) for line in ax.lines}
            assert round(float(sc.gchr_min_mwh[sc.sample_min]), 6) in xs
            assert round(float(sc.gchr_max_mwh[sc.sample_max]), 6) in xs
            authors_rows = samples[samples["scenario"].isin([f"Sc{sc.scenario}", f"Sc{sc.scenario}-CR"])]
            assert {round(v, 6) for v in authors_rows["gchr_mwh_reported"]} <= xs, mode
        plt.close(fig)
    check(plot_sample_energy({1: small_mcs["authors"][1]}, None), n_axes=1)
    plt.close("all")


def test_bus_counts_ours_against_table1(paper, small_mcs):
    ours = mcs_table1(small_mcs["authors"])
    assert ours.shape == (11, 12)
    for column in ours:
        assert ours[column].sum() == dataset.SCENARIO_EVS[int(column.split()[1])]
    fig = check(plot_bus_counts(ours, paper), n_axes=6)
    # the outlined bars are the paper's cells: Sc1 min, Dep at the first bus
    table1 = paper[paper["table"] == "Table 1"].set_index(["row", "column"])["value"]
    outlined = [p for p in fig.axes[0].patches if p.get_facecolor()[3] == 0]
    assert outlined[0].get_height() == table1[("Bus 2", "Scenario 1 min Dep")]
    plt.close(fig)
    # the authors' samples' table (wide, both sides) gives the same panels
    check(plot_bus_counts(dataset.table1_from_assignment(), dataset.table1_from_assignment()), n_axes=6)
    plt.close("all")


def _computed_energy() -> pd.DataFrame:
    energy = authors.authors_daily_energy().rename(columns={"energy_mwh": "daily_energy_mwh"})
    return pd.concat([energy.assign(pricing="corrected"), energy.assign(pricing="authors",
                                                                        daily_energy_mwh=energy["daily_energy_mwh"] * 1.1)])


def test_daily_energy_against_tables_2_and_4(paper):
    computed = _computed_energy()
    fig = check(plot_daily_energy(computed, paper, authors.authors_daily_energy()), n_axes=8)
    assert "log" in fig.get_suptitle()  # Table 2 spans 0.1-80 MWh
    assert fig.axes[0].get_yscale() in ("log", "symlog")
    # the paper's markers sit at Table 2's values
    table2 = paper[(paper["table"] == "Table 2") & (paper["column"] == "Scenario 1 min")]
    circles = next(line for line in fig.axes[0].lines if line.get_label().startswith("paper"))
    assert circles.get_ydata()[0] == pytest.approx(float(table2.set_index("row")["value"]["Bus 2"]))
    plt.close(fig)


def test_daily_energy_scale_follows_the_values():
    small = pd.DataFrame({"scenario": "Sc1", "sample": ["min", "min", "max"], "bus": [2, 3, 2],
                          "daily_energy_mwh": [1.0, 2.0, 1.5]})
    fig = check(plot_daily_energy(small), n_axes=2)
    assert fig.axes[0].get_yscale() == "linear" and "linear" in fig.get_suptitle()
    plt.close(fig)
    spread = small.assign(daily_energy_mwh=[0.0, 60.0, -0.5])
    fig = check(plot_daily_energy(spread), n_axes=2)
    assert fig.axes[0].get_yscale() == "symlog" and "symmetric-log" in fig.get_suptitle()
    plt.close(fig)


def test_profiles_of_one_sample():
    pem = authors.read_pem_profiles().rename(columns={"pem_mw": "p_em_mw"})
    one = pem[(pem["scenario"] == "Sc1") & (pem["sample"] == "min")].assign(pricing="authors")
    fig = check(plot_profiles(one, "Sc1, min sample: the authors' P^EM"), n_axes=1)
    ax = fig.axes[0]
    bus_lines = [line for line in ax.lines if line.get_label().startswith("bus")]
    assert len(bus_lines) == 11
    assert bus_lines[0].get_xdata()[0] == 0.25 and bus_lines[0].get_xdata()[-1] == 23.75  # period midpoints
    assert any(np.all(np.asarray(line.get_ydata()) == 0) for line in ax.lines)  # the zero line
    plt.close(fig)
    two = pd.concat([one, one.assign(pricing="corrected")])
    check(plot_profiles(two, "two pricings"), n_axes=2)
    with pytest.raises(ValueError, match="scenario/sample pairs"):
        plot_profiles(pem[pem["scenario"] == "Sc1"].rename(columns={"pem_mw": "p_em_mw"}), "two samples")
    plt.close("all")


def test_gaps_on_a_log_axis_with_the_target():
    runs = pd.DataFrame({
        "run": ["Sc1_min_bus02", "Sc1_min_bus03", "Sc3-CR_max_bus14", "Sc1_min_bus02", "Sc1_min_bus03",
                "Sc3-CR_max_bus14"],
        "scenario": ["Sc1", "Sc1", "Sc3-CR"] * 2, "sample": ["min", "min", "max"] * 2, "bus": [2, 3, 14] * 2,
        "pricing": ["corrected"] * 3 + ["authors"] * 3, "status": ["optimal", "time limit", "failed: x"] * 2,
        "objective_usd": 1.0, "bound_usd": 0.9, "rel_gap": [0.0, 0.02, np.nan, 0.004, 0.3, 1e-3],
        "daily_energy_mwh": 1.0, "authors_rel_gap": [1.0, 0.95, np.nan] * 2, "authors_objective_incumbent": 1.0,
    })
    fig = check(plot_gaps(runs), n_axes=1)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert any(line.get_label() == "1 % target" and line.get_ydata()[0] == 1.0 for line in ax.lines)
    ours = next(line for line in ax.lines if line.get_label() == "ours, corrected pricing")
    assert list(ours.get_ydata()) == pytest.approx([1e-3, 2.0])  # zero drawn at the floor, the failed run left out
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Sc1", "Sc3-CR"]
    plt.close(fig)
