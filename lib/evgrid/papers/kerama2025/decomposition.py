"""Kerama (2025): the single-level model solved by Benders decomposition over scenarios.

The DSO's import caps, on a grid of ``2**cap_bits`` levels, are the only link
between scenarios. The master (:func:`build_master`) picks the grid bits;
each scenario's subproblem (:func:`build_subproblem`) is an LP once they are
fixed; the cuts are those of :mod:`evgrid.algorithms.benders`. A grid point at
which a scenario is infeasible is cut off by a feasibility cut from
:func:`build_feasibility_subproblem`, the scenario's distance to feasibility
in the bits, which also cuts off every other point it proves infeasible.
At large fleets a grid point is better evaluated without the aggregators'
duals: each aggregator's optimum alone, then the scenario LP with every
aggregator's cost held at it (``subproblem="value_function"``,
:class:`_ValueFunctionLP`). :func:`solve_benders` runs it, and checks the answer's DistFlow against AC
power flows once, at the end (:func:`evgrid.papers.kerama2025.evaluate.linear_vs_ac`).
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from tqdm import tqdm

from evgrid.algorithms.benders import feasibility_cut, integer_optimality_cut, no_good_cut
from evgrid.core.parallel import ParallelOptions, open_client, options_from_mapping
from evgrid.core.solvers import (
    InfeasibleModelError,
    NoIncumbentError,
    SolverError,
    SolverLimitWarning,
    UnboundedModelError,
    bounds_only_highs,
    solve,
)
from evgrid.formulations.fleet import densest_need, fleet_schedule, interval_needs
from evgrid.papers.kerama2025.case import DT_H, N_PERIODS, KeramaCase, one_scenario
from evgrid.papers.kerama2025.evaluate import linear_vs_ac
from evgrid.papers.kerama2025.model import (
    VALUE_FUNCTION_TOL,
    NetworkInfeasibleError,
    build_single_level,
    check_fleet_energy,
    check_network_budget,
    declare_aggregator,
    declare_scenario_network,
    linear_state,
    robust_voltage_margins,
    schedule_from_model,
)

__all__ = [
    "BendersResult",
    "FeasibilityCut",
    "ScenarioSolution",
    "build_feasibility_subproblem",
    "build_master",
    "build_safe_caps",
    "build_subproblem",
    "servability_rows",
    "solve_benders",
]


def build_subproblem(case: KeramaCase, scenario: int) -> tuple[pyo.ConcreteModel, list]:
    """Scenario ``scenario``'s part of the single-level model, with the cap grid relaxed.

    The DSO's import caps are the only link between scenarios (each
    scenario has its own peak, Eq. 1). Here they sit on their grid
    (``grid.bit``) with the bits made continuous: once the master fixes them
    (by bounds, so that their reduced costs are the subgradient), the
    subproblem is an LP: DistFlow, the aggregators' primal and dual
    feasibility and the strong-duality inequality, whose McCormick products
    are exact at 0/1 bits. Its objective is the scenario's
    probability-weighted cost. Returns the model and its coupling variables,
    the bits, in the grid's order.
    """
    if case.params.reformulation != "strong_duality":
        raise ValueError("Benders needs reformulation='strong_duality' (LP subproblems)")
    if case.params.cap_bits < 1:
        raise ValueError("Benders needs the caps on a grid: cap_bits >= 1")
    model, _info = build_single_level(one_scenario(case, scenario))
    bits = list(model.grid.bit.values())
    for bit in bits:
        bit.domain = pyo.UnitInterval
    return model, bits


def build_feasibility_subproblem(case: KeramaCase, scenario: int) -> tuple[pyo.ConcreteModel, list]:
    """Scenario ``scenario``'s distance to feasibility in the cap grid's bits, as an LP.

    The subproblem of :func:`build_subproblem` with its bits free in
    ``[0, 1]``, a copy ``hat`` of them (to be fixed by bounds at the grid
    point the master proposed) and the objective
    ``F(hat) = min sum_i w_i |bit_i - hat_i|``, with ``w_i = 2**k / (2**n - 1)``
    for bit ``k`` of a cap: the distance in fractions of the aggregator's bid
    bound ``b_max_kw`` by which the caps must move before every constraint of
    the scenario (DistFlow, voltage and current limits, Eqs. 2-7; the
    aggregators' feasibility and optimality, Eqs. 8-14) can hold. ``F`` is 0
    at every grid point where the scenario is feasible, and the reduced costs
    of ``hat`` are its subgradient: together they make the feasibility cut of
    :func:`evgrid.algorithms.benders.feasibility_cut`. Returns the model and
    the ``hat`` variables in the grid's order. If the LP itself is
    infeasible, no caps at all, even fractional ones, let the scenario hold.

    The model keeps the scenario's cost (``objective``, deactivated): with
    ``above`` and ``below`` fixed at 0 it is :func:`build_subproblem`'s LP
    with the bits tied to ``hat``, so one model serves both solves
    (:class:`_ScenarioLP`).
    """
    model, bits = build_subproblem(case, scenario)
    model.objective.deactivate()  # the scenario's cost: :class:`_ScenarioLP` switches back to it
    n_bits = case.params.cap_bits
    weight = [2**k / (2**n_bits - 1) for (_i, k) in (bit.index() for bit in bits)]
    f = model.feasibility = pyo.Block()
    f.i = pyo.RangeSet(0, len(bits) - 1)
    f.hat = pyo.Var(f.i, bounds=(0.0, 1.0), doc="the master's grid point (fixed by bounds)")
    f.above = pyo.Var(f.i, domain=pyo.NonNegativeReals, doc="bit above hat")
    f.below = pyo.Var(f.i, domain=pyo.NonNegativeReals, doc="bit below hat")
    f.eq_link = pyo.Constraint(
        f.i, rule=lambda f, i: bits[i] - f.hat[i] == f.above[i] - f.below[i],
        doc="how far each bit moves from the master's point",
    )
    f.distance = pyo.Objective(
        expr=sum(weight[i] * (f.above[i] + f.below[i]) for i in f.i), sense=pyo.minimize,
        doc="weighted L1 distance to feasibility (fractions of b_max_kw)",
    )
    return model, [f.hat[i] for i in f.i]


def build_master(case: KeramaCase, lower_bounds: dict[int, float]) -> pyo.ConcreteModel:
    """The Benders master: the cap grid's bits and one cost estimate ``theta[s]`` per scenario.

    Cuts are added by :func:`solve_benders`: optimality cuts
    ``theta[s] >= v_s + sum rc (bit - bit_hat)`` from the reduced costs,
    the integer optimality cut of Laporte & Louveaux (1993), which is exact
    at the grid point it was made at
    (:func:`evgrid.algorithms.benders.integer_optimality_cut`), and,
    for a grid point at which some scenario is infeasible, that scenario's
    feasibility cut (:func:`build_feasibility_subproblem`,
    :func:`evgrid.algorithms.benders.feasibility_cut`); a no-good cut
    (:func:`evgrid.algorithms.benders.no_good_cut`) only where the relaxed
    subproblem is feasible at the point although the exact one is not.
    """
    n_caps = len(case.free_caps)
    m = pyo.ConcreteModel(name="kerama2025_benders_master")
    m.bit = pyo.Var(range(n_caps), range(case.params.cap_bits), domain=pyo.Binary)
    m.theta = pyo.Var(case.scenarios, bounds=lambda _m, s: (lower_bounds[s], None))
    m.cuts = pyo.ConstraintList()
    m.objective = pyo.Objective(expr=sum(m.theta[s] for s in case.scenarios))
    return m


def servability_rows(case: KeramaCase) -> list[tuple[list[int], float, float]]:
    """Linear conditions on the free caps without which some fleet cannot be served.

    Per aggregator and interval of hours ``[t1, t2)``, its imports within
    the interval are at least its fleet's net draw there (Eq. 9: import
    minus export is the fleet's net charging, and the export is not
    negative), which is at least what its EVs must draw there in every
    scenario (:func:`evgrid.formulations.fleet.interval_needs` with ``net``,
    discharging counted). With the imports at most the caps (the leader's
    constraint), a grid point can be feasible only if ``sum cap[a, t] * dt
    >= need[a, t1, t2]`` for every such interval. Each row is ``(indices of
    the free caps in the interval, kWh of the interval's fixed caps,
    need)``; rows that no caps could break are left out.
    """
    index = {cap: i for i, cap in enumerate(case.free_caps)}
    rows = []
    for a in case.aggregators:
        need = np.max(
            [interval_needs(case.fleet(a, s), N_PERIODS, DT_H, net=True)[0] for s in case.scenarios], axis=0
        )
        for t1 in range(N_PERIODS):
            for t2 in range(t1 + 1, N_PERIODS + 1):
                free = [index[a, t] for t in range(t1, t2) if (a, t) in index]
                fixed_kwh = case.b_max_kw[a] * DT_H * (t2 - t1 - len(free))
                if free and need[t1, t2] > fixed_kwh + 1e-9:
                    rows.append((free, fixed_kwh, float(need[t1, t2])))
    return rows


def _add_servability_cuts(master: pyo.ConcreteModel, case: KeramaCase) -> None:
    """:func:`servability_rows` in the master's bits (``master.servability``)."""
    n_bits = case.params.cap_bits
    top = 2**n_bits - 1
    master.servability = pyo.ConstraintList()
    for free, fixed_kwh, need in servability_rows(case):
        a = case.free_caps[free[0]][0]
        step_kwh = case.b_max_kw[a] / top * DT_H
        master.servability.add(
            fixed_kwh + step_kwh * sum(2**k * master.bit[i, k] for i in free for k in range(n_bits))
            >= need - SERVABILITY_TOL_KWH
        )


