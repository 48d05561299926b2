"""Tests of the solver layer (:mod:`evgrid.core.solvers`).

Every instance is tiny or has a known answer: the LP optimum is computed by
hand, the knapsack optimum by brute force, and the limit tests use instances
whose behaviour within the time limit was checked (with a tenfold margin)
when they were written.
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.common.base import Availability

from evgrid.core import solvers
from evgrid.core.solvers import (
    InfeasibleModelError,
    NoIncumbentError,
    SolverError,
    SolverLicenseLimitError,
    SolverLimitWarning,
    SolverNotInstalledError,
    UnboundedModelError,
    available_solvers,
    model_size,
    solve,
)

# Optimality tolerance for objectives; the solvers' own feasibility
# tolerances are 1e-6 to 1e-9 on these well-scaled instances.
OBJ_TOL = 1e-6


def _skip_unless_importable(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


# --------------------------------------------------------------------------
# Instances
# --------------------------------------------------------------------------


def small_lp() -> pyo.ConcreteModel:
    """max 3x + 5y s.t. x + y <= 4, x + 3y <= 6, x, y >= 0.

    Vertices (0,0), (4,0), (3,1), (0,2) give 0, 12, 14, 10: the optimum is
    14 at (3, 1).
    """
    m = pyo.ConcreteModel(name="small_lp")
    m.x = pyo.Var(bounds=(0, None))
    m.y = pyo.Var(bounds=(0, None))
    m.c1 = pyo.Constraint(expr=m.x + m.y <= 4)
    m.c2 = pyo.Constraint(expr=m.x + 3 * m.y <= 6)
    m.obj = pyo.Objective(expr=3 * m.x + 5 * m.y, sense=pyo.maximize)
    return m


KNAPSACK_VALUES = [10, 13, 18, 31, 7, 15, 22, 9]
KNAPSACK_WEIGHTS = [11, 15, 20, 35, 10, 33, 24, 8]
KNAPSACK_CAPACITY = 60


def knapsack() -> pyo.ConcreteModel:
    """A 0-1 knapsack with eight items."""
    m = pyo.ConcreteModel(name="knapsack")
    m.item = pyo.RangeSet(0, len(KNAPSACK_VALUES) - 1)
    m.x = pyo.Var(m.item, domain=pyo.Binary)
    m.cap = pyo.Constraint(
        expr=sum(KNAPSACK_WEIGHTS[i] * m.x[i] for i in m.item) <= KNAPSACK_CAPACITY
    )
    m.obj = pyo.Objective(expr=sum(KNAPSACK_VALUES[i] * m.x[i] for i in m.item), sense=pyo.maximize)
    return m


def knapsack_brute_force() -> float:
    best = 0
    for pick in itertools.product((0, 1), repeat=len(KNAPSACK_VALUES)):
        if sum(w * p for w, p in zip(KNAPSACK_WEIGHTS, pick, strict=True)) <= KNAPSACK_CAPACITY:
            best = max(best, sum(v * p for v, p in zip(KNAPSACK_VALUES, pick, strict=True)))
    return float(best)


def infeasible_model() -> pyo.ConcreteModel:
    """x in [0, 1], y binary, x + y >= 3: no point satisfies it."""
    m = pyo.ConcreteModel(name="infeasible_toy")
    m.x = pyo.Var(bounds=(0, 1))
    m.y = pyo.Var(domain=pyo.Binary)
    m.c = pyo.Constraint(expr=m.x + m.y >= 3)
    m.obj = pyo.Objective(expr=m.x + m.y)
    return m


def unbounded_model() -> pyo.ConcreteModel:
    """max x + y with x - y <= 1 and nothing stopping both from growing."""
    m = pyo.ConcreteModel(name="unbounded_toy")
    m.x = pyo.Var(bounds=(0, None))
    m.y = pyo.Var(domain=pyo.NonNegativeIntegers)
    m.c = pyo.Constraint(expr=m.x - m.y <= 1)
    m.obj = pyo.Objective(expr=m.x + m.y, sense=pyo.maximize)
    return m


def multidim_knapsack(n: int = 200, m: int = 10, seed: int = 0) -> pyo.ConcreteModel:
    """A multi-dimensional 0-1 knapsack that HiGHS cannot close in seconds.

    Profits correlated with the summed weights keep the LP bound weak. All
    zeros is feasible and HiGHS's heuristics find a good incumbent at the
    root, but at 5 s the gap is still about 1 % (checked on five seeds).
    """
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 1000, size=(m, n))
    cap = (w.sum(axis=1) * 0.25).astype(int)
    p = (w.sum(axis=0) / m + rng.integers(0, 50, size=n)).astype(int)
    mdl = pyo.ConcreteModel(name="multidim_knapsack")
    mdl.item = pyo.RangeSet(0, n - 1)
    mdl.dims = pyo.RangeSet(0, m - 1)
    mdl.x = pyo.Var(mdl.item, domain=pyo.Binary)
    mdl.cap = pyo.Constraint(
        mdl.dims,
        rule=lambda b, k: sum(int(w[k, i]) * b.x[i] for i in b.item) <= int(cap[k]),
    )
    mdl.obj = pyo.Objective(expr=sum(int(p[i]) * mdl.x[i] for i in mdl.item), sense=pyo.maximize)
    return mdl


def parity_knapsack(n: int = 50, seed: int = 0) -> pyo.ConcreteModel:
    """sum 2 a_i x_i = odd b over binaries: infeasible by parity alone.

    The LP relaxation is feasible, so without presolve (whose GCD test
    proves infeasibility at once) branch and bound must enumerate; at 5 s
    HiGHS is still searching, and no incumbent can ever exist.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(10_000, 100_000, size=n)
    b = 2 * (int(a.sum()) // 2) + 1
    mdl = pyo.ConcreteModel(name="parity_knapsack")
    mdl.item = pyo.RangeSet(0, n - 1)
    mdl.x = pyo.Var(mdl.item, domain=pyo.Binary)
    mdl.eq = pyo.Constraint(expr=sum(2 * int(a[i]) * mdl.x[i] for i in mdl.item) == b)
    mdl.obj = pyo.Objective(expr=sum(mdl.x[i] for i in mdl.item))
    return mdl


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_lp_highs_hand_computed_optimum() -> None:
    m = small_lp()
    res = solve(m)
    assert res.status == "optimal"
    assert res.ok
    assert res.termination_condition == "convergenceCriteriaSatisfied"
    assert res.solver == "highs"
    assert res.objective == pytest.approx(14.0, abs=OBJ_TOL)
    assert res.best_bound == pytest.approx(14.0, abs=OBJ_TOL)
    assert res.relative_gap == pytest.approx(0.0, abs=1e-9)
    # The solution is loaded into the model.
    assert pyo.value(m.x) == pytest.approx(3.0, abs=1e-6)
    assert pyo.value(m.y) == pytest.approx(1.0, abs=1e-6)
    assert res.build_time_s >= 0.0
    assert res.solve_time_s >= 0.0
    assert res.wall_time_s >= 0.0
    assert "optimal" in res.message
    assert str(res) == res.summary()
    assert "highs: optimal" in res.summary()


@pytest.mark.parametrize(
    ("solver", "package"), [("highs", "highspy"), ("scip", "pyscipopt"), ("gurobi", "gurobipy")]
)
def test_knapsack_agrees_with_brute_force(solver: str, package: str) -> None:
    _skip_unless_importable(package)
    m = knapsack()
    res = solve(m, solver=solver)
    assert res.status == "optimal"
    assert res.solver == solver
    expected = knapsack_brute_force()
    assert expected == 54.0  # items 0, 1, 6, 7 (weight 58 of 60), the unique optimum
    assert res.objective == pytest.approx(expected, abs=OBJ_TOL)
    # The loaded point is integral, within capacity and worth the objective.
    x = [pyo.value(m.x[i]) for i in m.item]
    assert all(min(abs(v), abs(v - 1)) <= 1e-6 for v in x)
    picked = [round(v) for v in x]
    assert sum(w * p for w, p in zip(KNAPSACK_WEIGHTS, picked, strict=True)) <= KNAPSACK_CAPACITY
    value = sum(v * p for v, p in zip(KNAPSACK_VALUES, picked, strict=True))
    assert value == pytest.approx(expected, abs=OBJ_TOL)


def test_infeasible_model_raises_with_name_and_size() -> None:
    m = infeasible_model()
    with pytest.raises(InfeasibleModelError) as info:
        solve(m)
    msg = str(info.value)
    assert "infeasible_toy" in msg
    assert "2 variables" in msg
    assert "1 binary" in msg
    assert "1 constraints" in msg
    assert "IIS" in msg
    assert isinstance(info.value, SolverError)


def test_unbounded_model_raises() -> None:
    # HiGHS's presolve reports this one as infeasible-or-unbounded, which
    # solve() maps to UnboundedModelError and says so.
    with pytest.raises(UnboundedModelError) as info:
        solve(unbounded_model())
    assert "unbounded" in str(info.value)
    assert "unbounded_toy" in str(info.value)


def test_unknown_solver_name_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match="unknown solver 'cplex'") as info:
        solve(small_lp(), solver="cplex")
    for name in ("highs", "gurobi", "scip"):
        assert f"'{name}'" in str(info.value)


