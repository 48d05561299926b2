"""Kerama (2025) Tables 3-6: one sensitivity sweep, run from the command line or a notebook.

``python -m evgrid.papers.kerama2025.sweep budget`` reads the ``kerama2025``
and ``kerama2025_sweeps`` sections of ``params.yaml``, validates every point
of the sweep before solving any, and for each point solves the bi-level model
(:func:`evgrid.papers.kerama2025.decomposition.solve_benders`) and the
uncontrolled baseline, verifies both with AC power flows
(:func:`evgrid.papers.kerama2025.evaluate.evaluate`)
and writes one row per point to ``<results_dir>/<sweep>.csv`` (under
:func:`evgrid.core.paths.output_root`). The file holds no wall-clock times, so that
a re-run that solves the same points gives the same bytes; the time of each
point is printed instead.

The points run through :func:`evgrid.core.parallel.map_tasks`, where the
``parallel`` section of ``params.yaml`` says: with ``workers`` > 1 on a local
Dask cluster, one point per worker process; on a running or batch cluster
when it names one (see :func:`sweep_options`), giving the same table as a
serial run. A
point that raises fails the run, naming the point; the finished rows then go to
``<sweep>.partial.csv``, never to the stage output.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

import pandas as pd
import yaml

from evgrid.core.config import ConfigError, load_section, validate_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import (
    ParallelOptions,
    TaskFailedError,
    load_parallel,
    map_tasks,
    options_from_mapping,
)
from evgrid.core.paths import output_path
from evgrid.papers.kerama2025.params import Kerama2025Params, Kerama2025SweepsParams

SWEEPS = ("budget", "degradation", "price", "fleet")

#: The four metrics of Tables 2-6, by their column name in the paper.
TABLE_COLUMNS = {
    "Peak feeder load": "peak_kw",
    "System energy cost": "energy_cost_usd",
    "Worst-case constraint violations": "worst_case_violations",
    "Aggregator profit": "aggregator_profit_usd",
}

#: The columns of a sweep table, in order, whichever point finished first (an
#: infeasible point has no bounds: NaN there).
SWEEP_COLUMNS = [
    "sweep", "label", "overrides", "status", "message",
    "objective_usd", "lower_bound_usd", "relative_gap", "benders_iterations",
    *(f"{key}_{name}" for name in ("proposed", "baseline") for key in TABLE_COLUMNS.values()),
    "seconds",
]


def point_params(base: Kerama2025Params, point: Any) -> Kerama2025Params:
    """``base`` with the point's overrides (``fleet`` merged field by field), validated."""
    values = base.model_dump()
    for key, value in (point.model_extra or {}).items():
        if key == "fleet":
            values["fleet"] = {**values["fleet"], **value}
        else:
            values[key] = value
    try:
        return validate_section("kerama2025", values)
    except ConfigError as err:
        raise ConfigError(f"sweep point {point.label!r}: {err}") from None


def run_point(params: Kerama2025Params, *, workers: int = 2,
              parallel: ParallelOptions | Mapping | None = None) -> dict[str, float]:
    """Solve and AC-verify one instance; the Table 2 metrics of the proposed schedule and the baseline.

    Returns a flat dict: ``status`` (``solved`` when Benders closed the gap to
    the tolerance; ``time_limit`` or ``iteration_limit`` when it stopped at
    ``solver.time_limit_s`` or its iteration limit with a larger gap, the
    schedule then being the best found, not a proven optimum, as
    ``message`` says; ``infeasible`` with the reason in ``message``),
    ``<metric>_proposed``, ``<metric>_baseline`` for the metrics of
    :data:`TABLE_COLUMNS` (NaN for an infeasible proposal), and the solve's
    bounds, gap and time. Benders' scenario LPs run on ``workers`` local
    processes, or where ``parallel`` says
    (:func:`evgrid.papers.kerama2025.decomposition.solve_benders`).

    The baseline is uncontrolled charging *to the required energy*
    (``baseline_schedule(case, charge_to="required")``): it delivers the same
    energy as the optimised schedule, so the two can be compared. (Charging
    to ``soc_max`` delivered about 20% more energy, which inflated the
    baseline's peak, cost and violations.)
    """
    # imported here: a bad sweep name or section fails before pyomo and the solvers load
    from evgrid.core.solvers import InfeasibleModelError
    from evgrid.papers.kerama2025.case import make_instance
    from evgrid.papers.kerama2025.decomposition import solve_benders
    from evgrid.papers.kerama2025.evaluate import baseline_schedule, evaluate
    from evgrid.papers.kerama2025.model import NetworkInfeasibleError

    start = time.perf_counter()
    case = make_instance(params)
    schedules = {"baseline": baseline_schedule(case, charge_to="required")}
    try:
        solution = solve_benders(case, tol=params.solver.mip_gap, workers=workers,
                                 parallel=parallel, time_limit_s=params.solver.time_limit_s)
    except (NetworkInfeasibleError, InfeasibleModelError) as err:
        row: dict[str, Any] = {"status": "infeasible", "message": " ".join(str(err).split("\n")[:2])}
    else:
        schedules["proposed"] = solution.schedule
        row = {"status": "solved", "message": ""}
        if not solution.converged:
            limit = params.solver.time_limit_s
            timed_out = limit is not None and solution.trace["seconds"].iloc[-1] >= limit
            row["status"] = "time_limit" if timed_out else "iteration_limit"
            row["message"] = (
                f"stopped at the {f'{limit:g} s' if timed_out else 'iteration'} limit after "
                f"{len(solution.trace)} Benders iterations with a {100 * solution.relative_gap:.2f}% gap "
                f"(tolerance {100 * params.solver.mip_gap:.2f}%): best schedule found, not proven optimal"
            )
        row |= {
            "objective_usd": solution.objective,
            "lower_bound_usd": solution.lower_bound,
            "relative_gap": solution.relative_gap,
            "benders_iterations": len(solution.trace),
        }
    for name in ("proposed", "baseline"):
        if name not in schedules:
            row.update({f"{key}_{name}": float("nan") for key in TABLE_COLUMNS.values()})
            continue
        metrics = evaluate(case, schedules[name])
        row[f"peak_kw_{name}"] = metrics.peak_kw_expected
        row[f"energy_cost_usd_{name}"] = metrics.energy_cost_usd
        row[f"worst_case_violations_{name}"] = metrics.worst_case_violations
        row[f"aggregator_profit_usd_{name}"] = metrics.aggregator_profit_usd
    row["seconds"] = time.perf_counter() - start
    return row