#: Slack (kWh) of a servability cut, so that round-off never removes a grid point that meets it exactly.
SERVABILITY_TOL_KWH = 1e-6


@dataclass(frozen=True)
class ScenarioSolution:
    """What the notebook needs of one solved scenario model, as plain tables (picklable)."""

    scenario: int
    objective: float | None  # None: infeasible at these caps
    reduced_costs: list[float]  # per bit, in the grid's order
    schedule: pd.DataFrame | None = None  # evgrid.papers.kerama2025.case.SCHEDULE_COLUMNS
    soc: pd.DataFrame | None = None  # aggregator, ev, t, p_ch_kw, p_dis_kw, e_kwh
    inside_cost_usd: dict | None = None  # aggregator -> cost_usd in the model
    dual_usage: float | None = None  # largest |dual| / w over the aggregators
    linear_state: dict | None = None  # evgrid.papers.kerama2025.model.linear_state
    distflow_vs_ac: pd.DataFrame | None = None  # filled for the best grid point only
    peak_kw: float | None = None
    solve_s: float = 0.0


_CACHE: dict = {}  # per process: (token, scenario) -> _ScenarioLP, one run's only


def _forget(token: str) -> int:
    """Drop run ``token``'s cached subproblems from this process; returns how many there were."""
    keys = [k for k in _CACHE if k[0] == token]
    for key in keys:
        del _CACHE[key]
    return len(keys)


