"""The compendium's single entry point for solving a Pyomo model.

Builders build, solvers solve: every ``build_*`` function returns a
``pyo.ConcreteModel`` and :func:`solve` is the one place that picks a solver,
applies limits, reads back the solver's verdict and turns every way a solve
can go wrong into a typed exception whose message says what happened and
what to do about it.

HiGHS is the default and needs no configuration; SCIP (``pyscipopt``) and
Gurobi (``gurobipy``, size-limited without a licence) are optional.

All three go through Pyomo's ``pyomo.contrib.solver`` interfaces (the
successor of APPSI) rather than APPSI or the legacy ``SolverFactory``
plugins, because that family is the only one that covers all three solvers
with one results object: the same ``TerminationCondition`` and
``SolutionStatus`` enums, an ``incumbent_objective`` and an
``objective_bound`` (so the MIP gap is read the same way for each solver),
``load_solutions=False`` / ``raise_exception_on_nonoptimal_result=False``
so that infeasible or limit-stopped solves come back as data rather than as
Pyomo's generic exception, and a ``HierarchicalTimer`` that separates the
translation of the model into the solver (HiGHS ``set_instance``, SCIP
``create scip model``, Gurobi ``compile_model`` / ``transfer_model``) from
the solver's own ``optimize`` call. APPSI has no SCIP interface, and the
legacy plugins fill bounds differently per solver and do not time the
translation separately.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyomo.environ as pyo
from pyomo.contrib.solver.common.base import Availability
from pyomo.contrib.solver.common.results import Results, SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.gurobi.gurobi_direct import GurobiDirect
from pyomo.contrib.solver.solvers.highs import Highs
from pyomo.contrib.solver.solvers.scip.scip_direct import ScipDirect

__all__ = [
    "SOLVERS",
    "InfeasibleModelError",
    "NoIncumbentError",
    "SolveResult",
    "SolverError",
    "SolverLicenseLimitError",
    "SolverLimitWarning",
    "SolverNotInstalledError",
    "UnboundedModelError",
    "available_solvers",
    "model_size",
    "solve",
]


# --------------------------------------------------------------------------
# Exceptions and warnings
# --------------------------------------------------------------------------


class SolverError(RuntimeError):
    """Base class of every error :func:`solve` raises about a solve."""


class InfeasibleModelError(SolverError):
    """The solver proved that the model has no feasible point."""


class UnboundedModelError(SolverError):
    """The objective is unbounded, or the solver could not tell unbounded from infeasible."""


class SolverNotInstalledError(SolverError):
    """The requested solver's Python package is missing or cannot be used."""


class SolverLicenseLimitError(SolverError):
    """The model is larger than the solver's (size-limited) licence allows."""


class NoIncumbentError(SolverError):
    """A time or other limit stopped the solver before it found any feasible point.

    ``best_bound`` is the solver's proven bound on the objective when it had one (a MILP's dual
    bound after its root), else None: valid even without an incumbent.
    """

    def __init__(self, message: str, best_bound: float | None = None):
        super().__init__(message)
        self.best_bound = best_bound


class SolverLimitWarning(UserWarning):
    """A limit stopped the solver; the result returned is feasible but not proven optimal."""


# --------------------------------------------------------------------------
# The solvers the compendium supports
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _SolverSpec:
    """How to reach one solver through ``pyomo.contrib.solver``."""

    interface: Callable[[], Any]
    package: str
    install_hint: str


class _HighsWithStart(Highs):
    """Pyomo's contrib HiGHS interface plus a MIP start from the model's current values.

    The contrib interface (unlike APPSI's) offers no warm start; this hands
    every variable's current value to ``Highs.setSolution`` just before the
    solve, as APPSI does. HiGHS checks the point and uses it as its first
    incumbent if it is feasible.
    """

    def _solve(self):
        import highspy

        cols = self._pyomo_var_to_solver_var_map
        values = [0.0] * len(cols)
        known = False
        for var_id, col in cols.items():
            var = self._vars[var_id][0]
            if var.value is not None:
                values[col] = float(var.value)
                known = True
        if known:
            start = highspy.HighsSolution()
            start.col_value = values
            start.value_valid = True
            start.dual_valid = False
            self._solver_model.setSolution(start)
        return super()._solve()


