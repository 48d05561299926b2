"""Benchmark: monolithic single-level MILP vs Benders for Kerama (2025), by fleet size.

Run from the repo root (it takes about an hour on the 2-core machine)::

    .venv/bin/python benchmarks/kerama2025_scaling.py
    .venv/bin/python benchmarks/kerama2025_scaling.py --evs 100 200 --monolithic-time-limit 60
    .venv/bin/python benchmarks/kerama2025_scaling.py --grid 1-MV-semiurb--0-sw --evs 500 2000

Each fleet size (total EVs, 10 scenarios, 24 h, robust DistFlow,
strong-duality reformulation) runs in its own process, so that memory and
time do not leak between runs. The grid is the paper's 33-bus feeder with
its 5 aggregators (``--grid ieee33``, the default) or a SimBench MV grid
with ``--aggregators`` aggregators at its most residential buses, on its
evening-peak day (:func:`evgrid.papers.kerama2025.grid_case.make_grid_instance`);
a SimBench run writes its files with the grid's tag (``_semiurb``).

* **Benders** (:func:`evgrid.papers.kerama2025.decomposition.solve_benders`, 2 worker processes,
  tolerance 0.5%, ``--benders-time-limit``): instance build time, wall
  time, iterations, bounds and gap (reported, not hidden, when the limit stops it),
  and the feasibility and no-good cuts it added. At the ``--no-good-evs`` sizes
  it runs twice, with feasibility cuts and with the no-good cuts they
  replaced; both bound traces are written (``kerama2025_trace_<evs>_<cuts>.csv``)
  and drawn (``kerama2025_trace_<evs>.png``).
* **Monolithic**: :func:`evgrid.papers.kerama2025.model.build_single_level` solved by HiGHS
  in one piece, from the bilevel-feasible MIP start of
  :func:`evgrid.papers.kerama2025.model.warm_start` (uncapped, each aggregator solved
  alone), with the same 0.5% gap and ``--monolithic-time-limit``: build,
  warm-start and solve time, status, incumbent and gap. Sizes above ``--monolithic-max-evs`` are skipped.

Writes ``benchmarks/results/kerama2025_scaling<tag>.csv`` and ``.png`` (a
log-log plot with the fitted exponent of the runs that closed the gap); the
README quotes them. Timings are for this machine; rerun before comparing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


#: The method column of a Benders row, by how infeasible grid points are cut off.
METHOD = {"distance": "benders", "no_good": "benders (no-good cuts)"}
#: ... and by how a grid point is evaluated (the strong-duality LP is the default).
SUBPROBLEM = {"strong_duality": "", "value_function": " (value function)"}


def _method(feasibility: str, subproblem: str) -> str:
    return METHOD[feasibility] + SUBPROBLEM[subproblem]


def _trace_name(grid: str, evs: int, feasibility: str, subproblem: str) -> str:
    suffix = "" if subproblem == "strong_duality" else "_vf"
    return f"kerama2025_trace{_tag(grid)}_{evs}_{feasibility}{suffix}.csv"


#: The grid a run uses: the paper's 33-bus feeder, or a SimBench MV grid (its code).
IEEE33 = "ieee33"


def _case(total_evs: int, grid: str, n_aggregators: int):
    """The Kerama case with ``total_evs`` EVs: the paper's instance, or the same study on a SimBench grid.

    On the 33-bus feeder the EVs are split evenly over the paper's 5
    aggregators. On a SimBench MV grid (:func:`evgrid.papers.kerama2025.grid_case.make_grid_instance`)
    ``n_aggregators`` aggregators sit at the most residential buses, with the
    EVs in proportion to that load, on the grid's evening-peak day.
    """
    from evgrid.core.config import load_section, validate_section
    from evgrid.papers.kerama2025.case import make_instance

    base = load_section("kerama2025").model_dump()
    if grid == IEEE33:
        base["fleet"]["n_evs"] = total_evs // base["n_aggregators"]
        return make_instance(validate_section("kerama2025", base))
    from evgrid.data.simbench import evening_peak_day
    from evgrid.networks import load_simbench_mv
    from evgrid.papers.kerama2025.grid_case import evs_by_residential_load, make_grid_instance

    net = load_simbench_mv(grid)
    counts = evs_by_residential_load(net, total_evs, n_aggregators)
    return make_grid_instance(validate_section("kerama2025", base), net, evening_peak_day(net), counts)


def _benders(total_evs: int, time_limit_s: float, feasibility: str, subproblem: str, grid: str,
             n_aggregators: int, queue) -> None:
    from evgrid.core.solvers import NoIncumbentError
    from evgrid.papers.kerama2025.decomposition import solve_benders
    from evgrid.papers.kerama2025.model import NetworkInfeasibleError

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    case = _case(total_evs, grid, n_aggregators)
    build_s = time.perf_counter() - start
    method = _method(feasibility, subproblem)
    try:
        result = solve_benders(case, tol=0.005, workers=2, time_limit_s=time_limit_s,
                               feasibility=feasibility, subproblem=subproblem)
    except NetworkInfeasibleError as err:  # the feeder cannot carry this fleet: say so, with the time
        queue.put({"method": method, "evs": total_evs, "wall_s": time.perf_counter() - start,
                   "build_s": build_s, "status": "infeasible", "message": str(err)[:300],
                   "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20})
        return
    except NoIncumbentError as err:  # stopped before any grid point was feasible
        queue.put({"method": method, "evs": total_evs, "wall_s": time.perf_counter() - start,
                   "build_s": build_s, "status": "NoIncumbentError", "bound": err.best_bound,
                   "message": str(err)[:300],
                   "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20})
        return
    trace = result.trace.assign(evs=total_evs, method=method)
    trace.round(4).to_csv(OUT / _trace_name(grid, total_evs, feasibility, subproblem), index=False)
    queue.put({
        "method": method, "evs": total_evs, "wall_s": time.perf_counter() - start,
        "build_s": build_s,
        "feasibility_cuts": int(result.trace["feasibility_cuts"].iloc[-1]),
        "no_good_cuts": int(result.trace["no_good_cuts"].iloc[-1]),
        "status": "optimal" if result.converged else "gap",
        "objective": result.objective, "bound": result.lower_bound, "gap": result.relative_gap,
        "iterations": len(result.trace),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    })


def _monolithic(total_evs: int, time_limit_s: float, grid: str, n_aggregators: int, queue) -> None:
    import pyomo.environ as pyo

    from evgrid.core.solvers import SolverError, solve
    from evgrid.papers.kerama2025.model import build_single_level, warm_start

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    case = _case(total_evs, grid, n_aggregators)
    model, info = build_single_level(case)
    build_s = time.perf_counter() - start
    n_vars = sum(1 for _ in model.component_data_objects(pyo.Var))
    row = {"method": "monolithic", "evs": total_evs, "build_s": build_s, "variables": n_vars,
           "binaries": info.n_binaries}
    tick = time.perf_counter()
    started = warm_start(model, case, info)
    row |= {"warm_start_s": time.perf_counter() - tick, "warm_start_ok": started}
    try:
        res = solve(model, time_limit_s=time_limit_s, mip_gap=0.005, warmstart=started)
        row |= {"status": res.status, "objective": res.objective, "bound": res.best_bound,
                "gap": res.relative_gap, "solve_s": res.wall_time_s}
    except SolverError as err:  # e.g. no incumbent at the time limit
        row |= {"status": type(err).__name__, "message": str(err)[:200]}
    row["wall_s"] = time.perf_counter() - start
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put(row)


def _run(target, *args) -> dict:
    queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=target, args=(*args, queue))
    proc.start()
    proc.join()
    return queue.get() if not queue.empty() else {"status": f"crashed (exit {proc.exitcode})"}


def _tag(grid: str) -> str:
    """File-name tag of a grid: none for the 33-bus feeder, ``_semiurb`` and so on for SimBench."""
    return "" if grid == IEEE33 else "_" + grid.split("-")[2]


def fitted_exponent(table, method: str) -> float | None:
    """Slope of log(wall time) on log(EVs) over ``method``'s runs that closed the gap (None if < 3 sizes)."""
    import numpy as np

    done = table[(table["method"] == method) & (table["status"] == "optimal")]
    if done["evs"].nunique() < 3:  # two sizes that both close at the first iteration say nothing
        return None
    return float(np.polyfit(np.log(done["evs"]), np.log(done["wall_s"]), 1)[0])


