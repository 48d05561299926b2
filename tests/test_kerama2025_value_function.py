"""Kerama (2025): Benders' grid points evaluated by the aggregators' optima instead of their duals.

``solve_benders(..., subproblem="value_function")`` solves each aggregator
alone at the caps and then the scenario LP without dual variables
(:class:`evgrid.papers.kerama2025.decomposition._ValueFunctionLP`). It must
give the strong-duality subproblem's cost at every grid point, find the same
points infeasible, and reach the same optimum.
"""

from itertools import product

import pytest

from conftest import NIGHT, make_night_kerama, make_small_kerama
from evgrid.core.config import FleetOptions
from evgrid.core.solvers import SolverError
from evgrid.papers.kerama2025 import decomposition
from evgrid.papers.kerama2025.decomposition import (
    _high_point_bound,
    _high_point_bound_vf,
    _solve_scenario,
    _solve_scenario_vf,
    servability_rows,
    solve_benders,
)


@pytest.fixture(scope="module")
def night():
    return make_night_kerama()


def test_both_evaluations_agree_on_every_point_of_a_small_grid(night):
    points = [list(p) for p in product((0, 1), repeat=len(NIGHT))]
    try:
        duals = [_solve_scenario("both", p, night, 0).objective for p in points]
        optima = [_solve_scenario_vf("both", p, night, 0).objective for p in points]
    finally:
        decomposition._forget("both")
    assert 0 < sum(v is None for v in duals) < len(points)  # both kinds of point are there
    for p, by_duals, by_optima in zip(points, duals, optima, strict=True):
        assert (by_duals is None) == (by_optima is None), p
        if by_duals is not None:
            assert by_optima == pytest.approx(by_duals, rel=1e-7), p


def test_benders_by_the_aggregators_optima_reaches_the_exhaustive_optimum(night):
    points = [list(p) for p in product((0, 1), repeat=len(NIGHT))]
    try:
        values = [_solve_scenario("all", p, night, 0).objective for p in points]
    finally:
        decomposition._forget("all")
    best = min(v for v in values if v is not None)
    result = solve_benders(night, tol=1e-7, max_iterations=80, subproblem="value_function")
    assert result.converged
    assert result.objective == pytest.approx(best, rel=1e-7)
    assert result.lower_bound <= best * (1 + 1e-7)
    assert result.trace["no_good_cuts"].iloc[-1] == 0  # infeasible points got feasibility cuts
    both = solve_benders(night, tol=1e-7, max_iterations=80, subproblem="value_function", servability=False)
    assert both.objective == pytest.approx(best, rel=1e-7)
    assert len(result.trace) <= len(both.trace)
    assert result.scenarios[0].dual_usage is None and result.scenarios[0].reduced_costs == []
    assert not decomposition._CACHE


def test_the_servability_cuts_keep_every_feasible_point_and_remove_infeasible_ones(night):
    points = [list(p) for p in product((0, 1), repeat=len(NIGHT))]
    try:
        feasible = [_solve_scenario_vf("serve", p, night, 0).objective is not None for p in points]
    finally:
        decomposition._forget("serve")
    rows = servability_rows(night)
    assert rows
    b_max = night.b_max_kw[0]  # cap_bits=1: each cap is 0 or b_max

    def meets(point):
        return all(fixed + sum(point[i] * b_max for i in free) >= need - 1e-6 for free, fixed, need in rows)

    assert all(meets(p) for p, ok in zip(points, feasible, strict=True) if ok)
    removed = [p for p, ok in zip(points, feasible, strict=True) if not ok and not meets(p)]
    assert len(removed) >= len(points) // 2  # most infeasible points: too few hours to charge


def test_both_evaluations_agree_where_the_caps_change_the_cost():
    # Two aggregators of 20 EVs, two scenarios, caps on 4 levels in every hour:
    # the uncapped point, some hours capped lower, and every cap at a third of the bid bound.
    case = make_small_kerama(cap_bits=2, fleet=FleetOptions(n_evs=20, battery_kwh=60.0, charger_kw=7.2))
    n_bits = len(case.free_caps) * 2
    points = [[1] * n_bits, [int(i % 7 != 3) for i in range(n_bits)], [int(i % 2 == 0) for i in range(n_bits)]]
    try:
        for s in case.scenarios:
            assert _high_point_bound_vf("mid", case, s)[0] == pytest.approx(
                _high_point_bound("mid", case, s)[0], rel=1e-7)
            costs = []
            for p in points:
                by_duals = _solve_scenario("mid", p, case, s)
                by_optima = _solve_scenario_vf("mid", p, case, s)
                assert by_optima.objective == pytest.approx(by_duals.objective, rel=1e-7)
                for a in case.aggregators:  # each aggregator at its own optimum in both
                    assert by_optima.inside_cost_usd[a] == pytest.approx(
                        by_duals.inside_cost_usd[a], rel=1e-6, abs=1e-6)
                costs.append(by_optima.objective)
            assert max(costs) > min(costs) + 1.0  # the caps matter at these points
    finally:
        decomposition._forget("mid")


def test_an_unknown_subproblem_is_refused(night):
    with pytest.raises(ValueError, match="subproblem='kkt'.*'strong_duality' or 'value_function'"):
        solve_benders(night, subproblem="kkt")


def test_a_solve_that_ends_without_a_status_is_retried_from_scratch(night, monkeypatch):
    # HiGHS' warm-started simplex once ended without a status at 5,000 EVs:
    # the value-function LP then solves again, on a fresh interface, by IPM.
    lp = decomposition._ValueFunctionLP(night, 0)
    expected = _high_point_bound("retry", night, 0)[0]
    decomposition._forget("retry")
    real, calls = decomposition.solve, []

    def flaky(model, *args, **kwargs):
        calls.append(kwargs.get("options"))
        if len(calls) == 1:
            raise SolverError("highs ended with termination condition 'unknown' and no solution")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(decomposition, "solve", flaky)
    first = lp.interface
    assert lp.high_point().objective == pytest.approx(expected, rel=1e-9)
    assert calls == [None, {"solver": "ipm"}]
    assert lp.interface is not first