# Gurobi goes through the contrib ``gurobi_direct`` interface, which compiles
# the model to a sparse standard-form matrix (the fastest translation of the
# three Gurobi interfaces for large LPs/MILPs) but accepts linear models only;
# quadratic constraints raise Pyomo's InvalidConstraintError, and SCIP takes
# them. The persistent contrib interface would accept them, but in Pyomo
# 6.10.1 it releases its Gurobi environment once too often (a logged
# "release_license() with -1 remaining environment clients" and a fresh
# environment per solve). Each call uses a fresh interface instance, so
# ``solve`` stays stateless for all three solvers.
SOLVERS: dict[str, _SolverSpec] = {
    "highs": _SolverSpec(
        interface=Highs,
        package="highspy",
        install_hint="pip install highspy==1.15.1 (a core dependency: reinstall evgrid)",
    ),
    "gurobi": _SolverSpec(
        interface=GurobiDirect,
        package="gurobipy",
        install_hint="pip install 'evgrid[gurobi]' (gurobipy==13.0.3)",
    ),
    "scip": _SolverSpec(
        interface=ScipDirect,
        package="pyscipopt",
        install_hint="pip install pyscipopt==6.3.0",
    ),
}

#: Variables / constraints that Gurobi's free, size-limited licence accepts.
GUROBI_SIZE_LIMIT = 2000
#: ``GurobiError.errno`` for "Model too large for size-limited license".
_GUROBI_SIZE_LIMIT_ERRNO = 10010

# Termination conditions that mean "a limit stopped the search"; with an
# incumbent they give a feasible result, without one a NoIncumbentError.
_LIMIT_CONDITIONS = {
    TerminationCondition.maxTimeLimit: "time limit",
    TerminationCondition.iterationLimit: "iteration/node limit",
    TerminationCondition.objectiveLimit: "objective limit",
    TerminationCondition.interrupted: "interruption",
    TerminationCondition.minStepLength: "minimum step length",
}


def _availability(name: str) -> Availability:
    """Return Pyomo's availability verdict for solver ``name``.

    Kept as its own function so that tests can simulate a missing package.
    """
    return SOLVERS[name].interface().available()


def available_solvers() -> dict[str, bool]:
    """Report which of the supported solvers can be used here.

    Returns
    -------
    dict of str to bool
        ``{"highs": ..., "gurobi": ..., "scip": ...}``; Gurobi counts as
        available with the size-limited licence that ships with ``gurobipy``.
    """
    return {name: bool(_availability(name)) for name in SOLVERS}


