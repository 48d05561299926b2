"""Kerama (2025): the single-level model solved by Benders decomposition over scenarios.

The DSO's import caps, on a grid of ``2**cap_bits`` levels, are the only link
between scenarios. The master (:func:`build_master`) picks the grid bits;
each scenario's subproblem (:func:`build_subproblem`) is an LP once they are
fixed; the cuts are those of :mod:`evgrid.algorithms.benders`.
:func:`solve_benders` runs it, and checks the answer's DistFlow against AC
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

from evgrid.algorithms.benders import integer_optimality_cut, no_good_cut
from evgrid.core.parallel import ParallelOptions, open_client, options_from_mapping
from evgrid.core.solvers import (
    InfeasibleModelError,
    SolverLimitWarning,
    UnboundedModelError,
    bounds_only_highs,
    solve,
)
from evgrid.formulations.fleet import energy_need_windows, fleet_schedule
from evgrid.papers.kerama2025.case import N_PERIODS, KeramaCase, one_scenario
from evgrid.papers.kerama2025.evaluate import linear_vs_ac
from evgrid.papers.kerama2025.model import (
    NetworkInfeasibleError,
    build_single_level,
    check_network_budget,
    linear_state,
    schedule_from_model,
)

__all__ = [
    "BendersResult",
    "ScenarioSolution",
    "build_master",
    "build_subproblem",
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


def build_master(case: KeramaCase, lower_bounds: dict[int, float]) -> pyo.ConcreteModel:
    """The Benders master: the cap grid's bits and one cost estimate ``theta[s]`` per scenario.

    Cuts are added by :func:`solve_benders`: optimality cuts
    ``theta[s] >= v_s + sum rc (bit - bit_hat)`` from the reduced costs,
    the integer optimality cut of Laporte & Louveaux (1993), which is exact
    at the grid point it was made at
    (:func:`evgrid.algorithms.benders.integer_optimality_cut`), and,
    for a grid point at which some scenario is infeasible, a no-good cut
    excluding that point (:func:`evgrid.algorithms.benders.no_good_cut`).
    """
    n_caps = len(case.free_caps)
    m = pyo.ConcreteModel(name="kerama2025_benders_master")
    m.bit = pyo.Var(range(n_caps), range(case.params.cap_bits), domain=pyo.Binary)
    m.theta = pyo.Var(case.scenarios, bounds=lambda _m, s: (lower_bounds[s], None))
    m.cuts = pyo.ConstraintList()
    m.objective = pyo.Objective(expr=sum(m.theta[s] for s in case.scenarios))
    return m


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


_CACHE: dict = {}  # per process: (token, scenario) -> (model, bits, interface), one run's only


def _forget(token: str) -> int:
    """Drop run ``token``'s cached subproblems from this process; returns how many there were."""
    keys = [k for k in _CACHE if k[0] == token]
    for key in keys:
        del _CACHE[key]
    return len(keys)