class _ScenarioLP:
    """One scenario's LP, built and handed to the solver once per run, re-solved in three modes.

    The model is :func:`build_feasibility_subproblem`'s. Between solves only
    bounds change, plus, at most twice per run, the objective and whether the
    aggregators' optimality rows (the ``kkt`` blocks) are in the solver:

    * ``high_point``: optimality rows out, ``hat`` free in ``[0, 1]``, the
      scenario's cost: the high-point relaxation (a bound for any caps);
    * ``optimal``: rows in, ``hat`` fixed at the grid point, ``above`` and
      ``below`` at 0, the scenario's cost: the Benders subproblem;
    * ``distance``: rows in, ``hat`` fixed, ``above``/``below`` free, the
      distance to feasibility: the feasibility subproblem.

    With HiGHS the interface is persistent (:func:`evgrid.core.solvers.bounds_only_highs`):
    switching the objective and adding the optimality rows are told to it
    explicitly, so the model is translated once, not once per mode and
    iteration. Other solvers re-read the model at each solve, and the
    Pyomo activation state is all they need.
    """

    def __init__(self, case: KeramaCase, scenario: int):
        start = time.perf_counter()
        self.case, self.scenario = case, scenario
        self.model, self.hats = build_feasibility_subproblem(case, scenario)
        f = self.model.feasibility
        self.moves = [*f.above.values(), *f.below.values()]
        self.kkt_rows = [
            c for block in self.model.kkt.values()
            for c in block.component_data_objects(pyo.Constraint, descend_into=True)
        ]
        self.interface = _lp_interface(case)
        self.translated = False  # whether the persistent interface holds the model yet
        self.objective = self.model.feasibility.distance
        self.kkt_in = True
        self.build_s = time.perf_counter() - start

    def _mode(self, objective, kkt: bool) -> None:
        if objective is not self.objective:
            self.objective.deactivate()
            objective.activate()
            if self.translated:
                self.interface.set_objective(objective)
            self.objective = objective
        if kkt != self.kkt_in:
            for block in self.model.kkt.values():
                if kkt:
                    block.activate()
                else:
                    block.deactivate()
            if self.translated:
                if kkt:
                    self.interface.add_constraints(self.kkt_rows)
                else:
                    self.interface.remove_constraints(self.kkt_rows)
            self.kkt_in = kkt

    def _bounds(self, point: list[int] | None, moves_free: bool) -> None:
        values = point if point is not None else [None] * len(self.hats)
        for var, value in zip(self.hats, values, strict=True):
            var.setlb(0.0 if value is None else value)
            var.setub(1.0 if value is None else value)
        for var in self.moves:
            var.setub(None if moves_free else 0.0)

    def solve(self, mode: str, point: list[int] | None = None):
        """Solve in ``mode`` (see the class); returns the :class:`~evgrid.core.solvers.SolveResult`."""
        m = self.model
        if mode == "high_point":
            self._mode(m.objective, kkt=False)
            self._bounds(None, moves_free=False)
        elif mode == "optimal":
            self._mode(m.objective, kkt=True)
            self._bounds(point, moves_free=False)
        elif mode == "distance":
            self._mode(m.feasibility.distance, kkt=True)
            self._bounds(point, moves_free=True)
        else:
            raise ValueError(f"mode={mode!r}: use 'high_point', 'optimal' or 'distance'")
        try:
            return _solve_lp(m, self.case, interface=self.interface,
                             reduced_costs_of=None if mode == "high_point" else self.hats)
        finally:
            self.translated = self.interface is not None


def _scenario_lp(token: str, case: KeramaCase, scenario: int) -> _ScenarioLP:
    """This process's LP of ``scenario`` for run ``token``, built on first use."""
    key = (token, scenario)
    if key not in _CACHE:
        for old in [k for k in _CACHE if k[0] != token]:
            del _CACHE[old]  # an earlier run's models
        _CACHE[key] = _ScenarioLP(case, scenario)
    return _CACHE[key]


def _solve_scenario(token: str, hat: list[int], case: KeramaCase, scenario: int) -> ScenarioSolution:
    """Scenario ``scenario``'s subproblem at the grid point ``hat`` (one Benders step)."""
    lp = _scenario_lp(token, case, scenario)
    model = lp.model
    start = time.perf_counter()
    try:
        res = lp.solve("optimal", hat)
    except (InfeasibleModelError, UnboundedModelError):
        return ScenarioSolution(scenario, None, [], solve_s=time.perf_counter() - start)
    usage = 0.0
    for a in case.aggregators:
        block = model.kkt[a, scenario]
        w = case.params.dual_bound_usd_per_kwh
        usage = max(usage, max(abs(pyo.value(d)) for d in block.dual.values()) / w)
    return _scenario_solution(model, case, scenario, res.objective,
                              [float(res.reduced_costs[v]) for v in lp.hats], usage, start)


def _scenario_solution(model: pyo.ConcreteModel, case: KeramaCase, scenario: int, objective: float,
                       reduced_costs: list[float], usage: float | None, start: float) -> ScenarioSolution:
    """The :class:`ScenarioSolution` of a solved scenario model (strong-duality or value-function)."""
    soc = []
    for a in case.aggregators:
        table = fleet_schedule(model.agg[a, scenario])
        table.insert(0, "aggregator", a)
        soc.append(table)
    return ScenarioSolution(
        scenario=scenario,
        objective=objective,
        reduced_costs=reduced_costs,
        schedule=schedule_from_model(model, one_scenario(case, scenario)),
        soc=pd.concat(soc, ignore_index=True),
        inside_cost_usd={a: pyo.value(model.agg[a, scenario].cost_usd) for a in case.aggregators},
        dual_usage=usage,
        linear_state=linear_state(model, scenario),
        peak_kw=pyo.value(model.peak_kw[scenario]),
        solve_s=time.perf_counter() - start,
    )


def _caps_at(case: KeramaCase, point: list[int]) -> dict[tuple[int, int], float]:
    """The free caps (kW) at the grid point ``point`` (bits in the master's order)."""
    n_bits = case.params.cap_bits
    top = 2**n_bits - 1
    return {
        (a, t): case.b_max_kw[a] / top * sum(2**k * point[idx * n_bits + k] for k in range(n_bits))
        for idx, (a, t) in enumerate(case.free_caps)
    }