def test_missing_solver_package_raises_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solvers, "_availability", lambda name: Availability.NotFound)
    with pytest.raises(SolverNotInstalledError) as info:
        solve(small_lp(), solver="scip")
    msg = str(info.value)
    assert "pip install pyscipopt==6.3.0" in msg
    assert "HiGHS" in msg
    assert available_solvers() == {"highs": False, "gurobi": False, "scip": False}


def test_available_solvers_reports_highs() -> None:
    avail = available_solvers()
    assert set(avail) == {"highs", "gurobi", "scip"}
    assert avail["highs"] is True


def test_model_size_counts() -> None:
    assert model_size(infeasible_model()) == {
        "n_variables": 2,
        "n_binary": 1,
        "n_integer": 0,
        "n_constraints": 1,
    }
    assert model_size(unbounded_model())["n_integer"] == 1


def test_gurobi_size_limited_licence_is_reported() -> None:
    _skip_unless_importable("gurobipy")
    n = 2100
    m = pyo.ConcreteModel(name="too_big_for_free_gurobi")
    m.idx = pyo.RangeSet(1, n)
    m.x = pyo.Var(m.idx, bounds=(0, 2))
    m.c = pyo.Constraint(m.idx, rule=lambda b, i: b.x[i] <= 1)
    m.obj = pyo.Objective(expr=sum(m.x[i] for i in m.idx), sense=pyo.maximize)
    try:
        res = solve(m, solver="gurobi")
    except SolverLicenseLimitError as err:
        msg = str(err)
        assert "HiGHS" in msg
        assert "solver='highs'" in msg
        assert f"{n} variables" in msg
        assert f"{n} constraints" in msg
        assert "2000" in msg
        assert isinstance(err.__cause__, Exception)
        assert getattr(err.__cause__, "errno", None) == 10010
    else:
        # A full licence solves it; then the test cannot exercise the limit.
        assert res.objective == pytest.approx(float(n), abs=OBJ_TOL)
        pytest.skip("a full Gurobi licence is installed; the size limit does not apply")


