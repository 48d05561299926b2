"""The part-2 figures of ``evgrid.papers.villanueva2025.figures`` (notebook 05, the centralized OPF).

Each returns a Figure whose every axes has an x and a y label with a unit in brackets, and draws
what it is given: small synthetic ``days.csv`` and ``caps.csv`` frames with known values.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

from evgrid.papers.villanueva2025.authors import LOAD_BUSES
from evgrid.papers.villanueva2025.figures import (
    plot_caps,
    plot_caps_response,
    plot_nsp,
    plot_opf_day,
    plot_system_load,
)

UNIT = re.compile(r"\(.+\)|\[.+\]")
T = np.arange(1, 49)


@pytest.fixture(autouse=True)
def _headless():
    plt.switch_backend("Agg")
    yield
    plt.close("all")


def check(fig: Figure, *, n_axes: int | None = None) -> Figure:
    """``fig`` is a Figure with ``n_axes`` axes, each with x and y labels that carry a unit."""
    assert isinstance(fig, Figure)
    if n_axes is not None:
        assert len(fig.axes) == n_axes, [ax.get_title() for ax in fig.axes]
    for k, ax in enumerate(fig.axes):
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            assert UNIT.search(label), f"axes {k} ({ax.get_title()!r}): {axis} label {label!r} has no unit"
    return fig


def one_day(profiles: str, scenario: str, sample: str, load: float, nsp: dict[int, float] | None = None) -> pd.DataFrame:
    """48 rows of days.csv: a flat load ``load`` + t/100 MW, generation = load + 10 MW - NSP."""
    pd_mw = load + T / 100.0
    nsp_mw = np.array([(nsp or {}).get(int(t), 0.0) for t in T])
    return pd.DataFrame({"profiles": profiles, "scenario": scenario, "sample": sample, "t": T, "pd_mw": pd_mw,
                         "p_slack_mw": pd_mw + 10.0 - 40.0 - nsp_mw, "p_gen2_mw": 40.0, "nsp_mw": nsp_mw,
                         "nsp_bus": np.where(nsp_mw > 0, 14, 0)})


def synthetic_days() -> pd.DataFrame:
    parts = [one_day("none", "", "", 200.0)]
    for k, scenario in enumerate(("Sc1", "Sc2", "Sc3")):
        for j, sample in enumerate(("min", "max")):
            nsp = {33: 2.0} if (scenario, sample) == ("Sc2", "max") else None
            nsp = {27: 3.5, 35: 7.0} if (scenario, sample) == ("Sc3", "min") else nsp
            parts.append(one_day("authors_paper", scenario, sample, 210.0 + 10 * k + j, nsp))
    parts.append(one_day("own", "Sc1", "min", 205.0))
    days = pd.concat(parts, ignore_index=True)
    days.loc[days["profiles"] == "none", ["scenario", "sample"]] = np.nan  # as pd.read_csv gives it
    return days


def steps(ax) -> list[StepPatch]:
    return [p for p in ax.patches if isinstance(p, StepPatch)]


def test_system_load_per_scenario_and_sample():
    days = synthetic_days()
    fig = check(plot_system_load(days), n_axes=2)
    for ax, j in zip(fig.axes, (0, 1), strict=True):
        patches = steps(ax)
        labels = [p.get_label() for p in patches]
        assert labels == ["no EVs", "Sc1", "Sc2", "Sc3"]
        values, edges, _ = patches[0].get_data()
        assert edges[0] == 0 and edges[-1] == 24 and len(values) == 48
        assert values == pytest.approx(200.0 + T / 100.0)
        sc3, _, _ = patches[3].get_data()
        assert sc3 == pytest.approx(230.0 + j + T / 100.0)  # the min (j = 0) and max (j = 1) sample
    plt.close(fig)
    # one row of panels per profile set; a set without a day is an error
    check(plot_system_load(days, ("authors_paper", "own")), n_axes=4)
    with pytest.raises(ValueError, match="profiles = 'authors_resolved'"):
        plot_system_load(days, ("authors_resolved",))


def test_opf_day_generation_load_and_nsp():
    days = synthetic_days()
    cases = [("authors_paper", "Sc1", "max"), ("authors_paper", "Sc3", "min")]
    fig = check(plot_opf_day(days, cases, firm_capacity_mw=272.4), n_axes=2)
    top, bottom = fig.axes
    generation, load = steps(top)[2].get_data()[0], steps(top)[3].get_data()[0]  # Sc3 min
    assert load == pytest.approx(230.0 + T / 100.0)
    assert generation[26] == pytest.approx(load[26] + 10.0 - 3.5)  # generation at buses 1 + 2 only
    nsp = steps(bottom)[1]
    assert nsp.get_data()[0][[26, 34]] == pytest.approx([3.5, 7.0])
    assert "5.25 MWh" in nsp.get_label()  # (3.5 + 7.0) MW x 0.5 h
    assert any(line.get_ydata()[0] == 272.4 for line in top.lines)
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows"):
        plot_opf_day(days, [("own", "Sc3", "max")])
    with pytest.raises(ValueError, match="cases is empty"):
        plot_opf_day(days, [])


def test_nsp_bars_only_for_the_days_with_nsp():
    days = synthetic_days()
    fig = check(plot_nsp(days), n_axes=1)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label().split(":")[0] for c in bars] == ["Sc2 max, authors' profiles", "Sc3 min, authors' profiles"]
    assert [b.get_height() for b in bars[1]] == pytest.approx([3.5, 7.0])
    # bar centres near the periods' midpoints: t = 27 is 13:00-13:30
    assert bars[1][0].get_x() + bars[1][0].get_width() / 2 == pytest.approx(13.25, abs=0.25)
    assert "2 of 8 days" in ax.get_title()
    plt.close(fig)
    quiet = days.assign(nsp_mw=0.0)
    fig = check(plot_nsp(quiet), n_axes=1)
    assert any(t.get_text() == "no NSP in any case" for t in fig.axes[0].texts)


def synthetic_caps() -> pd.DataFrame:
    rows = []
    for t in T:
        for k, bus in enumerate(LOAD_BUSES):
            cap = 1.0 + k
            theirs = cap + (2.0 if bus == 4 else -2.0 if bus == 9 else 0.001)
            rows.append((t, bus, 10.0 * (k + 1), cap, theirs))
    return pd.DataFrame(rows, columns=["t", "bus", "pd_mw", "cap_mw", "authors_cap_mw"])


def test_caps_stacked_with_both_totals_and_the_differences():
    caps = synthetic_caps()
    fig = check(plot_caps(caps), n_axes=2)
    left, right = fig.axes
    stacked = [p for p in steps(left) if p.get_label().startswith("bus")]
    assert len(stacked) == len(LOAD_BUSES)
    top, _, baseline = stacked[-1].get_data()
    total = sum(1.0 + k for k in range(len(LOAD_BUSES)))
    assert top == pytest.approx(np.full(48, total))  # the last bus's band ends at the total
    totals = {p.get_label(): p.get_data()[0] for p in steps(left) if "total" in p.get_label()}
    assert totals["our total"] == pytest.approx(np.full(48, total))
    assert totals["authors' total"] == pytest.approx(np.full(48, total + 0.009))  # +2 - 2 + 9 x 0.001
    # only buses 4 and 9 differ by more than 0.01 MW: they are named, the rest grey and unnamed
    named = {p.get_label(): p.get_data()[0] for p in steps(right) if p.get_label().startswith("bus")}
    assert set(named) == {"bus 4", "bus 9"}
    assert named["bus 4"] == pytest.approx(np.full(48, -2.0))
    plt.close(fig)


def test_caps_response_one_panel_per_bus_with_the_cap_and_both_samples():
    caps = synthetic_caps()
    rows = [("min", bus, t, 0.5 * (1.0 + k)) for t in T for k, bus in enumerate(LOAD_BUSES)]
    rows += [("max", bus, t, np.nan if bus == 12 else 0.9 * (1.0 + k)) for t in T for k, bus in enumerate(LOAD_BUSES)]
    profiles = pd.DataFrame(rows, columns=["sample", "bus", "t", "p_em_mw"])
    fig = check(plot_caps_response(profiles, caps), n_axes=len(LOAD_BUSES))
    for ax, (k, bus) in zip(fig.axes, enumerate(LOAD_BUSES), strict=True):
        assert ax.get_title() == f"bus {bus}"
        drawn = {p.get_label(): p.get_data()[0] for p in steps(ax)}
        assert drawn["cap"] == pytest.approx(np.full(48, 1.0 + k))
        assert drawn[r"$P^{\mathrm{EM}}$, min sample"] == pytest.approx(np.full(48, 0.5 * (1.0 + k)))
        if bus == 12:  # no schedule: not drawn, and said so
            assert r"$P^{\mathrm{EM}}$, max sample" not in drawn
            assert any("no schedule: max" in t.get_text() for t in ax.texts)
        else:
            assert drawn[r"$P^{\mathrm{EM}}$, max sample"] == pytest.approx(np.full(48, 0.9 * (1.0 + k)))