class _ValueFunctionLP:
    """One scenario's bi-level cost at fixed caps, without the aggregators' duals.

    ``subproblem="value_function"`` of :func:`solve_benders`. For fixed caps
    the aggregators' problems (Eqs. 8-14) are LPs of their own; their optima
    ``phi[a]`` (:func:`evgrid.papers.kerama2025.model.follower_optimum`) are
    found first, each aggregator alone, and the scenario LP is then the
    network and the aggregators' primal constraints with each aggregator's
    cost at most ``phi[a]``: the ``lower_level="value_function"`` model of
    :func:`~evgrid.papers.kerama2025.model.build_single_level`. At fixed caps
    this is exactly what strong duality imposes, without the dual variables,
    the dual feasibility rows and the dual bound, so its optimum is the
    bi-level cost at those caps (the optimistic reading: among an
    aggregator's optimal schedules, the one that suits the DSO).

    All models are built once per run and re-solved with new variable bounds
    only (:func:`evgrid.core.solvers.bounds_only_highs`, warm-started simplex):
    the caps are variables fixed by bounds, and so is ``phi``; left free, the
    scenario LP is the high-point relaxation. What it does not give is a
    subgradient in the cap bits (the bi-level cost is not convex in the
    caps): Benders then relies on the integer optimality cut, and a grid
    point at which the scenario is infeasible gets its feasibility cut from
    the strong-duality LP (:class:`_ScenarioLP`), built only then.
    """

    def __init__(self, case: KeramaCase, scenario: int):
        start = time.perf_counter()
        self.case, self.scenario = case, scenario
        one = one_scenario(case, scenario)
        self.model, _info = build_single_level(one, lower_level="high_point")
        m = self.model
        m.vf = pyo.Block()
        m.vf.phi_usd = pyo.Var(case.aggregators, doc="the aggregator's optimum at the caps (fixed by bounds)")
        m.vf.ineq_optimal = pyo.Constraint(
            case.aggregators, rule=lambda vf, a: m.agg[a, scenario].cost_usd <= vf.phi_usd[a],
            doc="each aggregator's cost is its optimum at these caps (free phi: the high-point relaxation)",
        )
        self.followers = {}
        for a in case.aggregators:
            f = pyo.ConcreteModel(name=f"kerama2025_aggregator_{a}_scenario_{scenario}")
            hours = [t for aa, t in case.free_caps if aa == a]
            f.cap_kw = pyo.Var(hours, bounds=(0.0, case.b_max_kw[a]), doc="the DSO's cap (fixed by bounds)")
            declare_aggregator(f, one, one.fleet(a, scenario), b_max_kw=case.b_max_kw[a],
                               import_cap_kw={t: f.cap_kw[t] for t in hours})
            f.objective = pyo.Objective(expr=f.cost_usd, sense=pyo.minimize)
            self.followers[a] = (f, _lp_interface(case))
        self.interface = _lp_interface(case)
        self.build_s = time.perf_counter() - start

    def _solve(self, model: pyo.ConcreteModel, interface):
        """Solve ``model`` through its persistent ``interface``; returns the result and the interface to keep.

        If HiGHS ends without a status (seen at 5,000 EVs with a simplex
        warm-started from the last basis), the model is handed to a fresh
        interface and solved from scratch by the interior point method, once.
        """
        name = self.case.params.solver.solver
        try:
            return solve(model, name, interface=interface), interface
        except (InfeasibleModelError, UnboundedModelError):
            raise
        except SolverError:
            if interface is None:
                raise
            fresh = _lp_interface(self.case)
            return solve(model, name, interface=fresh, options={"solver": "ipm"}), fresh

    def high_point(self):
        """The high-point relaxation: caps and ``phi`` free."""
        m = self.model
        for (a, t) in self.case.free_caps:
            m.cap_kw[a, t].setlb(0.0)
            m.cap_kw[a, t].setub(self.case.b_max_kw[a])
        for var in m.vf.phi_usd.values():
            var.setlb(None)
            var.setub(None)
        res, self.interface = self._solve(m, self.interface)
        return res

    def optimal(self, point: list[int]):
        """The bi-level cost at the grid point ``point``; raises InfeasibleModelError if there is none."""
        m = self.model
        caps = _caps_at(self.case, point)
        for (a, t), cap in caps.items():
            m.cap_kw[a, t].setlb(cap)
            m.cap_kw[a, t].setub(cap)
        for a, (f, interface) in self.followers.items():
            for t, var in f.cap_kw.items():
                var.setlb(caps[a, t])
                var.setub(caps[a, t])
            res, interface = self._solve(f, interface)
            self.followers[a] = (f, interface)
            phi = res.objective
            m.vf.phi_usd[a].setlb(None)
            m.vf.phi_usd[a].setub(phi + VALUE_FUNCTION_TOL * max(1.0, abs(phi)))
        res, self.interface = self._solve(m, self.interface)
        return res


def _value_function_lp(token: str, case: KeramaCase, scenario: int) -> _ValueFunctionLP:
    """This process's value-function LP of ``scenario`` for run ``token``, built on first use."""
    key = (token, scenario, "value_function")
    if key not in _CACHE:
        for old in [k for k in _CACHE if k[0] != token]:
            del _CACHE[old]
        _CACHE[key] = _ValueFunctionLP(case, scenario)
    return _CACHE[key]


def _solve_scenario_vf(token: str, hat: list[int], case: KeramaCase, scenario: int) -> ScenarioSolution:
    """Scenario ``scenario``'s bi-level cost at the grid point ``hat`` by its aggregators' optima."""
    lp = _value_function_lp(token, case, scenario)
    start = time.perf_counter()
    try:
        res = lp.optimal(hat)
    except (InfeasibleModelError, UnboundedModelError):
        return ScenarioSolution(scenario, None, [], solve_s=time.perf_counter() - start)
    return _scenario_solution(lp.model, case, scenario, res.objective, [], None, start)


def _high_point_bound_vf(token: str, case: KeramaCase, scenario: int) -> tuple[float, dict] | None:
    """:func:`_high_point_bound` on the scenario's value-function LP (no dual variables built)."""
    lp = _value_function_lp(token, case, scenario)
    try:
        bound = lp.high_point().objective
    except InfeasibleModelError:
        return None
    return bound, _relaxed_imports(lp.model, case, scenario)


#: Distances to feasibility at or below this are solver noise: the point gets a no-good cut.
FEASIBILITY_TOL = 1e-6


@dataclass(frozen=True)
class FeasibilityCut:
    """What the master needs from a scenario that is infeasible at a grid point."""

    scenario: int
    distance: float | None  # F(hat); None: infeasible at every (even fractional) grid point
    subgradient: list[float]  # dF/dhat per bit, in the grid's order
    solve_s: float = 0.0


def _feasibility_step(token: str, hat: list[int], case: KeramaCase, scenario: int) -> FeasibilityCut:
    """Scenario ``scenario``'s distance to feasibility at ``hat`` and its subgradient."""
    lp = _scenario_lp(token, case, scenario)
    start = time.perf_counter()
    try:
        res = lp.solve("distance", hat)
    except InfeasibleModelError:
        return FeasibilityCut(scenario, None, [], time.perf_counter() - start)
    return FeasibilityCut(
        scenario, max(0.0, res.objective), [float(res.reduced_costs[v]) for v in lp.hats],
        time.perf_counter() - start,
    )


def _lp_interface(case: KeramaCase):
    """With HiGHS, a persistent interface: the subproblem is translated once per run, not per iteration."""
    return bounds_only_highs() if case.params.solver.solver == "highs" else None


