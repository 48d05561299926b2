"""The KKT reformulation against the bilevel problem it replaces."""

import numpy as np
import pyomo.environ as pyo
import pytest

from evgrid.core.solvers import solve
from evgrid.formulations.bilevel import declare_kkt


def _follower_response(z: float) -> float:
    """The follower's unique optimum for a fixed leader decision, solved as its own LP."""
    m = pyo.ConcreteModel()
    m.y = pyo.Var(bounds=(0, 10))
    m.c1 = pyo.Constraint(expr=m.y <= z)
    m.c2 = pyo.Constraint(expr=m.y <= 8 - z)
    m.c3 = pyo.Constraint(expr=m.y <= 5)
    m.obj = pyo.Objective(expr=-m.y)
    assert solve(m).ok
    return pyo.value(m.y)


def _leader_and_follower():
    """Leader z in [0, 10]; follower block f: y in [0, 10], y <= z, y <= 8 - z, y <= 5."""
    m = pyo.ConcreteModel()
    m.z = pyo.Var(bounds=(0, 10))
    m.f = pyo.Block()
    m.f.y = pyo.Var(bounds=(0, 10))
    m.f.c1 = pyo.Constraint(expr=m.f.y <= m.z)
    m.f.c2 = pyo.Constraint(expr=m.f.y <= 8 - m.z)
    m.f.c3 = pyo.Constraint(expr=m.f.y <= 5)
    return m


def _single_level(dual_bound=10.0):
    m = _leader_and_follower()
    m.kkt = pyo.Block()
    info = declare_kkt(m.kkt, m.f, -m.f.y, leader_vars=[m.z], dual_bound=dual_bound)
    m.obj = pyo.Objective(expr=-m.f.y + 0.3 * m.z)
    return m, info


def test_kkt_single_level_finds_the_bilevel_optimum():
    # Follower: y = min(z, 8 - z, 5); leader: min -y + 0.3 z -> z = 4, y = 4, -2.8.
    m, info = _single_level()
    result = solve(m)
    assert result.ok
    assert result.objective == pytest.approx(-2.8, abs=1e-6)
    assert pyo.value(m.z) == pytest.approx(4.0, abs=1e-6)
    assert info.n_binaries > 0 and info.dual_usage(m.kkt) < 1.0


def test_kkt_optimum_matches_brute_force_over_the_leader_decision():
    m, _ = _single_level()
    assert solve(m).ok
    grid = np.linspace(0, 8, 321)  # z > 8 leaves the follower infeasible
    brute = min(-_follower_response(z) + 0.3 * z for z in grid)
    assert pyo.value(m.obj) <= brute + 1e-9
    assert pyo.value(m.obj) == pytest.approx(brute, abs=0.3 * (grid[1] - grid[0]))


def test_follower_response_in_the_single_level_is_optimal_for_the_follower():
    m, _ = _single_level()
    assert solve(m).ok
    assert pyo.value(m.f.y) == pytest.approx(_follower_response(pyo.value(m.z)), rel=1e-6)


def test_kkt_rejects_unbounded_follower_variables():
    m = pyo.ConcreteModel()
    m.f = pyo.Block()
    m.f.y = pyo.Var(bounds=(0, None))
    m.f.c = pyo.Constraint(expr=m.f.y >= 1)
    m.kkt = pyo.Block()
    with pytest.raises(ValueError, match="finite bounds"):
        declare_kkt(m.kkt, m.f, m.f.y, dual_bound=1.0)


def _single_level_sd(n_bits=6):
    from evgrid.formulations.bilevel import declare_binary_grid, declare_strong_duality

    m = _leader_and_follower()
    m.grid = pyo.Block()
    grid = declare_binary_grid(m.grid, [m.z], n_bits)
    m.sd = pyo.Block()
    declare_strong_duality(m.sd, m.f, -m.f.y, grid=grid, leader_vars=[m.z], dual_bound=10.0)
    m.obj = pyo.Objective(expr=-m.f.y + 0.3 * m.z)
    return m


def test_strong_duality_on_a_grid_matches_kkt_on_the_same_grid():
    from evgrid.formulations.bilevel import declare_binary_grid

    sd = _single_level_sd(n_bits=3)  # z in {0, 10/7, 20/7, ..., 10}
    assert solve(sd).ok
    kkt, _ = _single_level()
    kkt.grid = pyo.Block()
    declare_binary_grid(kkt.grid, [kkt.z], 3)
    assert solve(kkt).ok
    assert pyo.value(sd.obj) == pytest.approx(pyo.value(kkt.obj), abs=1e-6)
    grid_points = [10 * k / 7 for k in range(8)]
    brute = min(-_follower_response(z) + 0.3 * z for z in grid_points if z <= 8)
    assert pyo.value(sd.obj) == pytest.approx(brute, abs=1e-6)
    assert pyo.value(sd.f.y) == pytest.approx(_follower_response(pyo.value(sd.z)), abs=1e-6)
