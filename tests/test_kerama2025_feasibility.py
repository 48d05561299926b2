"""Kerama (2025): Benders' feasibility cuts, checked on every point of a small cap grid.

A fleet plugged in from 23:00 to 05:00 whose caps from 00:00 to 05:00 are on
or off (``cap_bits=1``): 32 grid points, of which those with too few open
hours cannot charge the fleet. Each feasibility cut must keep every feasible point
(so it never removes the optimum), exclude the point it was made at, and lie
below the distance to feasibility everywhere (its linearisation).
"""

from itertools import product

import numpy as np
import pytest

from conftest import NIGHT, make_night_kerama, make_small_kerama
from evgrid.papers.kerama2025 import decomposition
from evgrid.papers.kerama2025.decomposition import (
    FEASIBILITY_TOL,
    _feasibility_step,
    _solve_scenario,
    solve_benders,
)


@pytest.fixture(scope="module")
def night_grid():
    case = make_night_kerama()
    assert len(case.free_caps) == len(NIGHT)
    points = [list(p) for p in product((0, 1), repeat=len(NIGHT))]
    try:  # every optimal solve first, then every distance: one objective switch per scenario
        feasible = {
            s: [p for p in points if _solve_scenario("grid", p, case, s).objective is not None]
            for s in case.scenarios
        }
        step = {(s, tuple(p)): _feasibility_step("grid", p, case, s) for s in case.scenarios for p in points}
    finally:
        decomposition._forget("grid")
    cuts = [(s, list(p), cut) for (s, p), cut in step.items() if list(p) not in feasible[s]]
    distance = {key: cut.distance for key, cut in step.items()}
    return case, feasible, cuts, distance


def _cut_value(cut, point, x):
    return cut.distance + sum(g * (xi - pi) for g, xi, pi in zip(cut.subgradient, x, point, strict=True))


def test_the_small_grid_has_both_feasible_and_infeasible_points(night_grid):
    _case, feasible, cuts, _distance = night_grid
    assert all(0 < len(points) < 32 for points in feasible.values())
    assert cuts


def test_a_feasibility_cut_keeps_every_feasible_point_and_cuts_off_its_own(night_grid):
    _case, feasible, cuts, _distance = night_grid
    for s, point, cut in cuts:
        assert cut.distance > FEASIBILITY_TOL  # no no-good cut needed on this grid
        assert _cut_value(cut, point, point) > 0  # its own point is cut off
        for x in feasible[s]:
            assert _cut_value(cut, point, x) <= 1e-6, (s, point, x)


def test_the_distance_to_feasibility_is_zero_exactly_at_feasible_points_and_convex(night_grid):
    _case, feasible, cuts, distance = night_grid
    for (s, p), value in distance.items():
        assert (value <= FEASIBILITY_TOL) == (list(p) in feasible[s])
    for s, point, cut in cuts:  # F lies above each of its linearisations
        for (s2, x), value in distance.items():
            if s2 == s:
                assert value >= _cut_value(cut, point, x) - 1e-6


def test_a_cut_removes_more_infeasible_points_than_its_own(night_grid):
    # The strength of a cut: the grid points it excludes, against the one a no-good cut does.
    _case, feasible, cuts, _distance = night_grid
    removed = [
        sum(_cut_value(cut, point, list(x)) > 1e-6 for x in product((0, 1), repeat=len(NIGHT)))
        for _s, point, cut in cuts
    ]
    assert max(removed) > 1
    assert np.mean(removed) > 2


def test_benders_with_feasibility_cuts_reaches_the_exhaustive_optimum(night_grid):
    case, feasible, _cuts, _distance = night_grid
    both = [p for p in feasible[case.scenarios[0]] if all(p in feasible[s] for s in case.scenarios)]
    best = min(
        sum(_solve_scenario("all", p, case, s).objective for s in case.scenarios) for p in both
    )
    decomposition._forget("all")
    for feasibility in ("distance", "no_good"):
        result = solve_benders(case, tol=1e-7, max_iterations=80, feasibility=feasibility)
        assert result.converged
        assert result.objective == pytest.approx(best, rel=1e-6)
        assert result.lower_bound <= best * (1 + 1e-7)
        if feasibility == "distance":
            assert result.trace["no_good_cuts"].iloc[-1] == 0
            distance_iterations = len(result.trace)
        else:
            assert result.trace["feasibility_cuts"].iloc[-1] == 0
            assert distance_iterations <= len(result.trace)
    assert not decomposition._CACHE


def test_one_persistent_lp_per_scenario_gives_the_bound_the_subproblem_and_the_distance():
    # The three solves Benders makes of a scenario share one model, translated
    # once; each must equal the model built for it alone.
    from evgrid.core.solvers import solve
    from evgrid.papers.kerama2025.case import one_scenario
    from evgrid.papers.kerama2025.decomposition import build_subproblem
    from evgrid.papers.kerama2025.model import build_single_level

    case = make_small_kerama(n_scenarios=1, cap_bits=2)
    lp = decomposition._ScenarioLP(case, 0)
    alone, _ = build_single_level(one_scenario(case, 0), lower_level="high_point")
    assert lp.solve("high_point").objective == pytest.approx(solve(alone).objective, rel=1e-7)
    level_one = [1 if k == 0 else 0 for (_i, k) in (h.index() for h in build_subproblem(case, 0)[1])]
    model, bits = build_subproblem(case, 0)
    for bit, value in zip(bits, level_one, strict=True):
        bit.fix(value)
    fixed = solve(model).objective
    assert lp.solve("optimal", level_one).objective == pytest.approx(fixed, rel=1e-7)
    assert lp.solve("distance", level_one).objective == pytest.approx(0.0, abs=1e-7)
    assert lp.solve("distance", [0] * len(level_one)).objective > FEASIBILITY_TOL  # caps at 0
    assert lp.solve("optimal", level_one).objective == pytest.approx(fixed, rel=1e-7)  # and back
    with pytest.raises(ValueError, match="mode='best'"):
        lp.solve("best")