def test_time_limit_with_incumbent_returns_it_and_warns() -> None:
    m = multidim_knapsack()
    with pytest.warns(SolverLimitWarning, match="NOT proven optimal"):
        res = solve(m, time_limit_s=0.5)
    assert res.status == "time_limit_feasible"
    assert not res.ok
    assert res.termination_condition == "maxTimeLimit"
    assert res.objective is not None and res.best_bound is not None
    # Maximisation: the bound lies above the incumbent, and the gap is open.
    assert res.best_bound >= res.objective - OBJ_TOL
    assert res.relative_gap is not None and res.relative_gap > 1e-4
    assert res.relative_gap == pytest.approx(
        (res.best_bound - res.objective) / abs(res.objective), rel=1e-9
    )
    assert "time limit reached" in res.message and "relative gap" in res.message
    # The incumbent is loaded and feasible.
    for k in m.dims:
        assert pyo.value(m.cap[k].body) <= pyo.value(m.cap[k].upper) + 1e-6
    assert pyo.value(m.obj) == pytest.approx(res.objective, abs=1e-6)


def test_time_limit_without_incumbent_raises() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverLimitWarning)  # no incumbent, so no warning either
        with pytest.raises(NoIncumbentError) as info:
            solve(parity_knapsack(), time_limit_s=0.3, options={"presolve": "off"})
    msg = str(info.value)
    assert "time limit of 0.3 s" in msg
    assert "parity_knapsack" in msg
    assert "Raise the limit" in msg
    # The dual bound survives without an incumbent: at least the LP relaxation's optimum,
    # sum x >= b / (2 max a), and at most n (every x = 1).
    a = np.random.default_rng(0).integers(10_000, 100_000, size=50)
    lp_bound = (2 * (int(a.sum()) // 2) + 1) / (2 * int(a.max()))
    assert info.value.best_bound is not None
    assert lp_bound - 1e-6 <= info.value.best_bound <= 50


def test_parity_knapsack_is_infeasible_with_presolve() -> None:
    # The same instance with presolve on: HiGHS's GCD test proves it
    # infeasible, which confirms NoIncumbentError above was a limit, not a bug.
    with pytest.raises(InfeasibleModelError):
        solve(parity_knapsack(), time_limit_s=5.0)


def test_size_limit_error_is_found_when_wrapped() -> None:
    class FakeGurobiError(Exception):
        errno = 10010

    try:
        try:
            raise FakeGurobiError("Model too large for size-limited license")
        except FakeGurobiError as inner:
            raise RuntimeError("solver interface failed") from inner
    except RuntimeError as outer:
        assert solvers._is_size_limit_error(outer)
    assert not solvers._is_size_limit_error(RuntimeError("some other failure"))


def test_highs_thread_count_can_change_between_solves() -> None:
    # HiGHS sizes one process-wide thread pool; without solve() resetting it,
    # the second call would end with status "unknown".
    for threads in (1, 2, None):
        res = solve(knapsack(), threads=threads)
        assert res.status == "optimal"
        assert res.objective == pytest.approx(54.0, abs=OBJ_TOL)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="time_limit_s"):
        solve(small_lp(), time_limit_s=0)
    with pytest.raises(ValueError, match="mip_gap"):
        solve(small_lp(), mip_gap=-0.1)
    with pytest.raises(ValueError, match="no_such_option"):
        solve(small_lp(), options={"no_such_option": 1})


def test_a_bounds_only_interface_sees_new_bounds_and_matches_a_fresh_solve():
    from evgrid.core.solvers import bounds_only_highs

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 10))
    m.y = pyo.Var(bounds=(0, None))
    m.c = pyo.Constraint(expr=m.x + m.y >= 4)
    m.o = pyo.Objective(expr=3 * m.x + m.y)
    interface = bounds_only_highs()
    for lb in (0.0, 2.0, 5.0):
        m.x.setlb(lb)
        reused = solve(m, interface=interface, reduced_costs_of=[m.x])
        fresh = solve(m, reduced_costs_of=[m.x])
        assert reused.objective == pytest.approx(fresh.objective) == 3 * lb + max(4 - lb, 0)
        assert reused.reduced_costs[m.x] == pytest.approx(fresh.reduced_costs[m.x])
    with pytest.raises(ValueError, match="reused interface is for HiGHS"):
        solve(m, interface=interface, warmstart=True)
