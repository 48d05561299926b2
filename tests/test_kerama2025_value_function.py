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
from evgrid.papers.kerama2025 import decomposition
from evgrid.papers.kerama2025.decomposition import (
    _high_point_bound,
    _high_point_bound_vf,
    _solve_scenario,
    _solve_scenario_vf,
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
    assert result.scenarios[0].dual_usage is None and result.scenarios[0].reduced_costs == []
    assert not decomposition._CACHE


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