class SweepFailedError(RuntimeError):
    """One or more points of a sweep raised; the stage output was not written."""


def sweep_options(options: ParallelOptions | Mapping,
                  n_points: int) -> tuple[ParallelOptions, ParallelOptions]:
    """Where the points run, and where each point's Benders scenario LPs run.

    * ``workers=1`` locally: everything serial, in this process.
    * ``workers>1`` locally and several points: the points on a local Dask
      cluster of ``min(workers, n_points)`` processes, Benders serial inside
      each (no cluster nested in a Dask worker).
    * One point: the point in this process, its scenario LPs on the cluster.
    * A running or batch cluster (``scheduler`` / ``cluster``): the points on
      it, Benders serial inside each.
    """
    options = options_from_mapping(options)
    serial = ParallelOptions(workers=1)
    if options.serial:
        return serial, serial
    if n_points <= 1:
        return serial, options
    if options.scheduler is None and options.cluster == "local":
        return options.model_copy(update={"workers": min(options.workers, n_points)}), serial
    return options, serial


def _point_task(task: tuple[Kerama2025Params, ParallelOptions]) -> dict[str, Any]:
    """One sweep point, as a pure task for :func:`evgrid.core.parallel.map_tasks`."""
    params, benders = task
    return run_point(params, parallel=benders)


def run_sweep(name: str, params_file: str = "params.yaml", *, progress: bool = True) -> pd.DataFrame:
    """Run sweep ``name`` of ``params_file``; return (and write) its table.

    The points are independent solves, run through :func:`evgrid.core.parallel.map_tasks`
    where the ``parallel`` section says (:func:`sweep_options`); the table
    is the same whatever the number of workers. If any point raises, nothing is written
    to ``<sweep>.csv``: the finished rows go to ``<sweep>.partial.csv`` and
    :class:`SweepFailedError` names the failed points.
    """
    if name not in SWEEPS:
        raise ConfigError(f"unknown sweep {name!r}: choose one of {', '.join(SWEEPS)}")
    base = load_section("kerama2025", params_file)
    sweeps: Kerama2025SweepsParams = load_section("kerama2025_sweeps", params_file)
    points = getattr(sweeps, name)
    instances = [(p.label, point_params(base, p), p.model_extra or {}) for p in points]
    options, benders = sweep_options(load_parallel(params_file), len(instances))
    tasks = [(params, benders) for _label, params, _overrides in instances]
    try:
        results = map_tasks(_point_task, tasks, options=options, desc=f"sweep {name}",
                            progress=progress)
        failures: dict[int, BaseException] = {}
    except TaskFailedError as err:
        results, failures = err.results, err.failures
    rows = []
    for (label, _params, overrides), result in zip(instances, results, strict=True):
        if result is None:
            continue
        row = {"sweep": name, "label": label, "overrides": yaml.safe_dump(overrides,
               default_flow_style=True).strip()}
        row.update(result)
        rows.append(row)
        print(f"{name} / {label}: {row['status']}, {row['seconds']:.0f} s", flush=True)
    table = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    out = output_path(sweeps.results_dir, f"{name}.csv")
    partial = out.with_name(f"{name}.partial.csv")
    if failures:
        if rows:
            write_csv(table.drop(columns="seconds"), partial)
        else:
            partial.unlink(missing_ok=True)  # no stale rows from an earlier run beside the error
        failed = "\n".join(
            f"  point {i} {instances[i][0]!r}: {type(exc).__name__}: {exc}"
            for i, exc in sorted(failures.items())
        )
        kept = (f"the {len(rows)} finished points are in {partial}" if rows
                else "no point finished")
        raise SweepFailedError(
            f"sweep {name!r}: {len(failures)} of {len(instances)} points failed, so {out} was "
            f"not written ({kept}):\n{failed}"
        ) from failures[min(failures)]
    write_csv(table.drop(columns="seconds"), out)
    partial.unlink(missing_ok=True)  # a previous failed run's rows are stale now
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.papers.kerama2025.sweep",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("sweep", choices=SWEEPS)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        run_sweep(args.sweep, args.params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SweepFailedError as err:
        if err.__cause__ is not None:  # the first failed point's traceback, from its worker
            traceback.print_exception(err.__cause__, file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
