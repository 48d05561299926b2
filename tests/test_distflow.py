"""Linearised DistFlow (:mod:`evgrid.formulations.distflow`) against pandapower's AC power flow.

The reference is the IEEE 33-bus feeder of Baran & Wu (1989): 202.7 kW of
losses and 0.9131 pu at bus 18 (index 17) in the AC power flow. The
tolerances below are the errors measured when the tests were written
(HiGHS 1.15.1, pandapower 3.5.6), rounded up by 10-30 %; the comments give
the measured values.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandapower as pp
import pandas as pd
import pyomo.environ as pyo
import pytest

from evgrid.analysis.distflow_check import build_distflow_check_model, distflow_vs_ac
from evgrid.analysis.powerflow import run_ac_power_flow
from evgrid.core.solvers import InfeasibleModelError, solve
from evgrid.formulations.distflow import declare_lindistflow, default_flow_bounds_kw, radial_lines
from evgrid.formulations.pwl import linearisation_error
from evgrid.networks import load_ieee33

AC_LOSSES_KW = 202.7  # Baran & Wu (1989)
MIN_VOLTAGE_BUS = 17  # bus 18 in Baran & Wu's numbering


@pytest.fixture(scope="module")
def ieee33():
    return load_ieee33()


@pytest.fixture(scope="module")
def ieee33_half_load():
    return load_ieee33(load_scale=0.5)  # AC minimum 0.9583 pu at bus 18


@pytest.fixture(scope="module")
def comparisons(ieee33):
    """DistFlow-vs-AC tables of the base case, one per (losses, n_segments)."""
    cases = [("none", 8), ("pwl_convex", 8), ("pwl_binary", 4), ("pwl_binary", 8)]
    return {case: distflow_vs_ac(ieee33, losses=case[0], n_segments=case[1]) for case in cases}


def _min_voltage_bus(table: pd.DataFrame, column: str) -> int:
    return int(table.loc[table[column].idxmin(), "bus"])


def _grid_losses_kw(model: pyo.ConcreteModel) -> float:
    return sum(pyo.value(model.grid.p_loss_kw[line, 0]) for line in model.grid.lines)


def _vm_pu(model: pyo.ConcreteModel) -> pd.Series:
    grid = model.grid
    return pd.Series({bus: np.sqrt(pyo.value(grid.v_sq_pu[bus, 0])) for bus in grid.buses})


# --------------------------------------------------------------------------
# Against the AC power flow
# --------------------------------------------------------------------------


def test_lindistflow_overestimates_ac_voltages_by_less_than_0_0035_pu(comparisons):
    table = comparisons[("none", 8)]
    assert table.attrs["solve"].status == "optimal"
    assert table.attrs["losses_kw_ac"] == pytest.approx(AC_LOSSES_KW, abs=0.5)
    assert table.attrs["losses_kw"] == 0.0
    # Measured 0.00284 pu at bus 18. Dropping the losses understates every
    # flow, hence every voltage drop: LinDistFlow is above AC at every bus.
    assert table["error_pu"].abs().max() < 0.0035
    assert (table["error_pu"] > -1e-9).all()
    assert _min_voltage_bus(table, "vm_pu") == MIN_VOLTAGE_BUS
    assert _min_voltage_bus(table, "vm_pu_ac") == MIN_VOLTAGE_BUS
    assert table["vm_pu"].min() == pytest.approx(0.9159, abs=0.0005)


def test_pwl_convex_losses_within_8_percent_and_voltages_within_0_0004_pu(comparisons):
    table = comparisons[("pwl_convex", 8)]
    no_losses = comparisons[("none", 8)]
    assert table.attrs["solve"].status == "optimal"
    # Measured 188.5 kW (-7.0 %): V0 = 1 in l = S^2 / V0^2 costs -5.3 %
    # (the AC flows themselves give 191.9 kW with V0 = 1), the tangents the rest.
    # Both under-estimate, so the DistFlow losses stay below AC.
    ac = table.attrs["losses_kw_ac"]
    assert table.attrs["losses_kw"] == pytest.approx(ac, rel=0.08)
    assert table.attrs["losses_kw"] < ac
    # Measured 0.00030 pu, against 0.00284 pu without losses.
    assert table["error_pu"].abs().max() < 0.0004
    assert table["error_pu"].abs().max() < no_losses["error_pu"].abs().max() / 5
    assert _min_voltage_bus(table, "vm_pu") == MIN_VOLTAGE_BUS


@pytest.mark.parametrize(
    ("n_segments", "rel_tol"),
    # Measured -3.7 % (8 segments) and +6.6 % (4 segments: the base-case flow
    # of each line sits mid-way in a wide segment, where the chord is high).
    [(8, 0.045), (4, 0.075)],
)
def test_pwl_binary_losses_within_a_few_percent_of_ac(comparisons, n_segments, rel_tol):
    table = comparisons[("pwl_binary", n_segments)]
    assert table.attrs["solve"].status == "optimal"
    assert table.attrs["losses_kw"] == pytest.approx(table.attrs["losses_kw_ac"], rel=rel_tol)
    # Measured 0.00021 pu (8) and 0.00007 pu (4).
    assert table["error_pu"].abs().max() < 0.0003
    assert _min_voltage_bus(table, "vm_pu") == MIN_VOLTAGE_BUS


def test_pwl_binary_and_pwl_convex_agree_and_bracket_the_square(comparisons):
    binary, convex = comparisons[("pwl_binary", 8)], comparisons[("pwl_convex", 8)]
    # Measured: voltages 0.00009 pu apart, losses 195.2 vs 188.5 kW (3.5 %).
    assert (binary["vm_pu"] - convex["vm_pu"]).abs().max() < 0.00015
    assert binary.attrs["losses_kw"] == pytest.approx(convex.attrs["losses_kw"], rel=0.045)
    # The chords lie above the parabola, the tangents below it.
    assert binary.attrs["losses_kw"] > convex.attrs["losses_kw"]


def test_with_ac_reference_voltages_pwl_convex_reproduces_the_ac_power_flow(ieee33):
    # With V0 = the AC voltage of each sending bus, the only approximation left
    # is the tangents; 16 of them recover the AC solution (measured 202.58 kW,
    # 1e-6 pu), which checks Eqs. (2)-(5) and their signs and units.
    ac = run_ac_power_flow(ieee33)
    model = build_distflow_check_model(
        ieee33,
        losses="pwl_convex",
        n_segments=16,
        v_loss_ref_pu=ac.buses.set_index("bus")["vm_pu"].to_dict(),
    )
    assert solve(model).status == "optimal"
    assert _grid_losses_kw(model) == pytest.approx(ac.losses_kw, rel=0.002)
    vm = _vm_pu(model)
    assert (vm - ac.buses.set_index("bus")["vm_pu"]).abs().max() < 1e-5
    # Eq. (7): the import is the load plus the losses.
    load_kw = ieee33.buses["p_load_pu"].sum() * ieee33.base_mva * 1e3
    assert pyo.value(model.grid.p_import_kw[0]) == pytest.approx(
        load_kw + _grid_losses_kw(model), abs=1e-6
    )


# --------------------------------------------------------------------------
# The piecewise-linear approximation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_segments", [1, 2, 4, 8, 16])
def test_linearisation_error_is_the_largest_chord_and_tangent_error(n_segments):
    p_bar = 3.0
    x = np.linspace(-p_bar, p_bar, 200_001)
    points = np.linspace(-p_bar, p_bar, n_segments + 1)
    chord = np.interp(x, points, points**2)
    mids = 0.5 * (points[:-1] + points[1:])
    tangents = np.max(2.0 * mids[:, None] * x[None, :] - mids[:, None] ** 2, axis=0)
    expected = linearisation_error(n_segments, p_bar)
    assert expected == pytest.approx((p_bar / n_segments) ** 2)
    assert np.max(chord - x**2) == pytest.approx(expected, rel=1e-6)
    assert np.max(x**2 - tangents) == pytest.approx(expected, rel=1e-6)
    assert np.min(chord - x**2) >= -1e-12 and np.min(x**2 - tangents) >= -1e-12


def test_linearisation_error_falls_as_one_over_n_squared():
    assert linearisation_error(4, 1000.0) == pytest.approx(62_500.0)
    for n in (1, 3, 8):
        assert linearisation_error(2 * n, 1.0) == pytest.approx(linearisation_error(n, 1.0) / 4)


def test_default_flow_bounds_follow_the_load_each_line_feeds(ieee33):
    bounds = default_flow_bounds_kw(ieee33)
    lines = radial_lines(ieee33)
    # The first line feeds the whole feeder (3715 kW + 2300 kvar).
    assert lines.loc[0, "downstream_load_kw"] == pytest.approx(3715.0)
    assert bounds.loc[0, "p_bar_kw"] == pytest.approx(1.5 * 3715.0)
    assert bounds.loc[0, "q_bar_kvar"] == pytest.approx(1.5 * 2300.0)
    # Line 17-18 feeds bus 18 only (90 kW), floored at 5 % of the feeder's load.
    line_18 = lines.index[lines["receiving_bus"] == MIN_VOLTAGE_BUS][0]
    assert bounds.loc[line_18, "p_bar_kw"] == pytest.approx(1.5 * 0.05 * 3715.0)


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


def test_voltage_limits_make_the_stressed_base_case_infeasible(ieee33):
    # AC gives 0.913 pu at bus 18, below vmin = 0.95; so does DistFlow.
    assert run_ac_power_flow(ieee33).min_vm["vm_pu"] < 0.95
    model = build_distflow_check_model(ieee33, losses="pwl_convex", enforce_voltage_limits=True)
    with pytest.raises(InfeasibleModelError):
        solve(model)


def test_voltage_margin_tightens_the_limit_by_exactly_the_margin(ieee33_half_load):
    half = ieee33_half_load
    free = build_distflow_check_model(half, losses="pwl_convex", enforce_voltage_limits=True)
    assert solve(free).status == "optimal"
    headroom = pyo.value(free.grid.v_sq_pu[MIN_VOLTAGE_BUS, 0]) - 0.95**2
    assert headroom == pytest.approx(0.01583, abs=0.0002)  # 0.9583^2 - 0.95^2

    def with_margin(bus, lower, upper=0.0, losses="pwl_convex"):
        return build_distflow_check_model(
            half,
            losses=losses,
            enforce_voltage_limits=True,
            voltage_margin_pu={(bus, 0): (lower, upper)},
        )

    assert solve(with_margin(MIN_VOLTAGE_BUS, 0.95 * headroom)).status == "optimal"
    with pytest.raises(InfeasibleModelError):
        solve(with_margin(MIN_VOLTAGE_BUS, 1.05 * headroom))
    # The margin is per bus: bus 2 (index 1) has far more headroom.
    assert solve(with_margin(1, 1.05 * headroom)).status == "optimal"
    # Upper margin: bus 2 sits at 0.9985 pu, 0.105 pu^2 under vmax^2 = 1.1025.
    assert solve(with_margin(1, 0.0, 0.10, losses="none")).status == "optimal"
    with pytest.raises(InfeasibleModelError):
        solve(with_margin(1, 0.0, 0.11, losses="none"))


def test_pwl_convex_can_overstate_losses_to_meet_an_upper_voltage_limit(ieee33_half_load):
    # The tangents only bound the squares from below. An upper voltage limit
    # that the physics cannot meet is then "met" by fictitious losses on line
    # 1-2, which lower every voltage downstream; "pwl_binary" fixes the square
    # by the flow and finds the case infeasible, as LinDistFlow does above.
    half = ieee33_half_load
    margin = {(1, 0): (0.0, 0.11)}
    convex = build_distflow_check_model(
        half, losses="pwl_convex", enforce_voltage_limits=True, voltage_margin_pu=margin
    )
    assert solve(convex).status == "optimal"
    flow_kw, loss_kw = (
        pyo.value(convex.grid.p_flow_kw[0, 0]),
        pyo.value(convex.grid.p_loss_kw[0, 0]),
    )
    # Half load is 1858 kW; the AC loss of line 1-2 is ~3 kW at that load.
    assert flow_kw > 3000.0 and loss_kw > 10.0
    binary = build_distflow_check_model(
        half, losses="pwl_binary", enforce_voltage_limits=True, voltage_margin_pu=margin
    )
    with pytest.raises(InfeasibleModelError):
        solve(binary)


def _with_rating_on_first_line(network, i_max_pu):
    branches = network.branches.copy()
    branches.loc[branches["branch"] == 0, "i_max_pu"] = i_max_pu
    return dataclasses.replace(network, branches=branches)


def test_current_limit_is_an_inner_polygon_of_the_rating(ieee33):
    # Line 1-2 carries 4.62 MVA (0.462 pu) in the base case. The octagon
    # inscribed in |S| <= 0.95 I_max admits that flow from I_max = 0.512 pu up.
    rated = _with_rating_on_first_line(ieee33, 0.53)
    model = build_distflow_check_model(rated, losses="none")
    assert len(model.grid.ineq_s_flow_line_ub) == 8
    assert solve(model).status == "optimal"
    overloaded = _with_rating_on_first_line(ieee33, 0.45)
    with pytest.raises(InfeasibleModelError):
        solve(build_distflow_check_model(overloaded, losses="none"))
    unenforced = build_distflow_check_model(overloaded, losses="none", enforce_current_limits=False)
    assert solve(unenforced).status == "optimal"


# --------------------------------------------------------------------------
# Composition with other blocks
# --------------------------------------------------------------------------


def test_net_load_may_be_another_blocks_variable_over_several_periods(ieee33):
    kw_per_pu = ieee33.base_mva * 1e3
    periods = ["night", "evening"]
    model = pyo.ConcreteModel()
    model.ev_kw = pyo.Var(periods, bounds=(0, 500))
    model.ev_kw["night"].fix(0.0)
    model.ev_kw["evening"].fix(300.0)
    p_load, q_load = {}, {}
    for row in ieee33.buses.itertuples():
        for t in periods:
            p_load[row.bus, t] = row.p_load_pu * kw_per_pu
            q_load[row.bus, t] = row.q_load_pu * kw_per_pu
    for t in periods:
        p_load[MIN_VOLTAGE_BUS, t] += model.ev_kw[t]
    model.grid = pyo.Block()
    declare_lindistflow(model.grid, ieee33, periods, p_load, q_load, enforce_voltage_limits=False)
    model.obj = pyo.Objective(expr=sum(model.grid.p_import_kw[t] for t in periods))
    assert solve(model).status == "optimal"
    grid = model.grid
    extra = pyo.value(grid.p_import_kw["evening"] - grid.p_import_kw["night"])
    # 300 kW at the end of the feeder plus the losses it adds: 354.3 kW in
    # the AC power flow, 344.5 kW here (-2.8 %, the V0 = 1 of the losses).
    net = copy.deepcopy(ieee33.net)
    pp.runpp(net, numba=False)
    before_kw = net.res_ext_grid["p_mw"].sum() * 1e3
    pp.create_load(net, MIN_VOLTAGE_BUS, p_mw=0.3)
    pp.runpp(net, numba=False)
    extra_ac = net.res_ext_grid["p_mw"].sum() * 1e3 - before_kw
    assert extra == pytest.approx(extra_ac, rel=0.035)
    assert (
        pyo.value(grid.v_sq_pu[MIN_VOLTAGE_BUS, "evening"] - grid.v_sq_pu[MIN_VOLTAGE_BUS, "night"])
        < -0.01
    )


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"losses": "quadratic"}, "losses"),
        ({"n_segments": 0}, "n_segments"),
        ({"n_segments": 2.5}, "n_segments"),
        ({"flow_bound_kw": -1.0}, "flow_bound_kw"),
        ({"v_source_pu": 0.0}, "v_source_pu"),
        ({"v_loss_ref_pu": 2.0}, "v_loss_ref_pu"),
        ({"voltage_margin_pu": {(17, 0): (0.01, 0.0)}}, "voltage_margin_pu"),
    ],
)
def test_bad_options_raise_value_error_naming_the_option(ieee33, kwargs, option):
    with pytest.raises(ValueError, match=option):
        build_distflow_check_model(ieee33, **kwargs)


def test_loads_keyed_by_an_unknown_bus_are_rejected(ieee33):
    with pytest.raises(ValueError, match="p_load_kw"):
        declare_lindistflow(pyo.Block(concrete=True), ieee33, [0], {("18", 0): 90.0}, {})


def test_meshed_network_is_rejected(ieee33):
    tie = pd.DataFrame(
        [{"branch": 32, "from_bus": 7, "to_bus": 20, "r_pu": 0.1, "x_pu": 0.1, "b_pu": 0.0}]
    )
    meshed = dataclasses.replace(ieee33, branches=pd.concat([ieee33.branches, tie]))
    with pytest.raises(ValueError, match="not radial"):
        radial_lines(meshed)
