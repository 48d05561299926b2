"""Kerama (2025): instance, aggregator LP, single-level KKT model and its proof."""


import pandas as pd
import pyomo.environ as pyo
import pytest

from conftest import make_small_kerama, solve_small_kerama
from evgrid.core.config import FleetOptions
from evgrid.core.solvers import solve
from evgrid.formulations.fleet import (
    FleetInfeasibleError,
    fleet_schedule,
    simultaneous_charge_discharge,
)
from evgrid.papers.kerama2025.model import (
    build_aggregator_lp,
    build_single_level,
    robust_voltage_margins,
    shared_path_impedance,
    warm_start,
)

_small = make_small_kerama


@pytest.fixture(scope="module")
def solved():
    # KKT feasibility alone makes every aggregator's response optimal, so the
    # proof below holds at any incumbent: a short, warm-started solve suffices.
    case = _small()
    model, info, result = solve_small_kerama(case, with_network=False)
    return case, model, info, result


def test_instance_follows_the_parameters():
    case = _small()
    assert len(case.scenarios) == 2 and case.aggregators == [0, 1]
    assert case.aggregator_bus == {0: 17, 1: 32}  # Baran & Wu 18, 33 -> 0-based
    assert sorted(set(case.price_usd_per_kwh)) == [0.10, 0.18, 0.30]
    assert case.load_kw.to_numpy().max() == pytest.approx(420.0)  # bus 25 peak load x 1.0
    fleet = case.fleets[0]
    assert len(fleet) == 4 and (fleet["arrival"] < fleet["departure"]).all()


def test_kkt_proof_each_aggregator_profit_equals_its_lp_re_solved_alone(solved):
    case, model, _info, result = solved
    assert result.status in ("optimal", "time_limit_feasible")
    for a in case.aggregators:
        for s in case.scenarios:
            caps = {t: pyo.value(model.cap_kw[a, t]) for t in case.periods}
            alone = build_aggregator_lp(case, a, s, caps)
            assert solve(alone).ok
            inside = pyo.value(model.agg[a, s].cost_usd)
            assert inside == pytest.approx(pyo.value(alone.objective), rel=1e-6, abs=1e-6)


def test_no_ev_charges_and_discharges_in_the_same_hour(solved):
    case, model, _info, _result = solved
    for a in case.aggregators:
        for s in case.scenarios:
            assert simultaneous_charge_discharge(fleet_schedule(model.agg[a, s])).empty


def test_strong_duality_holds_with_equality_at_the_solution(solved):
    # Weak duality gives primal >= dual for any feasible pair; the model adds
    # primal <= dual, so at its solution the two must coincide.
    case, model, _info, _result = solved
    for a in case.aggregators:
        for s in case.scenarios:
            primal = pyo.value(model.agg[a, s].cost_usd)
            dual = pyo.value(model.kkt[a, s].dual_objective)
            assert primal == pytest.approx(dual, rel=1e-6, abs=1e-6)


def test_an_unservable_fleet_is_reported_before_solving():
    with pytest.raises(FleetInfeasibleError, match="cannot be served"):
        _small(soc_init_min=0.2, soc_init_max=0.2, soc_required=0.9,
               fleet=FleetOptions(n_evs=2, battery_kwh=60.0, charger_kw=1.0))


def test_shared_path_impedance_and_robust_margins_are_monotone():
    case = _small()
    r, _x = shared_path_impedance(case.network)
    assert r[17, 17] > r[17, 5] > 0  # bus 18 is downstream of bus 6
    assert r[17, 32] == pytest.approx(r[5, 5])  # 18 and 33 share the path 1-6 (26-33 leaves at 6)
    margins = robust_voltage_margins(case)[0]
    assert margins[(17, 6)][0] > margins[(5, 6)][0] > 0  # deeper buses, larger offsets
    tighter = robust_voltage_margins(_small(gamma_pv=0.4))[0]
    assert tighter[(17, 0)][0] > margins[(17, 0)][0]  # PV produces at 12:00