def plot(table, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    markers = {"optimal": ("o", "within 0.5%"), "gap": ("D", "time limit, gap reported"),
               "time_limit_feasible": ("s", "time limit, feasible, gap > 0.5%"),
               "NoIncumbentError": ("x", "time limit, no feasible point"),
               "infeasible": ("v", "proved infeasible")}
    for method, group in table.groupby("method"):
        group = group[group["status"] != "skipped"]
        line = ax.plot(group["evs"], group["wall_s"], "-", lw=1, alpha=0.5)[0]
        for status, (marker, what) in markers.items():
            pts = group[group["status"] == status]
            if len(pts):
                ax.plot(pts["evs"], pts["wall_s"], marker, ms=8, color=line.get_color(),
                        label=f"{method}: {what}")
        slope = fitted_exponent(table, method)
        if slope is not None:
            done = group[group["status"] == "optimal"]
            x = np.array([done["evs"].min(), done["evs"].max()])
            c = np.exp(np.mean(np.log(done["wall_s"]) - slope * np.log(done["evs"])))
            ax.plot(x, c * x**slope, ":", color=line.get_color(),
                    label=f"{method}: fit, time ~ EVs^{slope:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("EVs (all aggregators, 10 scenarios)")
    ax.set_ylabel("wall time (s), 2 cores")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.set_layout_engine("constrained")
    fig.savefig(path, dpi=120)


def plot_traces(evs: int, grid: str, path: Path) -> None:
    """Benders' bounds against time at one size, feasibility cuts against no-good cuts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for feasibility, subproblem in [(f, sp) for f in METHOD for sp in SUBPROBLEM]:
        method = _method(feasibility, subproblem)
        path_csv = OUT / _trace_name(grid, evs, feasibility, subproblem)
        if not path_csv.exists():
            continue
        trace = pd.read_csv(path_csv)
        line = ax.step(trace["seconds"], trace["lower_bound"], where="post", marker="o", ms=4,
                       label=f"{method}: lower bound")[0]
        ax.step(trace["seconds"], trace["upper_bound"], where="post", ls="--", marker="s", ms=4,
                color=line.get_color(), label=f"{method}: best schedule (upper bound)")
    ax.set_xlabel("wall time (s), 2 cores")
    ax.set_ylabel("expected daily cost (US$)")
    ax.set_title(f"Kerama (2025), {evs} EVs on {grid}: Benders' bounds")
    ax.legend(fontsize=7)
    fig.set_layout_engine("constrained")
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default=IEEE33,
                        help="'ieee33' (the paper's feeder, 5 aggregators) or a SimBench MV code, "
                             "e.g. 1-MV-semiurb--0-sw")
    parser.add_argument("--aggregators", type=int, default=10,
                        help="aggregators on a SimBench grid (at its most residential buses)")
    parser.add_argument("--evs", type=int, nargs="+", default=None,
                        help="total EVs (default: 100 200 500 1000 2000 on ieee33, 500 1000 2000 5000 on SimBench)")
    parser.add_argument("--benders-time-limit", type=float, default=900.0)
    parser.add_argument("--monolithic-time-limit", type=float, default=120.0)
    parser.add_argument("--monolithic-max-evs", type=int, default=500)
    parser.add_argument("--no-good-evs", type=int, nargs="*", default=[500],
                        help="sizes also run with the no-good feasibility cuts, for comparison")
    parser.add_argument("--subproblem", choices=list(SUBPROBLEM), default="strong_duality",
                        help="how Benders evaluates a grid point (solve_benders' subproblem)")
    parser.add_argument("--feasibility", choices=list(METHOD), default="distance",
                        help="how the main Benders run cuts off infeasible grid points")
    parser.add_argument("--no-monolithic", action="store_true", help="skip the monolithic runs")
    parser.add_argument("--append", action="store_true",
                        help="keep the other fleet sizes' rows of an earlier run's CSV")
    args = parser.parse_args(argv)
    if args.evs is None:
        args.evs = [100, 200, 500, 1000, 2000] if args.grid == IEEE33 else [500, 1000, 2000, 5000]
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    tag = _tag(args.grid)
    csv = OUT / f"kerama2025_scaling{tag}.csv"
    kept: set[tuple[str, int]] = set()
    if args.append and csv.exists():
        # Keep every earlier row this run does not redo: Benders for the sizes
        # asked, monolithic for those up to --monolithic-max-evs.
        earlier = pd.read_csv(csv)
        redo = (earlier["evs"].isin(args.evs)) & (
            (earlier["method"] == _method(args.feasibility, args.subproblem))
            | ((earlier["method"] == _method("no_good", args.subproblem))
               & earlier["evs"].isin(args.no_good_evs))
            | ((earlier["method"] == "monolithic") & (earlier["evs"] <= args.monolithic_max_evs)
               & (not args.no_monolithic)))
        rows = earlier[~redo].to_dict("records")
        kept = {(r["method"], r["evs"]) for r in rows}
    where = (args.subproblem, args.grid, args.aggregators)
    for evs in args.evs:
        rows.append(_run(_benders, evs, args.benders_time_limit, args.feasibility, *where))
        print(json.dumps(rows[-1]), flush=True)
        if evs in args.no_good_evs and args.feasibility != "no_good":
            rows.append(_run(_benders, evs, args.benders_time_limit, "no_good", *where))
            print(json.dumps(rows[-1]), flush=True)
        if args.no_monolithic:
            continue
        if evs <= args.monolithic_max_evs:
            rows.append(_run(_monolithic, evs, args.monolithic_time_limit, args.grid, args.aggregators))
        elif ("monolithic", evs) not in kept:
            rows.append({"method": "monolithic", "evs": evs, "status": "skipped",
                         "message": f"above --monolithic-max-evs {args.monolithic_max_evs}"})
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows).sort_values(["evs", "method"], kind="stable")
    table.round(4).to_csv(csv, index=False)
    where_text = "the 33-bus feeder, 5 aggregators" if args.grid == IEEE33 else \
        f"SimBench {args.grid}, {args.aggregators} aggregators"
    plot(table, OUT / f"kerama2025_scaling{tag}.png", f"Kerama (2025) on {where_text}")
    for evs in args.evs:
        if any((OUT / _trace_name(args.grid, evs, f, sp)).exists() for f in METHOD for sp in SUBPROBLEM):
            plot_traces(evs, args.grid, OUT / f"kerama2025_trace{tag}_{evs}.png")
    print(table.to_string())
    for method in table["method"].unique():
        slope = fitted_exponent(table, method)
        if slope is not None:
            print(f"{method}: wall time ~ EVs^{slope:.2f} over the runs that closed the gap")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "lib"))
    sys.exit(main())