# --------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SolveResult:
    """What a solve returned, as plain data.

    Attributes
    ----------
    solver : str
        ``"highs"``, ``"gurobi"`` or ``"scip"``.
    status : str
        ``"optimal"`` (proven optimal within the gap tolerance),
        ``"time_limit_feasible"`` (time limit reached with an incumbent) or
        ``"feasible"`` (another limit or an inconclusive exit, with an
        incumbent). Every other outcome raises a :class:`SolverError`.
    termination_condition : str
        Pyomo's raw ``TerminationCondition`` name, e.g. ``"maxTimeLimit"``.
    objective : float or None
        Objective value of the solution loaded into the model.
    best_bound : float or None
        Best proven bound on the objective (lower when minimising).
    relative_gap : float or None
        ``|objective - best_bound| / |objective|``, the convention HiGHS and
        Gurobi print; 0 for LPs and whenever the bound equals the objective.
    build_time_s : float
        Seconds spent translating the Pyomo model into the solver.
    solve_time_s : float
        Seconds spent inside the solver's optimise call.
    wall_time_s : float
        Seconds for the whole :func:`solve` call, loading the solution included.
    message : str
        One human sentence on the outcome.
    """

    solver: str
    status: str
    termination_condition: str
    objective: float | None
    best_bound: float | None
    relative_gap: float | None
    build_time_s: float
    solve_time_s: float
    wall_time_s: float
    message: str
    #: Reduced costs of the variables asked for with ``reduced_costs_of`` (LPs only),
    #: as a ``pyomo.common.collections.ComponentMap`` keyed by variable.
    reduced_costs: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the solution is proven optimal."""
        return self.status == "optimal"

    def summary(self) -> str:
        """Return the result as one readable line."""
        gap = "n/a" if self.relative_gap is None else f"{self.relative_gap:.2%}"
        return (
            f"{self.solver}: {self.status}, objective {_fmt(self.objective)}, "
            f"bound {_fmt(self.best_bound)}, gap {gap} "
            f"(build {self.build_time_s:.3f} s, solve {self.solve_time_s:.3f} s, "
            f"wall {self.wall_time_s:.3f} s) - {self.message}"
        )

    def __str__(self) -> str:
        return self.summary()


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


# --------------------------------------------------------------------------
# Model size, for messages
# --------------------------------------------------------------------------


def model_size(model: pyo.Block) -> dict[str, int]:
    """Count a model's variables and active constraints.

    Parameters
    ----------
    model : pyomo.environ.Block
        Usually a ``ConcreteModel`` from a builder.

    Returns
    -------
    dict of str to int
        ``n_variables`` (all variables, fixed ones included), ``n_binary``,
        ``n_integer`` (general integers, binaries excluded) and
        ``n_constraints`` (active constraints; a ranged constraint counts once).
    """
    n_variables = n_binary = n_integer = 0
    for v in model.component_data_objects(pyo.Var, descend_into=True):
        n_variables += 1
        if v.is_binary():
            n_binary += 1
        elif v.is_integer():
            n_integer += 1
    n_constraints = sum(
        1 for _ in model.component_data_objects(pyo.Constraint, active=True, descend_into=True)
    )
    return {
        "n_variables": n_variables,
        "n_binary": n_binary,
        "n_integer": n_integer,
        "n_constraints": n_constraints,
    }


def _describe(model: pyo.Block) -> str:
    s = model_size(model)
    return (
        f"model '{model.name}' ({s['n_variables']} variables of which {s['n_binary']} binary "
        f"and {s['n_integer']} general integer, {s['n_constraints']} constraints)"
    )


# --------------------------------------------------------------------------
# Solve
# --------------------------------------------------------------------------


def solve(
    model: pyo.Block,
    solver: str = "highs",
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    tee: bool = False,
    options: Mapping[str, Any] | None = None,
    warmstart: bool = False,
    reduced_costs_of: list | None = None,
    interface: Any | None = None,
) -> SolveResult:
    """Solve a Pyomo model and load the solution into it.

    Parameters
    ----------
    model : pyomo.environ.Block
        The model to solve, usually a ``ConcreteModel`` from a builder. Its
        variables receive the solution's values when there is one.
    solver : {"highs", "gurobi", "scip"}
        Which solver to use; HiGHS needs no configuration.
    time_limit_s : float, optional
        Wall-clock limit handed to the solver, in seconds.
    mip_gap : float, optional
        Relative MIP gap at which to stop (e.g. ``1e-4``); solver default if None.
    threads : int, optional
        Number of threads; solver default if None.
    tee : bool, default False
        Stream the solver's log to stdout.
    options : mapping, optional
        Solver-specific options passed through unchanged, e.g.
        ``{"presolve": "off"}`` for HiGHS or ``{"MIPFocus": 1}`` for Gurobi.
    warmstart : bool, default False
        Offer the variables' current values as a first incumbent (a MIP
        start). A builder's ``warm_start`` helper usually sets them.
    reduced_costs_of : list of VarData, optional
        For an LP solved to optimality, return these variables' reduced costs
        in ``SolveResult.reduced_costs`` (e.g. the subgradient of a Benders
        subproblem with respect to its linking variables).
    interface : solver interface, optional
        Reuse this interface object (from :func:`bounds_only_highs`) instead
        of a new one: a model solved again through the same object is not
        translated again, only its changed variable bounds are passed on.

    Returns
    -------
    SolveResult
        ``status`` is ``"optimal"``, ``"time_limit_feasible"`` or ``"feasible"``;
        the latter two also emit a :class:`SolverLimitWarning`.

    Raises
    ------
    ValueError
        Unknown solver name, non-positive limit, negative gap or unknown
        HiGHS option.
    SolverNotInstalledError
        The solver's package is missing or unusable.
    SolverLicenseLimitError
        The model exceeds Gurobi's size-limited licence.
    InfeasibleModelError
        The model was proven infeasible.
    UnboundedModelError
        The model is unbounded, or infeasible-or-unbounded.
    NoIncumbentError
        A limit was reached before any feasible solution was found.
    SolverError
        Any other outcome without a usable solution.
    """
    name = solver.lower()
    if name not in SOLVERS:
        raise ValueError(
            f"unknown solver {solver!r}; allowed solvers are "
            f"{', '.join(repr(n) for n in SOLVERS)} (default 'highs')"
        )
    if time_limit_s is not None and not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0 seconds, got {time_limit_s!r}")
    if mip_gap is not None and not mip_gap >= 0:
        raise ValueError(f"mip_gap must be >= 0, got {mip_gap!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    availability = _availability(name)
    if not availability:
        spec = SOLVERS[name]
        raise SolverNotInstalledError(
            f"solver {name!r} is not available here ({spec.package}: {availability}). "
            f"Install it with: {spec.install_hint}, or use the default solver 'highs' "
            f"(HiGHS), which needs no licence."
        )
    options = dict(options or {})
    if name == "highs" and options:
        _check_highs_options(options)

    config: dict[str, Any] = {
        # Keep infeasible and limit-stopped solves as data: we inspect the
        # termination condition ourselves and load the solution only if one exists.
        "load_solutions": False,
        "raise_exception_on_nonoptimal_result": False,
        "tee": tee,
        "solver_options": options,
    }
    if time_limit_s is not None:
        config["time_limit"] = float(time_limit_s)
    if mip_gap is not None:
        config["rel_gap"] = float(mip_gap)
    if threads is not None:
        config["threads"] = int(threads)
    if warmstart and name in ("gurobi", "scip"):
        config["warmstart_discrete_vars"] = True

    # HiGHS runs one process-wide thread pool, sized by the first solve; a
    # later solve that asks for another size fails with status "unknown", and
    # one that asks for none silently keeps the old size. Resetting the pool
    # before and after a solve that sets threads keeps each call independent.
    resize_highs_pool = name == "highs" and (threads is not None or "threads" in options)
    tick = time.perf_counter()
    try:
        if resize_highs_pool:
            _reset_highs_thread_pool()
        if interface is None:
            cls = _HighsWithStart if (warmstart and name == "highs") else SOLVERS[name].interface
            interface = cls()
        elif name != "highs" or warmstart:
            raise ValueError("a reused interface is for HiGHS without a MIP start")
        results = interface.solve(model, **config)
    except Exception as exc:
        if _is_size_limit_error(exc):
            s = model_size(model)
            raise SolverLicenseLimitError(
                f"Gurobi refused {_describe(model)}: with {s['n_variables']} variables and "
                f"{s['n_constraints']} constraints it exceeds the free size-limited licence's "
                f"{GUROBI_SIZE_LIMIT} variables / {GUROBI_SIZE_LIMIT} constraints. Use HiGHS, "
                f"the default (solver='highs'), or install a full Gurobi licence."
            ) from exc
        raise
    finally:
        if resize_highs_pool:
            _reset_highs_thread_pool()
    result = _interpret(model, name, results, time_limit_s, tick)
    if reduced_costs_of and result.ok:
        rc = results.solution_loader.get_reduced_costs(list(reduced_costs_of))
        result = replace(result, reduced_costs=rc)  # a pyomo ComponentMap: var -> value
    return result


def bounds_only_highs() -> Highs:
    """A persistent HiGHS interface for one model re-solved with only its variable bounds changed.

    Pass it to :func:`solve` as ``interface`` each time: the first solve
    translates the model; later ones send HiGHS the variables' new bounds
    and nothing else (a Benders subproblem whose linking variables are fixed
    by bounds). Any other change to the model (a constraint, the objective, a
    parameter) is not seen: build a new interface then.
    """
    h = Highs()
    updates = h.config.auto_updates
    for option in (
        "check_for_new_or_removed_constraints",
        "check_for_new_or_removed_vars",
        "check_for_new_or_removed_params",
        "check_for_new_objective",
        "update_constraints",
        "update_parameters",
        "update_named_expressions",
        "update_objective",
    ):
        setattr(updates, option, False)
    updates.update_vars = True
    return h


def _reset_highs_thread_pool() -> None:
    import highspy

    highspy.Highs.resetGlobalScheduler(True)


def _check_highs_options(options: Mapping[str, Any]) -> None:
    """Reject HiGHS options that HiGHS would otherwise ignore without a word."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in options.items():
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise ValueError(
                f"HiGHS rejected option {key}={value!r} (unknown name or wrong type); "
                f"see https://ergo-code.github.io/HiGHS/stable/options/definitions/"
            )