def test_a_budget_that_breaks_the_network_names_the_family_and_hour():
    from evgrid.papers.kerama2025.model import NetworkInfeasibleError, check_network_budget

    check_network_budget(_small())  # the default budgets hold
    with pytest.raises(NetworkInfeasibleError) as err:
        build_single_level(_small(gamma_load=0.3))
    message = str(err.value)
    assert "lower voltage limit (Eq. 6) at 18:00, bus 18, scenario 0" in message
    assert "gamma_load=0.3" in message
    # The upper limit is tested where the test is a necessary condition: without losses.
    with pytest.raises(NetworkInfeasibleError) as err:
        check_network_budget(_small(gamma_pv=0.4, losses="none"))
    assert "upper voltage limit (Eq. 6) at 12:00, bus 18, scenario 0" in str(err.value)  # PV backfeed


def test_a_fleet_the_feeder_cannot_carry_is_refused_before_building_with_its_window():
    from evgrid.papers.kerama2025.model import NetworkInfeasibleError, check_fleet_energy

    check_fleet_energy(_small())
    crowded = make_small_kerama(n_aggregators=1, aggregator_buses=[18], n_scenarios=1,
                                fleet=FleetOptions(n_evs=400, battery_kwh=60.0, charger_kw=7.2))
    with pytest.raises(NetworkInfeasibleError,
                       match=r"scenario 0: from \d\d:00 to \d\d:00 the EVs must draw [\d,]+ kWh but the "
                             r"feeder carries at most [\d,]+ kWh .* [\d,]+ kWh short"):
        check_fleet_energy(crowded)
    with pytest.raises(NetworkInfeasibleError, match="cannot carry the fleets' energy"):
        build_single_level(crowded)


def test_single_level_with_the_robust_network_solves_on_a_small_instance():
    case = _small(n_scenarios=1)
    model, _info, result = solve_small_kerama(case)
    assert result.status in ("optimal", "time_limit_feasible")
    assert result.relative_gap is not None and result.relative_gap < 0.01
    for a in case.aggregators:  # the proof again, now under the network constraints
        caps = {t: pyo.value(model.cap_kw[a, t]) for t in case.periods}
        alone = build_aggregator_lp(case, a, 0, caps)
        assert solve(alone).ok
        assert pyo.value(model.agg[a, 0].cost_usd) == pytest.approx(
            pyo.value(alone.objective), rel=1e-6, abs=1e-6)
    v = [pyo.value(model.net[0].v_sq_pu[b, t]) ** 0.5 for b in case.network.buses["bus"] for t in case.periods]
    assert min(v) >= 0.95 - 1e-6 and max(v) <= 1.05 + 1e-6


def test_benders_and_the_monolithic_milp_reach_the_same_objective():
    from evgrid.papers.kerama2025.decomposition import solve_benders

    case = _small(cap_bits=2)
    tol = 1e-3
    benders = solve_benders(case, tol=tol)
    assert benders.converged
    assert list(benders.trace["lower_bound"]) == sorted(benders.trace["lower_bound"])  # monotone
    model, info = build_single_level(case)
    assert warm_start(model, case, info)
    mono = solve(model, time_limit_s=120, mip_gap=tol, warmstart=True)
    assert mono.status == "optimal"
    # Each method brackets the optimum; the brackets must overlap and both be within tol.
    assert benders.lower_bound <= mono.objective * (1 + 1e-6)
    assert mono.best_bound <= benders.objective * (1 + 1e-6)
    assert benders.objective == pytest.approx(mono.objective, rel=tol)
    # Benders' caps, re-imposed on the monolithic model, give Benders' objective.
    for (a, t), cap in benders.caps_kw.stack().items():
        model.cap_kw[a, t].fix(cap)
    for bit in model.grid.bit.values():
        bit.unfix()
    fixed = solve(model, time_limit_s=120, mip_gap=1e-6)
    assert fixed.objective == pytest.approx(benders.objective, rel=1e-6)


