"""Kerama (2025): the safe caps, Benders' first feasible grid point when the uncapped one overloads the feeder.

180 EVs at bus 18, the end of the 33-bus feeder's long branch: left to
themselves they all charge in the cheapest hours and break the voltage
limit, so the uncapped grid point is infeasible. The safe caps
(:func:`evgrid.papers.kerama2025.decomposition.build_safe_caps`) keep the
network within its limits whatever the aggregator imports below them.
"""

import warnings

import numpy as np
import pyomo.environ as pyo
import pytest

from conftest import make_small_kerama
from evgrid.core.config import FleetOptions
from evgrid.core.solvers import SolverLimitWarning, solve
from evgrid.formulations.network import declare_network
from evgrid.papers.kerama2025 import decomposition
from evgrid.papers.kerama2025.decomposition import (
    _safe_grid_point,
    _solve_scenario,
    solve_benders,
)
from evgrid.papers.kerama2025.model import robust_voltage_margins


@pytest.fixture(scope="module")
def crowded():
    case = make_small_kerama(n_aggregators=1, aggregator_buses=[18], n_scenarios=1, cap_bits=5,
                             fleet=FleetOptions(n_evs=180, battery_kwh=60.0, charger_kw=7.2))
    n_bits = case.params.cap_bits
    key = [(i, k) for i in range(len(case.free_caps)) for k in range(n_bits)]
    return case, key, _safe_grid_point(case)


def test_the_uncapped_point_overloads_the_feeder_and_the_safe_caps_do_not(crowded):
    case, key, hat = crowded
    assert hat is not None
    try:
        assert _solve_scenario("safe", [1] * len(key), case, 0).objective is None
        at_safe = _solve_scenario("safe", [hat[ik] for ik in key], case, 0)
    finally:
        decomposition._forget("safe")
    assert at_safe.objective is not None
    # the caps bind: the aggregator imports no more than them, and some hours are capped below b_max
    levels = np.array([sum(2**k * hat[i, k] for k in range(case.params.cap_bits))
                       for i in range(len(case.free_caps))])
    step = case.b_max_kw[0] / (2**case.params.cap_bits - 1)
    imports = at_safe.schedule.set_index("t")["b_imp_kw"]
    assert (imports.to_numpy() <= levels * step + 1e-6).all()
    assert levels.max() < 2**case.params.cap_bits - 1


def test_the_network_holds_with_the_aggregator_importing_its_rounded_caps(crowded):
    # Safety does not rest on the aggregator's response: at the rounded caps
    # themselves, the robust DistFlow model of the scenario is feasible.
    case, _key, hat = crowded
    top = 2**case.params.cap_bits - 1
    caps = {t: case.b_max_kw[0] / top * sum(2**k * hat[i, k] for k in range(case.params.cap_bits))
            for i, (_a, t) in enumerate(case.free_caps)}
    params, net = case.params, case.network
    buses, periods = list(net.buses["bus"]), list(case.periods)
    m = pyo.ConcreteModel()
    declare_network(
        m, net, periods,
        {(b, t): case.load_kw.at[b, t] - case.pv_kw[0].at[b, t] + (caps[t] if b == 18 else 0.0)
         for b in buses for t in periods},
        {(b, t): case.load_kvar.at[b, t] for b in buses for t in periods},
        formulation="lindistflow", losses=params.losses, n_segments=params.n_segments,
        v_source_pu=params.v_source_pu, voltage_margin_pu=robust_voltage_margins(case)[0],
    )
    m.objective = pyo.Objective(expr=sum(m.p_import_kw[t] for t in periods))
    solve(m)  # raises if infeasible
    assert max(caps.values()) > 0


def test_benders_takes_the_safe_caps_second_and_has_an_upper_bound_at_once(crowded):
    case, key, hat = crowded
    try:
        expected = _solve_scenario("expected", [hat[ik] for ik in key], case, 0).objective
    finally:
        decomposition._forget("expected")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverLimitWarning)
        result = solve_benders(case, tol=1e-9, max_iterations=2)
    trace = result.trace
    assert np.isinf(trace["upper_bound"].iloc[0])  # the uncapped point: infeasible
    assert trace["feasibility_cuts"].iloc[0] == 1
    assert trace["upper_bound"].iloc[1] <= expected + 1e-6  # the safe caps, or better
    assert result.lower_bound <= result.objective
