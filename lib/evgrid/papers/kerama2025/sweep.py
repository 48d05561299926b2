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
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import pandas as pd
import yaml

from evgrid.core.config import ConfigError, load_section, validate_section
from evgrid.core.outputs import write_csv
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


def run_point(params: Kerama2025Params, *, workers: int = 2) -> dict[str, float]:
    """Solve and AC-verify one instance; the Table 2 metrics of the proposed schedule and the baseline.

    Returns a flat dict: ``status`` (``solved`` when Benders closed the gap to
    the tolerance; ``time_limit`` or ``iteration_limit`` when it stopped at
    ``solver.time_limit_s`` or its iteration limit with a larger gap, the
    schedule then being the best found, not a proven optimum, as
    ``message`` says; ``infeasible`` with the reason in ``message``),
    ``<metric>_proposed``, ``<metric>_baseline`` for the metrics of
    :data:`TABLE_COLUMNS` (NaN for an infeasible proposal), and the solve's
    bounds, gap and time.

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
                                 time_limit_s=params.solver.time_limit_s)
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


def run_sweep(name: str, params_file: str = "params.yaml", *, progress: bool = True) -> pd.DataFrame:
    """Run sweep ``name`` of ``params_file``; return (and write) its table."""
    from tqdm import tqdm

    if name not in SWEEPS:
        raise ConfigError(f"unknown sweep {name!r}: choose one of {', '.join(SWEEPS)}")
    base = load_section("kerama2025", params_file)
    sweeps: Kerama2025SweepsParams = load_section("kerama2025_sweeps", params_file)
    points = getattr(sweeps, name)
    instances = [(p.label, point_params(base, p), p.model_extra or {}) for p in points]
    rows = []
    for label, params, overrides in tqdm(instances, desc=f"sweep {name}", disable=not progress):
        row = {"sweep": name, "label": label, "overrides": yaml.safe_dump(overrides,
               default_flow_style=True).strip()}
        row.update(run_point(params, workers=sweeps.workers))
        rows.append(row)
        print(f"{name} / {label}: {row['status']}, {row['seconds']:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    write_csv(table.drop(columns="seconds"), output_path(sweeps.results_dir, f"{name}.csv"))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