def _solve_lp(model: pyo.ConcreteModel, case: KeramaCase, **kwargs):
    """Solve a scenario LP with the configured solver; HiGHS uses its interior point method.

    On the paper instance HiGHS' IPM (with crossover, so the solution is a
    vertex and its reduced costs are exact) takes 2.6 s where dual simplex
    takes 4.3 s per strong-duality subproblem.
    """
    name = case.params.solver.solver
    options = {"solver": "ipm"} if name == "highs" else None
    return solve(model, name, options=options, **kwargs)


def _high_point_bound(token: str, case: KeramaCase, scenario: int) -> tuple[float, dict] | None:
    """Scenario ``scenario``'s high-point relaxation: a lower bound on its bi-level cost.

    Solved on the scenario's own LP with the aggregators' optimality rows
    left out (:class:`_ScenarioLP`): the model that
    ``build_single_level(..., lower_level="high_point")`` builds. Returns the
    bound and the relaxation's imports ``b_imp_kw[a, t]`` (what the
    aggregators would draw if they did what suits the feeder), or None if it
    is infeasible: then no schedule of the fleets, however cooperative,
    meets the network constraints in that scenario.
    """
    lp = _scenario_lp(token, case, scenario)
    try:
        bound = lp.solve("high_point").objective
    except InfeasibleModelError:
        return None
    return bound, _relaxed_imports(lp.model, case, scenario)


