"""Benchmark: one Benders scenario's work against the number of EVs, on a SimBench MV grid.

Run from the repo root (about 15 minutes on the 2-core machine)::

    .venv/bin/python benchmarks/kerama2025_scenario_scaling.py
    .venv/bin/python benchmarks/kerama2025_scenario_scaling.py --evs 500 1000 --grid ieee33

A full Benders run at 5,000 EVs does not fit a session on 2 cores; what one
iteration costs does, and it is what grows with the fleet. For each size,
in its own process, scenario 0 of the case of
``benchmarks/kerama2025_scaling.py`` (same grid, day, aggregators):

* ``case_s``: drawing the fleets and the grid's profiles;
* ``lp_build_s``: building its persistent LP in Pyomo
  (:class:`evgrid.papers.kerama2025.decomposition._ScenarioLP`);
* ``high_point_s``: translating it to HiGHS and solving the high-point bound;
* ``subproblem_s``: adding the aggregators' optimality rows and solving
  the subproblem at the uncapped grid point (or proving it infeasible);
* ``distance_s``: the feasibility LP at the same point;
* ``safe_s``: the safe-caps LP of this scenario alone
  (:func:`evgrid.papers.kerama2025.decomposition.build_safe_caps`);
* ``vf_build_s``, ``vf_high_point_s``, ``vf_subproblem_s``: the same
  scenario's value-function LP (``solve_benders(..., subproblem="value_function")``,
  :class:`evgrid.papers.kerama2025.decomposition._ValueFunctionLP`): its
  build, its high-point bound, and the uncapped grid point evaluated by the
  aggregators' optima and the LP without duals. ``--only-vf`` measures
  these alone and keeps the other columns of an earlier run's CSV.

Writes ``benchmarks/results/kerama2025_scenario_scaling<tag>.csv`` and a
log-log figure with each step's fitted exponent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
STEPS = ["lp_build_s", "high_point_s", "subproblem_s", "distance_s", "safe_s"]
VF_STEPS = ["vf_build_s", "vf_high_point_s", "vf_subproblem_s"]


def _measure(total_evs: int, grid: str, n_aggregators: int, only_vf: bool, queue) -> None:
    import pyomo.environ as pyo
    from kerama2025_scaling import _case

    from evgrid.core.solvers import InfeasibleModelError
    from evgrid.papers.kerama2025.case import one_scenario
    from evgrid.papers.kerama2025.decomposition import (
        _ScenarioLP,
        _solve_lp,
        _ValueFunctionLP,
        build_safe_caps,
    )

    warnings.simplefilter("ignore")
    tick = time.perf_counter()
    case = _case(total_evs, grid, n_aggregators)
    row = {"evs": total_evs, "case_s": time.perf_counter() - tick}
    vf = _ValueFunctionLP(case, 0)
    row["vf_build_s"] = vf.build_s
    tick = time.perf_counter()
    vf.high_point()
    row["vf_high_point_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    try:
        vf.optimal([1] * len(case.free_caps) * case.params.cap_bits)
        row["vf_subproblem_feasible"] = True
    except InfeasibleModelError:
        row["vf_subproblem_feasible"] = False
    row["vf_subproblem_s"] = time.perf_counter() - tick
    del vf
    if only_vf:
        queue.put(row)
        return
    lp = _ScenarioLP(case, 0)
    row["lp_build_s"] = lp.build_s
    row["variables"] = sum(1 for _ in lp.model.component_data_objects(pyo.Var))
    for step, mode, point in [("high_point_s", "high_point", None),
                              ("subproblem_s", "optimal", [1] * len(lp.hats)),
                              ("distance_s", "distance", [1] * len(lp.hats))]:
        tick = time.perf_counter()
        try:
            lp.solve(mode, point)
            row[step.replace("_s", "_feasible")] = True
        except InfeasibleModelError:
            row[step.replace("_s", "_feasible")] = False
        row[step] = time.perf_counter() - tick
    tick = time.perf_counter()
    _solve_lp(build_safe_caps(one_scenario(case, 0)), case)
    row["safe_s"] = time.perf_counter() - tick
    queue.put(row)


def _run(*args) -> dict:
    import multiprocessing as mp

    queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_measure, args=(*args, queue))
    proc.start()
    proc.join()
    return queue.get() if not queue.empty() else {"evs": args[0], "status": f"crashed (exit {proc.exitcode})"}


def exponents(table) -> dict[str, float]:
    """Slope of log(time) on log(EVs) per step (needs two sizes)."""
    import numpy as np

    return {step: float(np.polyfit(np.log(table["evs"][table[step].notna()]),
                                   np.log(table[step].dropna()), 1)[0])
            for step in STEPS + VF_STEPS if step in table and table[step].notna().sum() >= 2}


def plot(table, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slopes = exponents(table)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for step in STEPS + VF_STEPS:
        if step not in table:
            continue
        ax.plot(table["evs"], table[step], "o-" if step in STEPS else "s--", label=f"{step[:-2]} (EVs^{slopes.get(step, float('nan')):.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("EVs (all aggregators)")
    ax.set_ylabel("wall time for scenario 0 (s), 1 core")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.set_layout_engine("constrained")
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd
    from kerama2025_scaling import _tag

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default="1-MV-semiurb--0-sw")
    parser.add_argument("--aggregators", type=int, default=10)
    parser.add_argument("--evs", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    parser.add_argument("--only-vf", action="store_true",
                        help="measure the value-function steps only; keep the other columns of the CSV")
    args = parser.parse_args(argv)
    rows = []
    for evs in args.evs:
        rows.append(_run(evs, args.grid, args.aggregators, args.only_vf))
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    tag = _tag(args.grid)
    csv = OUT / f"kerama2025_scenario_scaling{tag}.csv"
    if args.only_vf and csv.exists():
        earlier = pd.read_csv(csv).set_index("evs")
        new = table.set_index("evs")
        earlier = earlier.drop(columns=[c for c in new.columns if c in earlier.columns and c != "case_s"])
        table = new.drop(columns="case_s").join(earlier, how="outer").reset_index()
    table.round(2).to_csv(OUT / f"kerama2025_scenario_scaling{tag}.csv", index=False)
    plot(table, OUT / f"kerama2025_scenario_scaling{tag}.png",
         f"Kerama (2025), one scenario on {args.grid}, {args.aggregators} aggregators")
    print(table.round(2).to_string(index=False))
    print(json.dumps({k: round(v, 2) for k, v in exponents(table).items()}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "lib"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.exit(main())