def _is_size_limit_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` (or anything it wraps) is Gurobi's size-limit error."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e).lower()
        if getattr(e, "errno", None) == _GUROBI_SIZE_LIMIT_ERRNO or (
            "size-limited" in text or "model too large" in text
        ):
            return True
        e = e.__cause__ or e.__context__
    return False


def _timings(results: Results) -> tuple[float, float]:
    """Split the interface's timer into (build, solve) seconds.

    Every top-level timer other than ``optimize`` (the solver's own call) and
    ``load solution`` (reading results back) is translation of the model
    into the solver: ``set_instance`` for HiGHS, ``create scip model`` for
    SCIP, ``compile_model`` + ``prepare_matrices`` + ``transfer_model`` + ...
    for Gurobi.
    """
    timer = getattr(results.timing_info, "timer", None)
    if timer is None:
        return 0.0, 0.0
    top = [t for t in timer.get_timers() if "." not in t]
    solve_s = timer.get_total_time("optimize") if "optimize" in top else 0.0
    build_s = sum(timer.get_total_time(t) for t in top if t not in ("optimize", "load solution"))
    return build_s, solve_s


def _relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    if not math.isfinite(bound):
        return math.inf
    diff = abs(objective - bound)
    if diff == 0.0:
        return 0.0
    return diff / abs(objective) if objective != 0.0 else math.inf


def _interpret(
    model: pyo.Block,
    solver: str,
    results: Results,
    time_limit_s: float | None,
    tick: float,
) -> SolveResult:
    """Turn contrib-solver results into a SolveResult or a typed exception."""
    tc = results.termination_condition
    has_incumbent = results.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
    what = _describe(model)

    if tc in (TerminationCondition.provenInfeasible, TerminationCondition.locallyInfeasible):
        raise InfeasibleModelError(
            f"{solver} proved {what} infeasible ({tc.name}). Check variable bounds and "
            f"right-hand sides (e.g. demand above capacity), or compute an irreducible "
            f"infeasible subsystem (IIS) with pyomo.contrib.iis.write_iis(model, "
            f"'model.ilp', solver='gurobi') or, with any solver, "
            f"pyomo.contrib.iis.compute_infeasibility_explanation."
        )
    if tc == TerminationCondition.infeasibleOrUnbounded:
        raise UnboundedModelError(
            f"{solver} found {what} infeasible or unbounded and could not tell which "
            f"(typically presolve). Give every variable finite bounds to test for "
            f"unboundedness, or re-solve with presolve off (HiGHS options={{'presolve': 'off'}}, "
            f"Gurobi {{'DualReductions': 0}}) to get a definite answer."
        )
    if tc == TerminationCondition.unbounded:
        raise UnboundedModelError(
            f"{solver} found the objective of {what} unbounded. A variable that the "
            f"objective rewards is missing a bound or a constraint; bound it."
        )

    build_s, solve_s = _timings(results)

    if not has_incumbent:
        if tc in _LIMIT_CONDITIONS:
            limit = _LIMIT_CONDITIONS[tc]
            detail = f" of {time_limit_s:g} s" if tc == TerminationCondition.maxTimeLimit else ""
            bound = results.objective_bound
            raise NoIncumbentError(
                f"{solver} stopped at its {limit}{detail} after {solve_s:.2f} s without "
                f"finding any feasible solution for {what}. Raise the limit "
                f"(time_limit_s), or check whether the model is infeasible by solving "
                f"without a limit.",
                best_bound=bound if bound is not None and math.isfinite(bound) else None,
            )
        raise SolverError(
            f"{solver} ended with termination condition {tc.name!r} and no solution for "
            f"{what}. Re-run with tee=True to read the solver log."
        )

    results.solution_loader.load_vars()

    objective = results.incumbent_objective
    bound = results.objective_bound
    if tc == TerminationCondition.convergenceCriteriaSatisfied:
        status = "optimal"
        # Some interfaces give no bound for an LP (Gurobi's ObjBound is MIP-only);
        # at proven optimality of an LP the bound is the objective itself.
        if bound is None or not math.isfinite(bound):
            bound = objective
        gap = _relative_gap(objective, bound)
        message = f"proven optimal (relative gap {gap:.2%})"
    else:
        gap = _relative_gap(objective, bound)
        gap_text = "unknown" if gap is None else f"{gap:.2%}"
        if tc == TerminationCondition.maxTimeLimit:
            status = "time_limit_feasible"
            message = (
                f"time limit reached after {solve_s:.1f} s with an incumbent; "
                f"relative gap {gap_text}"
            )
        else:
            status = "feasible"
            limit = _LIMIT_CONDITIONS.get(tc, f"solver exit {tc.name!r}")
            message = f"{limit} stopped the solve with an incumbent; relative gap {gap_text}"
        warnings.warn(
            f"{solver} on model '{model.name}': {message}. The solution is feasible but "
            f"NOT proven optimal; raise time_limit_s or loosen mip_gap before trusting "
            f"it as optimal.",
            SolverLimitWarning,
            stacklevel=3,
        )

    return SolveResult(
        solver=solver,
        status=status,
        termination_condition=tc.name,
        objective=objective,
        best_bound=bound,
        relative_gap=gap,
        build_time_s=build_s,
        solve_time_s=solve_s,
        wall_time_s=time.perf_counter() - tick,
        message=message,
    )