def _relaxed_imports(model: pyo.ConcreteModel, case: KeramaCase, scenario: int) -> dict:
    """The imports ``b_imp_kw[a, t]`` of a solved scenario model."""
    return {
        (a, t): max(0.0, pyo.value(model.agg[a, scenario].b_imp_kw[t]))
        for a in case.aggregators
        for t in case.periods
    }


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`, with the bound trace for the notebook's figure.

    ``scenarios`` holds the best grid point's per-scenario solutions
    (:class:`ScenarioSolution`); ``relative_gap`` is ``(objective -
    lower_bound) / |objective|``.
    """

    objective: float
    lower_bound: float
    trace: pd.DataFrame  # iteration, lower_bound, upper_bound, gap, cuts, feasibility_cuts, no_good_cuts, seconds
    caps_kw: pd.DataFrame  # aggregator x t
    converged: bool
    scenarios: dict[int, ScenarioSolution]
    initial_bounds: dict[int, float]

    @property
    def relative_gap(self) -> float:
        return (self.objective - self.lower_bound) / max(abs(self.objective), 1e-9)

    @property
    def schedule(self) -> pd.DataFrame:
        return pd.concat([s.schedule for s in self.scenarios.values()], ignore_index=True)


def _level_bits(case: KeramaCase, level) -> dict[tuple[int, int], int]:
    """The master's bits ``(cap index, bit)`` of the grid levels ``level(a, t)`` of the free caps."""
    hat = {}
    for idx, (a, t) in enumerate(case.free_caps):
        value = level(a, t)
        for k in range(case.params.cap_bits):
            hat[idx, k] = (value >> k) & 1
    return hat


def _grid_bits(case: KeramaCase, cap_kw, slack: float) -> dict[tuple[int, int], int]:
    """Bits of the smallest grid levels at or above ``cap_kw(a, t)`` (kW; ``slack`` in levels absorbs round-off)."""
    top = 2**case.params.cap_bits - 1
    return _level_bits(
        case, lambda a, t: min(top, int(np.ceil(cap_kw(a, t) / (case.b_max_kw[a] / top) - slack)))
    )


def _high_point_grid_point(case: KeramaCase, imports: list[dict]) -> dict[tuple[int, int], int]:
    """Grid bits of the caps that follow the high-point schedules, for an early upper bound.

    In the high-point relaxation the DSO schedules every fleet as suits the
    feeder best; its lower bound is often close to the bi-level optimum. Caps
    at the smallest grid level at or above the most any scenario's relaxed
    schedule imports in that hour leave each aggregator little room to
    deviate from it, so the bi-level cost at these caps is often close to the
    bound (and if an aggregator's response overloads the feeder, the grid
    point is infeasible and cut off like any other).
    """
    return _grid_bits(case, lambda a, t: max(imp[a, t] for imp in imports), slack=1e-6)


def _spread_grid_point(case: KeramaCase) -> dict[tuple[int, int], int]:
    """Grid bits of the flattest caps under which every fleet can still be served.

    Per aggregator, one cap for every hour: the smallest grid level at or
    above the densest need of its EVs in any scenario, i.e. the largest
    ``sum(energy to charge / eta_ch) / (t2 - t1)`` over the EVs plugged in
    only within hours ``[t1, t2)`` (:func:`evgrid.formulations.fleet.densest_need`;
    a uniform rate below it cannot serve them), plus one level of slack. It spreads charging over the night, the
    opposite of the uncapped response that piles it into the cheapest hours.
    """
    top = 2**case.params.cap_bits - 1
    levels = {}
    for a in case.aggregators:
        rate = 0.0
        for s in case.scenarios:
            densest = densest_need(case.fleet(a, s), N_PERIODS, DT_H)
            if densest is not None:
                rate = max(rate, densest["rate_kw"])
        step = case.b_max_kw[a] / top
        levels[a] = min(top, int(np.ceil(rate / step - 1e-9)) + 1)
    return _level_bits(case, lambda a, _t: levels[a])


def build_safe_caps(case: KeramaCase) -> pyo.ConcreteModel:
    """Caps that keep every scenario's network safe whatever the aggregators import, as an LP.

    Variables ``cap_kw[a, t]`` in ``[0, b_max_kw - step]`` (``step`` is one
    level of the cap grid, ``b_max_kw / (2**cap_bits - 1)``) with, in every
    scenario:

    * the network (DistFlow, robust voltage and current limits, Eqs. 2-7)
      carrying the forecast load minus PV plus every aggregator importing
      ``cap_kw + step`` in every hour: rounding a cap *up* to the grid
      (:func:`_safe_grid_point`) adds less than one step, so the rounded
      caps stay safe. In linear DistFlow each bus voltage falls and each
      branch's flow rises with every load
      (:func:`evgrid.papers.kerama2025.model.robust_voltage_margins`), so an
      aggregator importing less than its cap cannot break a limit that held
      at the cap; exports, which the caps do not bound, are left to the
      exact subproblem's check;
    * each aggregator's fleet able to charge what its EVs need within
      ``cap_kw``, through Hall's condition on intervals of hours
      (:func:`evgrid.formulations.fleet.interval_needs`): necessary for
      Eqs. (9)-(14) to hold, not always sufficient, so the Benders
      subproblem checks the grid point like any other.

    The objective is the DSO's expected cost (Eq. 1) with the caps as the
    imports: it keeps caps low where the fleets do not need them and
    spreads them where the feeder is loaded. Any aggregator response within
    the rounded caps is then feasible for the network, so that grid point
    is feasible in the bi-level problem (up to exports and to the fleets'
    interval condition): an upper bound that needs no luck. An LP, not a
    MILP over the grid's levels: the MILP's relaxation alone took over
    120 s at 500 EVs on the 33-bus feeder.
    """
    params = case.params
    top = 2**params.cap_bits - 1
    step = {a: case.b_max_kw[a] / top for a in case.aggregators}
    free = case.free_caps
    m = pyo.ConcreteModel(name="kerama2025_safe_caps")
    m.cap_kw = pyo.Var(free, bounds=lambda _m, a, _t: (0.0, case.b_max_kw[a] - step[a]),
                       doc="import cap before rounding up to the grid (kW)")

    def worst_import_kw(a, t):  # what the aggregator may import once its cap is rounded up
        return m.cap_kw[a, t] + step[a] if (a, t) in m.cap_kw else case.b_max_kw[a]

    # The fleets, through Hall's condition on intervals (interval_needs): per
    # aggregator and scenario a draw x[t] within the cap and the plugged EVs'
    # room that covers what every interval must get. Necessary, and nearly
    # always sufficient; the exact subproblem checks (the per-EV fleets of
    # all scenarios in one LP took HiGHS' IPM minutes at 500 EVs, coupled
    # through the caps, where one scenario alone takes 3 s).
    m.fleet = pyo.Block(case.aggregators, case.scenarios)
    periods = list(case.periods)
    for a in case.aggregators:
        for s in case.scenarios:
            need, room = interval_needs(case.fleet(a, s), N_PERIODS, DT_H)
            b = m.fleet[a, s]
            b.x_kw = pyo.Var(periods, bounds=lambda _b, t, room=room: (0.0, room[t]))
            b.ineq_cap = pyo.Constraint(
                [t for t in periods if (a, t) in m.cap_kw], rule=lambda b, t, a=a: b.x_kw[t] <= m.cap_kw[a, t]
            )
            intervals = [(t1, t2) for t1 in periods for t2 in range(t1 + 1, N_PERIODS + 1)
                         if need[t1, t2] > 1e-9]
            b.ineq_need = pyo.Constraint(
                intervals,
                rule=lambda b, t1, t2, need=need: sum(b.x_kw[t] for t in range(t1, t2)) * DT_H >= need[t1, t2],
            )
    check_network_budget(case)
    margins = robust_voltage_margins(case)
    buses = list(case.network.buses["bus"])
    at_bus = {b: [a for a in case.aggregators if case.aggregator_bus[a] == b] for b in buses}
    m.net = pyo.Block(case.scenarios)
    for s in case.scenarios:
        declare_scenario_network(m.net[s], case, s, lambda b, t: sum(worst_import_kw(a, t) for a in at_bus[b]),
                                 margins[s])
    m.peak_kw = pyo.Var(case.scenarios, bounds=(0.0, 1e5))
    m.ineq_peak = pyo.Constraint(
        case.scenarios, list(case.periods), rule=lambda m, s, t: m.peak_kw[s] >= m.net[s].p_import_kw[t]
    )
    price = case.price_usd_per_kwh
    m.objective = pyo.Objective(
        expr=sum(
            case.probability[s] * (sum(price[t] * DT_H * m.net[s].p_import_kw[t] for t in case.periods)
                                   + params.peak_penalty_usd_per_kw * m.peak_kw[s])
            for s in case.scenarios
        ),
        sense=pyo.minimize,
        doc="Eq. (1) with the aggregators importing at their caps",
    )
    return m


def _safe_grid_point(case: KeramaCase) -> dict[tuple[int, int], int] | None:
    """Grid bits of :func:`build_safe_caps`' caps rounded up, or None if no caps are safe."""
    model = build_safe_caps(case)
    try:
        _solve_lp(model, case)
    except InfeasibleModelError:
        return None
    return _grid_bits(case, lambda a, t: pyo.value(model.cap_kw[a, t]), slack=1e-6)


def solve_benders(
    case: KeramaCase,
    *,
    tol: float = 1e-4,
    max_iterations: int = 100,
    time_limit_s: float | None = None,
    workers: int = 1,
    parallel: ParallelOptions | Mapping | None = None,
    progress: bool = False,
    feasibility: str = "distance",
    subproblem: str = "strong_duality",
    servability: bool | None = None,
) -> BendersResult:
    """Solve the single-level model by Benders decomposition over scenarios.

    The master picks the caps (grid bits); each scenario's subproblem
    (:func:`build_subproblem`) is an LP given them, solved serially
    (``workers=1``) or on a Dask cluster (:mod:`evgrid.core.parallel`): a
    local one of ``workers`` processes, or the one ``parallel`` names
    (:class:`~evgrid.core.parallel.ParallelOptions`, which wins over
    ``workers``). Each scenario stays on one worker, which keeps its LP
    between iterations (:class:`_ScenarioPool`).

    Each ``theta[s]`` starts at its scenario's high-point relaxation (the
    network and the aggregators' constraints without their optimality), a
    valid bound for any caps. The first grid point is the uncapped one. If
    it is feasible, the second, while the gap is open, is the caps that
    follow the relaxation's schedules (:func:`_high_point_grid_point`). If
    it is not, the second is the safe caps (:func:`build_safe_caps`), at
    which any aggregator response fits the network, and then the guided
    caps; only if no caps are safe, the guided caps and, if they overload
    the feeder too, the flattest caps the fleets can live with
    (:func:`_spread_grid_point`). Then the master's. Lower bound: the master's
    optimum; upper bound: the best grid point at which every scenario is feasible. Stops when the relative
    gap is at most ``tol``; otherwise, after ``max_iterations`` or
    ``time_limit_s``, returns with ``converged=False`` and a
    :class:`evgrid.core.solvers.SolverLimitWarning` that states the gap.

    A grid point at which some scenario is infeasible is cut off, with
    ``feasibility="distance"`` (the default), by each such scenario's
    feasibility cut (:func:`build_feasibility_subproblem`), or, with
    ``"no_good"``, by a no-good cut that excludes that point alone (the
    method before; kept to measure the difference). The trace counts both.

    ``subproblem`` says how a grid point is evaluated. ``"strong_duality"``
    (the default, the paper's reformulation): one LP per scenario with the
    aggregators' duals (:func:`build_subproblem`), whose reduced costs give an
    optimality cut in the bits besides the integer one. ``"value_function"``:
    each aggregator's optimum alone first, then one LP per scenario without
    duals (:class:`_ValueFunctionLP`); the same bi-level cost at every grid
    point (exact where the strong-duality LP's dual bound does not bind),
    and cheaper at large fleets, but only the integer optimality cut. The
    strong-duality LP is then built only for a scenario that needs a
    feasibility cut; at thousands of EVs that LP costs minutes per scenario,
    and ``feasibility="no_good"`` keeps every step cheap.

    ``servability`` puts into the master, from the start, the conditions
    without which a fleet cannot be served whatever the network
    (:func:`servability_rows`): the master then never proposes caps too low
    to charge the EVs, which otherwise take one feasibility or no-good cut
    each. Default: on with ``subproblem="value_function"``, off with
    ``"strong_duality"`` (whose pipeline runs predate them).
    """
    if feasibility not in ("distance", "no_good"):
        raise ValueError(f"feasibility={feasibility!r}: use 'distance' or 'no_good'")
    if subproblem not in ("strong_duality", "value_function"):
        raise ValueError(f"subproblem={subproblem!r}: use 'strong_duality' or 'value_function'")
    by_duals = subproblem == "strong_duality"
    evaluate = _solve_scenario if by_duals else _solve_scenario_vf
    start = time.perf_counter()
    options = _benders_options(workers, parallel)
    check_network_budget(case)
    check_fleet_energy(case)
    token = uuid.uuid4().hex

    # plain text on stdout: no widget, nothing on stderr
    bar = tqdm(desc="high-point bounds", unit="LP", disable=not progress, file=sys.stdout)
    stack = contextlib.ExitStack()
    try:
        pool = None if options.serial else _ScenarioPool(stack.enter_context(open_client(options)), case)
    except BaseException:
        bar.close()
        stack.close()
        raise

    def run_all(fn, *args, only=None):
        """``fn(*args, case, s)`` once per scenario ``s`` (of ``only``, if given), in their order."""
        scenarios = case.scenarios if only is None else only
        if pool is None:
            out = []
            for s in scenarios:
                out.append(fn(*args, case, s))
                bar.update()
            return out
        return pool.map(fn, args, bar, scenarios)

    try:
        relaxed = dict(zip(case.scenarios, run_all(_high_point_bound if by_duals else _high_point_bound_vf,
                                                   token), strict=True))
        hopeless = [s for s, found in relaxed.items() if found is None]
        if hopeless:
            total = sum(len(case.fleets[s]) for s in hopeless) // len(hopeless)
            raise NetworkInfeasibleError(
                f"no schedule of the {total} EVs meets the network constraints (Eqs. 2-7: DistFlow, "
                f"robust voltage and current limits) in scenario(s) {hopeless}, even with every "
                "aggregator doing what suits the feeder (the high-point relaxation is infeasible), "
                "so no caps can help: fewer EVs per aggregator, more aggregator buses, or a "
                "smaller robust budget"
            )
        initial = {s: bound for s, (bound, _imports) in relaxed.items()}
        master = build_master(case, initial)
        if (not by_duals) if servability is None else servability:
            _add_servability_cuts(master, case)
        n_bits = case.params.cap_bits
        key = [(i, k) for i in range(len(case.free_caps)) for k in range(n_bits)]
        hat = dict.fromkeys(key, 1)  # the uncapped grid point first
        # then, while the gap is open, the caps that follow the high-point schedules
        # and, while no grid point is feasible, the flattest caps the fleets can live with
        guided = _high_point_grid_point(case, [imports for _bound, imports in relaxed.values()])
        best, best_hat, best_solutions, rows = float("inf"), None, None, []
        lb, converged = sum(initial.values()), False
        n_feasibility_cuts = n_no_good_cuts = 0
        pending: list = []  # grid points to try before the master's (None: the spread caps)
        tried: set = set()
        for iteration in range(1, max_iterations + 1):
            bar.set_description(f"Benders iteration {iteration}")
            solutions = run_all(evaluate, token, [hat[ik] for ik in key])
            feasible = all(sol.objective is not None for sol in solutions)
            for sol in solutions:
                if sol.objective is None:
                    continue
                theta = master.theta[sol.scenario]
                if sol.reduced_costs:  # none from the value-function LP
                    master.cuts.add(
                        theta
                        >= sol.objective
                        + sum(
                            rc * (master.bit[ik] - hat[ik])
                            for ik, rc in zip(key, sol.reduced_costs, strict=True)
                        )
                    )
                master.cuts.add(
                    integer_optimality_cut(
                        theta,
                        [master.bit[ik] for ik in key],
                        [hat[ik] for ik in key],
                        sol.objective,
                        initial[sol.scenario],
                    )
                )
            if feasible:
                total = sum(sol.objective for sol in solutions)
                if total < best:
                    best, best_hat = total, dict(hat)
                    best_solutions = {sol.scenario: sol for sol in solutions}
            elif feasibility == "no_good":
                master.cuts.add(no_good_cut([master.bit[ik] for ik in key], [hat[ik] for ik in key]))
                n_no_good_cuts += 1
            else:
                point = [hat[ik] for ik in key]
                infeasible = [sol.scenario for sol in solutions if sol.objective is None]
                added = _add_feasibility_cuts(
                    master, key, point, run_all(_feasibility_step, token, point, only=infeasible)
                )
                n_feasibility_cuts += added[0]
                n_no_good_cuts += added[1]
            try:
                lb = max(lb, solve(master, case.params.solver.solver).objective)
            except InfeasibleModelError:
                raise NetworkInfeasibleError(
                    f"no grid point of the caps ({n_bits} bits per cap) is feasible in every "
                    f"scenario: the feasibility cuts of {iteration} iterations exclude them all "
                    "(Eqs. 2-7 cannot hold with the aggregators' optimal responses, Eqs. 8-14)"
                ) from None
            gap = (best - lb) / max(abs(best), 1e-9)
            rows.append((iteration, lb, best, gap, len(master.cuts), n_feasibility_cuts, n_no_good_cuts,
                         time.perf_counter() - start))
            bar.set_postfix(lb=f"{lb:.2f}", ub=f"{best:.2f}", gap=f"{gap:.2e}")
            if gap <= tol:
                converged = True
                break
            if time_limit_s is not None and time.perf_counter() - start >= time_limit_s:
                break
            if iteration == 1:
                # the uncapped point feasible: the guided caps, a good upper bound early, often
                # within the tolerance; infeasible: first the safe caps, feasible by construction
                safe = None
                if best_hat is None:
                    bar.set_description("safe caps")
                    safe = _safe_grid_point(case)
                pending = [guided] if best_hat is not None else (
                    [safe, guided] if safe is not None else [guided, None])
            tried.add(tuple(hat[ik] for ik in key))
            while pending:
                candidate = pending.pop(0)
                if candidate is None:  # the spread caps, only while no grid point was feasible
                    if best_hat is not None:
                        continue
                    candidate = _spread_grid_point(case)
                if tuple(candidate[ik] for ik in key) not in tried:
                    break
            else:
                candidate = {ik: round(pyo.value(master.bit[ik])) for ik in key}
            hat = candidate
    finally:
        bar.close()
        if pool is not None:
            pool.forget(token)
        else:
            _forget(token)
        stack.close()
    trace = pd.DataFrame(
        rows,
        columns=["iteration", "lower_bound", "upper_bound", "gap", "cuts", "feasibility_cuts",
                 "no_good_cuts", "seconds"],
    )
    if best_hat is None:
        raise NoIncumbentError(
            f"Benders stopped after {len(rows)} iterations and {rows[-1][-1]:.0f} s before any grid "
            "point of the caps was feasible in every scenario (lower bound "
            f"{rows[-1][1]:.2f}); raise max_iterations or time_limit_s",
            best_bound=rows[-1][1],
        )
    if not converged:
        warnings.warn(
            f"Benders stopped after {len(rows)} iterations and {rows[-1][-1]:.0f} s with a relative "
            f"gap of {rows[-1][3]:.2%} (tolerance {tol:.2%}); raise max_iterations or time_limit_s",
            SolverLimitWarning,
            stacklevel=2,
        )
    caps = {(a, t): case.b_max_kw[a] for a in case.aggregators for t in case.periods}
    caps.update(_caps_at(case, [best_hat[ik] for ik in key]))
    caps_kw = pd.Series(caps).unstack()
    checked = {  # DistFlow against AC, once, for the answer (not at every iteration)
        s: replace(
            sol,
            distflow_vs_ac=linear_vs_ac(one_scenario(case, s), sol.schedule, s, sol.linear_state),
        )
        for s, sol in best_solutions.items()
    }
    return BendersResult(best, lb, trace, caps_kw, converged, checked, initial)


def _add_feasibility_cuts(master: pyo.ConcreteModel, key: list, point: list[int],
                          cuts: list[FeasibilityCut]) -> tuple[int, int]:
    """Cut ``point`` off the master; returns how many feasibility and no-good cuts it took.

    Each infeasible scenario whose distance to feasibility is positive gives
    its feasibility cut, which excludes ``point`` and every grid point its
    linearisation proves infeasible. Only if none is (the relaxed subproblems
    are feasible at ``point`` within the solver's tolerance, although an
    exact one is not) is ``point`` excluded alone, by a no-good cut: the one
    case where a cut from the LP's dual information is not valid. A scenario
    whose feasibility LP is itself infeasible cannot be rescued by any caps.
    """
    hopeless = [c.scenario for c in cuts if c.distance is None]
    if hopeless:
        raise NetworkInfeasibleError(
            f"scenario(s) {hopeless}: no caps, not even between the grid's levels, let the network "
            "constraints (Eqs. 2-7) and the aggregators' optimality (Eqs. 8-14) hold together"
        )
    bits = [master.bit[ik] for ik in key]
    n = 0
    for c in cuts:
        if c.distance > FEASIBILITY_TOL:
            master.cuts.add(feasibility_cut(bits, point, c.distance, c.subgradient))
            n += 1
    if n:
        return n, 0
    master.cuts.add(no_good_cut(bits, point))
    return 0, 1


def _benders_options(workers: int, parallel: ParallelOptions | Mapping | None) -> ParallelOptions:
    """Where the scenario LPs run: ``parallel`` if given, else ``workers`` local processes."""
    if parallel is not None:
        return options_from_mapping(parallel)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return ParallelOptions(workers=workers)


class _ScenarioPool:
    """Benders' scenario LPs on a Dask cluster, each scenario kept on one worker.

    The case is sent to every worker once (``scatter``); scenario ``s`` is
    submitted to the same worker at every iteration (a loose restriction:
    if that worker dies, Dask runs it elsewhere), so the worker's cached,
    persistent LP (:data:`_CACHE`) is re-solved with new bounds rather than
    rebuilt. A task whose worker has no cached model builds it: results do
    not depend on where a task ran. :meth:`forget` frees the models.
    """

    def __init__(self, client, case: KeramaCase):
        self.client = client
        self.scenarios = list(case.scenarios)
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:  # a batch cluster whose jobs have not started yet
            client.wait_for_workers(1)
            workers = sorted(client.scheduler_info()["workers"])
        self.home = {s: workers[i % len(workers)] for i, s in enumerate(self.scenarios)}
        self.case = client.scatter(case, broadcast=True, hash=False)

    def map(self, fn, args: tuple, bar, scenarios: list[int] | None = None) -> list:
        from distributed import as_completed

        futures = [
            self.client.submit(fn, *args, self.case, s, workers=[self.home[s]],
                               allow_other_workers=True, pure=False)
            for s in (self.scenarios if scenarios is None else scenarios)
        ]
        for _done in as_completed(futures):
            bar.update()
        return self.client.gather(futures)  # raises the first failed scenario's exception

    def forget(self, token: str) -> None:
        with contextlib.suppress(Exception):  # the cluster may already be gone
            self.client.run(_forget, token)