def test_benders_over_many_iterations_reaches_the_monolithic_optimum():
    # The DSO caps two night hours of one aggregator on a 4-level grid: 16 grid
    # points. The high-point bound lies below the optimum, so Benders must
    # visit point after point until its integer cuts close the gap; the
    # monolithic MILP, solved to a tight gap, must agree.
    from evgrid.papers.kerama2025.decomposition import solve_benders

    case = _small(cap_bits=2, cap_hours=[0, 1], n_aggregators=1, aggregator_buses=[18])
    assert len(case.free_caps) == 2
    benders = solve_benders(case, tol=1e-6, max_iterations=40)
    assert benders.converged
    assert len(benders.trace) >= 4  # the cut loop runs, not just the first point
    lb = list(benders.trace["lower_bound"])
    assert lb == sorted(lb) and lb[-1] > lb[0]  # the bound moves, monotonically
    model, info = build_single_level(case)
    assert warm_start(model, case, info)
    mono = solve(model, time_limit_s=120, mip_gap=1e-7, warmstart=True)
    assert mono.status == "optimal"
    assert benders.objective == pytest.approx(mono.objective, rel=1e-6)
    assert benders.lower_bound <= mono.objective * (1 + 1e-6)
    # The caps outside cap_hours stay at the bid bound.
    fixed = [t for t in case.periods if case.clock_hour[t] not in (0, 1)]
    assert (benders.caps_kw.loc[0, fixed] == case.b_max_kw[0]).all()
    # The answer is checked against AC once, for every scenario.
    for sol in benders.scenarios.values():
        assert sol.distflow_vs_ac.attrs["max_abs_error_pu"] < 0.01


def test_benders_on_two_dask_workers_retraces_the_serial_run():
    # The scenario LPs on a 2-worker local Dask cluster (each scenario kept on
    # one worker between iterations) give the serial run's bounds, caps and
    # schedules, and no run leaves its models cached behind it.
    from evgrid.papers.kerama2025 import decomposition
    from evgrid.papers.kerama2025.decomposition import solve_benders

    case = _small(cap_bits=2, cap_hours=[0, 1], n_aggregators=1, aggregator_buses=[18])
    serial = solve_benders(case, tol=1e-6, max_iterations=40)
    assert not decomposition._CACHE
    dask = solve_benders(case, tol=1e-6, max_iterations=40, parallel={"workers": 2})
    assert len(dask.trace) == len(serial.trace) >= 4
    for col in ("lower_bound", "upper_bound"):
        assert list(dask.trace[col]) == list(serial.trace[col])
    assert dask.caps_kw.equals(serial.caps_kw)
    pd.testing.assert_frame_equal(dask.schedule, serial.schedule)


def test_the_integer_cut_is_exact_at_its_point_and_no_stronger_than_the_bound_elsewhere():
    from itertools import product

    from evgrid.algorithms.benders import integer_optimality_cut

    hat, value, lower = [1, 0, 1], 10.0, 4.0
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(3), domain=pyo.Binary)
    m.theta = pyo.Var()
    cut = integer_optimality_cut(m.theta, [m.x[i] for i in range(3)], hat, value, lower)
    for point in product((0, 1), repeat=3):
        for i, v in enumerate(point):
            m.x[i].value = v
        if list(point) == hat:  # exact: theta must reach the value there
            m.theta.value = value
            assert pyo.value(cut)
            m.theta.value = value - 1e-3
            assert not pyo.value(cut)
        else:  # elsewhere: no more than the bound valid everywhere
            m.theta.value = lower
            assert pyo.value(cut)


def test_cap_hours_are_checked():
    from evgrid.papers.kerama2025.params import Kerama2025Params

    with pytest.raises(ValueError, match=r"cap_hours \[24\] are not clock hours 0-23"):
        Kerama2025Params(cap_hours=[3, 24])
    with pytest.raises(ValueError, match="each once"):
        Kerama2025Params(cap_hours=[3, 3])
    with pytest.raises(ValueError, match="at least one hour"):
        Kerama2025Params(cap_hours=[])