def _solve_scenario(token: str, hat: list[int], case: KeramaCase, scenario: int) -> ScenarioSolution:
    """Fix the bits of ``scenario``'s subproblem to ``hat`` and solve it (one Benders step)."""
    key = (token, scenario)
    if key not in _CACHE:
        for old in [k for k in _CACHE if k[0] != token]:
            del _CACHE[old]  # an earlier run's models
        model, bits = build_subproblem(case, scenario)
        _CACHE[key] = (model, bits, _lp_interface(case))
    model, bits, interface = _CACHE[key]
    for bit, value in zip(bits, hat, strict=True):
        bit.setlb(value)
        bit.setub(value)
    start = time.perf_counter()
    try:
        res = _solve_lp(model, case, reduced_costs_of=bits, interface=interface)
    except (InfeasibleModelError, UnboundedModelError):
        return ScenarioSolution(scenario, None, [], solve_s=time.perf_counter() - start)
    one = one_scenario(case, scenario)
    soc = []
    for a in case.aggregators:
        table = fleet_schedule(model.agg[a, scenario])
        table.insert(0, "aggregator", a)
        soc.append(table)
    usage = 0.0
    for a in case.aggregators:
        block = model.kkt[a, scenario]
        w = case.params.dual_bound_usd_per_kwh
        usage = max(usage, max(abs(pyo.value(d)) for d in block.dual.values()) / w)
    return ScenarioSolution(
        scenario=scenario,
        objective=res.objective,
        reduced_costs=[float(res.reduced_costs[b]) for b in bits],
        schedule=schedule_from_model(model, one),
        soc=pd.concat(soc, ignore_index=True),
        inside_cost_usd={a: pyo.value(model.agg[a, scenario].cost_usd) for a in case.aggregators},
        dual_usage=usage,
        linear_state=linear_state(model, scenario),
        peak_kw=pyo.value(model.peak_kw[scenario]),
        solve_s=time.perf_counter() - start,
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


def _high_point_bound(case: KeramaCase, scenario: int) -> float | None:
    """Scenario ``scenario``'s high-point relaxation: a lower bound on its bi-level cost.

    None if it is infeasible: then no schedule of the fleets, however
    cooperative, meets the network constraints in that scenario.
    """
    model, _info = build_single_level(one_scenario(case, scenario), lower_level="high_point")
    try:
        return _solve_lp(model, case).objective
    except InfeasibleModelError:
        return None


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`, with the bound trace for the notebook's figure.

    ``scenarios`` holds the best grid point's per-scenario solutions
    (:class:`ScenarioSolution`); ``relative_gap`` is ``(objective -
    lower_bound) / |objective|``.
    """

    objective: float
    lower_bound: float
    trace: pd.DataFrame  # iteration, lower_bound, upper_bound, gap, cuts, seconds
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


def _spread_grid_point(case: KeramaCase) -> dict[tuple[int, int], int]:
    """Grid bits of the flattest caps under which every fleet can still be served.

    Per aggregator, one cap for every hour: the smallest grid level at or
    above the densest need of its EVs in any scenario, i.e. the largest
    ``sum(energy to charge / eta_ch) / (t2 - t1)`` over the EVs plugged in
    only within hours ``[t1, t2)`` (:func:`evgrid.formulations.fleet.energy_need_windows`;
    a uniform rate below it cannot serve them), plus one level of slack. It spreads charging over the night, the
    opposite of the uncapped response that piles it into the cheapest hours.
    """
    n_bits = case.params.cap_bits
    top = 2**n_bits - 1
    levels = {}
    for a in case.aggregators:
        rate = 0.0
        for s in case.scenarios:
            windows = energy_need_windows(case.fleet(a, s), N_PERIODS)
            if len(windows):
                per_hour = windows["need_kwh"] / (windows["t_end"] - windows["t_start"])
                rate = max(rate, per_hour.max())
        step = case.b_max_kw[a] / top
        levels[a] = min(top, int(np.ceil(rate / step - 1e-9)) + 1)
    hat = {}
    for idx, (a, _t) in enumerate(case.free_caps):
        for k in range(n_bits):
            hat[idx, k] = (levels[a] >> k) & 1
    return hat


def solve_benders(
    case: KeramaCase,
    *,
    tol: float = 1e-4,
    max_iterations: int = 100,
    time_limit_s: float | None = None,
    workers: int = 1,
    parallel: ParallelOptions | Mapping | None = None,
    progress: bool = False,
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
    valid bound for any caps. The first grid point is the uncapped one; if
    it overloads the feeder, the second is the flattest one the fleets can
    live with (:func:`_spread_grid_point`). Lower bound: the master's
    optimum; upper bound: the best grid point at which every scenario is feasible. Stops when the relative
    gap is at most ``tol``; otherwise, after ``max_iterations`` or
    ``time_limit_s``, returns with ``converged=False`` and a
    :class:`evgrid.core.solvers.SolverLimitWarning` that states the gap.
    """
    start = time.perf_counter()
    options = _benders_options(workers, parallel)
    check_network_budget(case)
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

    def run_all(fn, *args):
        """``fn(*args, case, s)`` once per scenario ``s``, in the order of ``case.scenarios``."""
        if pool is None:
            out = []
            for s in case.scenarios:
                out.append(fn(*args, case, s))
                bar.update()
            return out
        return pool.map(fn, args, bar)

    try:
        initial = dict(zip(case.scenarios, run_all(_high_point_bound), strict=True))
        hopeless = [s for s, bound in initial.items() if bound is None]
        if hopeless:
            total = sum(len(case.fleets[s]) for s in hopeless) // len(hopeless)
            raise NetworkInfeasibleError(
                f"no schedule of the {total} EVs meets the network constraints (Eqs. 2-7: DistFlow, "
                f"robust voltage and current limits) in scenario(s) {hopeless}, even with every "
                "aggregator doing what suits the feeder (the high-point relaxation is infeasible), "
                "so no caps can help: fewer EVs per aggregator, more aggregator buses, or a "
                "smaller robust budget"
            )
        master = build_master(case, initial)
        n_bits = case.params.cap_bits
        key = [(i, k) for i in range(len(case.free_caps)) for k in range(n_bits)]
        hat = dict.fromkeys(key, 1)  # the uncapped grid point first
        best, best_hat, best_solutions, rows = float("inf"), None, None, []
        lb, converged = sum(initial.values()), False
        for iteration in range(1, max_iterations + 1):
            bar.set_description(f"Benders iteration {iteration}")
            solutions = run_all(_solve_scenario, token, [hat[ik] for ik in key])
            feasible = all(sol.objective is not None for sol in solutions)
            for sol in solutions:
                if sol.objective is None:
                    continue
                theta = master.theta[sol.scenario]
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
            else:
                master.cuts.add(no_good_cut([master.bit[ik] for ik in key], [hat[ik] for ik in key]))
            lb = max(lb, solve(master, case.params.solver.solver).objective)
            gap = (best - lb) / max(abs(best), 1e-9)
            rows.append((iteration, lb, best, gap, len(master.cuts), time.perf_counter() - start))
            bar.set_postfix(lb=f"{lb:.2f}", ub=f"{best:.2f}", gap=f"{gap:.2e}")
            if gap <= tol:
                converged = True
                break
            if time_limit_s is not None and time.perf_counter() - start >= time_limit_s:
                break
            if best_hat is None and iteration == 1:
                # The uncapped point overloads the feeder; no-good cuts alone would
                # crawl through neighbouring grid points. Try the flattest caps
                # the fleets can live with next.
                hat = _spread_grid_point(case)
                continue
            hat = {ik: round(pyo.value(master.bit[ik])) for ik in key}
    finally:
        bar.close()
        if pool is not None:
            pool.forget(token)
        else:
            _forget(token)
        stack.close()
    trace = pd.DataFrame(
        rows, columns=["iteration", "lower_bound", "upper_bound", "gap", "cuts", "seconds"]
    )
    if best_hat is None:
        raise NetworkInfeasibleError(
            "Benders found no grid point of the caps at which every scenario is feasible"
        )
    if not converged:
        warnings.warn(
            f"Benders stopped after {len(rows)} iterations and {rows[-1][-1]:.0f} s with a relative "
            f"gap of {rows[-1][3]:.2%} (tolerance {tol:.2%}); raise max_iterations or time_limit_s",
            SolverLimitWarning,
            stacklevel=2,
        )
    caps = {(a, t): case.b_max_kw[a] for a in case.aggregators for t in case.periods}
    step = {a: case.b_max_kw[a] / (2**n_bits - 1) for a in case.aggregators}
    for idx, (a, t) in enumerate(case.free_caps):
        caps[a, t] = step[a] * sum(2**k * best_hat[idx, k] for k in range(n_bits))
    caps_kw = pd.Series(caps).unstack()
    checked = {  # DistFlow against AC, once, for the answer (not at every iteration)
        s: replace(
            sol,
            distflow_vs_ac=linear_vs_ac(one_scenario(case, s), sol.schedule, s, sol.linear_state),
        )
        for s, sol in best_solutions.items()
    }
    return BendersResult(best, lb, trace, caps_kw, converged, checked, initial)


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

    def map(self, fn, args: tuple, bar) -> list:
        from distributed import as_completed

        futures = [
            self.client.submit(fn, *args, self.case, s, workers=[self.home[s]],
                               allow_other_workers=True, pure=False)
            for s in self.scenarios
        ]
        for _done in as_completed(futures):
            bar.update()
        return self.client.gather(futures)  # raises the first failed scenario's exception

    def forget(self, token: str) -> None:
        with contextlib.suppress(Exception):  # the cluster may already be gone
            self.client.run(_forget, token)
