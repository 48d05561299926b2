"""The IEEE 13-node feeder against the IEEE PES published power-flow results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from evgrid.analysis.powerflow import run_ac_power_flow
from evgrid.networks import opendss
from evgrid.networks.ieee13 import ieee13_layout, ieee13_published_voltages, load_ieee13

#: Published per-unit voltages have four decimals; 0.002 pu is the
#: compendium's acceptance tolerance (params.yaml: ieee13_tolerance_pu).
VM_TOL_PU = 0.002
#: Published angles have two decimals.
VA_TOL_DEGREE = 0.5


@pytest.fixture(scope="module")
def feeder():
    return load_ieee13()


@pytest.fixture(scope="module")
def solved(feeder):
    result = opendss.solve_power_flow(feeder)
    assert feeder.net.ActiveCircuit.Solution.Converged
    return result


def _compare(solved: pd.DataFrame) -> pd.DataFrame:
    reference = ieee13_published_voltages()
    both = reference.merge(
        solved, on=["bus", "phase"], how="left", suffixes=("_published", ""), validate="1:1"
    )
    missing = both.loc[both["vm_pu"].isna(), ["bus", "phase"]]
    assert missing.empty, f"bus phases missing from the solution: {missing.values.tolist()}"
    both["vm_error_pu"] = (both["vm_pu"] - both["vm_pu_published"]).abs()
    # Wrap angle differences into (-180, 180] before taking their size.
    both["va_error_degree"] = (
        (both["va_degree"] - both["va_degree_published"] + 180.0) % 360.0 - 180.0
    ).abs()
    return both


def test_voltages_match_published_with_fixed_taps(solved):
    both = _compare(solved)
    assert len(both) == 35
    worst = both.loc[both["vm_error_pu"].idxmax()]
    assert worst["vm_error_pu"] <= VM_TOL_PU, (
        f"max |vm error| {worst['vm_error_pu']:.5f} pu at {worst['bus']}.{worst['phase']} "
        f"(solved {worst['vm_pu']:.4f}, published {worst['vm_pu_published']:.4f})"
    )
    worst = both.loc[both["va_error_degree"].idxmax()]
    assert worst["va_error_degree"] <= VA_TOL_DEGREE, (
        f"max |va error| {worst['va_error_degree']:.3f} deg at {worst['bus']}.{worst['phase']}"
    )


def test_losses_match_published(feeder):
    # The published results report about 111 kW of total losses.
    losses_kw = opendss.losses_kw(feeder)
    assert feeder.net.ActiveCircuit.Solution.Converged
    assert losses_kw == pytest.approx(111.0, abs=1.0)


def test_tables_have_the_published_phases_and_load(feeder):
    buses, branches = feeder.buses, feeder.branches
    phases = buses.groupby("bus")["phase"].agg("".join).to_dict()
    assert phases["646"] == "bc"
    assert phases["645"] == "bc"
    assert phases["611"] == "c"
    assert phases["652"] == "a"
    assert phases["684"] == "ac"
    assert phases["634"] == "abc"
    assert buses.loc[buses["is_slack"], "bus"].unique().tolist() == ["650"]
    assert buses.loc[buses["bus"] == "634", "vn_kv"].unique().tolist() == [0.48]
    assert set(branches["kind"]) == {"line", "switch", "transformer", "regulator"}

    # Spot loads 3266 kW + 1986 kvar and the distributed load 200 kW + 116 kvar
    # on 632-671 (sums of the published load tables).
    total_kw = buses["p_load_pu"].sum() * feeder.base_mva * 1e3
    total_kvar = buses["q_load_pu"].sum() * feeder.base_mva * 1e3
    assert total_kw == pytest.approx(3466.0, abs=1e-6)
    assert total_kvar == pytest.approx(2102.0, abs=1e-6)


def test_phase_impedance_matrices_are_symmetric(feeder):
    zabc = feeder.extra["zabc"]
    lines = feeder.branches.loc[feeder.branches["kind"] == "line", "branch"]
    assert set(zabc["branch"]) == set(lines)
    transposed = zabc.rename(columns={"phase_i": "phase_j", "phase_j": "phase_i"})
    both = zabc.merge(transposed, on=["branch", "phase_i", "phase_j"], validate="1:1")
    for column in ("r_ohm_per_mile", "x_ohm_per_mile", "b_us_per_mile"):
        np.testing.assert_array_equal(both[f"{column}_x"], both[f"{column}_y"])


def test_auto_regulators_hold_the_published_taps():
    # Started from the published taps, the RegControls (published settings)
    # find them inside the band and leave them, so the voltages still match.
    feeder = load_ieee13(regulator="auto")
    both = _compare(opendss.solve_power_flow(feeder))
    assert feeder.net.ActiveCircuit.Solution.Converged
    transformers = feeder.net.ActiveCircuit.Transformers
    taps = {}
    for phase in "abc":
        transformers.Name = f"reg_{phase}"
        transformers.Wdg = 2
        taps[phase] = round((transformers.Tap - 1.0) / 0.00625)
    assert taps == {"a": 10, "b": 8, "c": 11}
    assert both["vm_error_pu"].max() <= VM_TOL_PU


def test_substation_impedance_moves_the_slack_to_115_kv():
    feeder = load_ieee13(with_substation_impedance=True)
    solved = opendss.solve_power_flow(feeder)
    assert feeder.net.ActiveCircuit.Solution.Converged
    assert feeder.buses.loc[feeder.buses["is_slack"], "bus"].unique().tolist() == ["sourcebus"]
    at_650 = solved.loc[solved["bus"] == "650", "vm_pu"]
    # 1 % + j8 % on 5 MVA carrying about 3.6 MW + 1.7 Mvar drops 650 by ~3 %.
    assert at_650.between(0.94, 0.99).all(), at_650.tolist()


def test_layout_covers_every_bus(feeder):
    layout = ieee13_layout()
    assert set(feeder.buses["bus"]) <= set(layout["bus"])
    pd.testing.assert_frame_equal(feeder.extra["layout"], layout)


def test_the_ac_power_flow_runs_opendss_for_an_opendss_network():
    # Dispatch is on the backend, not on the network's name.
    feeder = load_ieee13()
    assert feeder.backend == "opendss"
    renamed = dataclasses.replace(feeder, name="another_opendss_feeder")
    result = run_ac_power_flow(renamed)
    assert result.network == "another_opendss_feeder"
    assert len(result.buses) == len(feeder.buses)  # one row per bus phase
    assert result.losses_kw == pytest.approx(111.0, abs=1.0)


def test_bad_regulator_option_is_rejected():
    with pytest.raises(ValueError, match="regulator"):
        load_ieee13(regulator="banana")
