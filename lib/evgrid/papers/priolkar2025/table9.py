"""Priolkar & Kunkolienkar (2025) Table 9: one weight row, every method, many seeds, and the optimum.

``python -m evgrid.papers.priolkar2025.table9 heuristics 0.6-0.3-0.1`` reads
the ``priolkar2025`` section of ``params.yaml``, builds the instance once and,
for the row's weights ``alpha_1 : alpha_2 : alpha_3`` of F4 (Eq. 9), runs

* EHO as the paper sets it (Table 6; the faithful origin-frame operator);
* EHO with the matriarch update in box coordinates (translation-invariant);
* random search and SciPy's differential evolution on the same budget,

each from ``n_runs`` seeds (0, 1, ...), through :func:`evgrid.core.parallel.map_tasks`,
and writes, under ``<results_dir>/table9/``:

* ``<row>.csv``: one line per method and seed, the best F4 found and the
  metrics of its schedule (no timings: a re-run gives the same bytes);
* ``<row>_convergence.csv``: per method and evaluation count, the best F4 so
  far over the seeds (median, quartiles, extremes): Fig. 4.

``python -m evgrid.papers.priolkar2025.table9 exact 0.6-0.3-0.1`` solves the
row's optimistic bilevel problem exactly
(:func:`evgrid.papers.priolkar2025.exact.solve_exact`) and writes
``<row>_exact.csv``: the optimum, its bound and proven gap, and per period its
DR price and load (Figs. 1-2). A time-limited MILP's incumbent and bound
depend on the machine; the ``status`` column says whether it was proven.

Two of the paper's rows do not sum to 1 (0.3:0.3:0.3 and 0.5:0.2:0.4): they
run as printed and, as ``<row>-normalised``, divided by their sum. Scaling
every weight by the same factor scales F4 and changes no ranking, so both
give the same prices; the notebook checks it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evgrid.algorithms.eho import EHOOptions, eho_minimise
from evgrid.algorithms.search import differential_evolution_minimise, random_search_minimise
from evgrid.core.config import ConfigError, load_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks
from evgrid.core.paths import output_path
from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase, make_instance
from evgrid.papers.priolkar2025.lower import asap_schedule, outcome
from evgrid.papers.priolkar2025.params import Priolkar2025Params
from evgrid.papers.priolkar2025.upper import Fitness, decode, f4, normalisation, search_box

__all__ = [
    "METHODS", "ROWS", "ROW_IDS", "evaluate_best", "read_rows", "row_weights", "run_exact", "run_method", "run_row",
    "summarise",
]

#: Table 9's weight rows as printed (id: weights); a ``-normalised`` suffix divides them by their sum.
ROWS: dict[str, tuple[float, float, float]] = {
    "0.8-0.1-0.1": (0.8, 0.1, 0.1),
    "0.6-0.3-0.1": (0.6, 0.3, 0.1),
    "0.4-0.4-0.2": (0.4, 0.4, 0.2),
    "0.3-0.3-0.3": (0.3, 0.3, 0.3),
    "0.5-0.2-0.4": (0.5, 0.2, 0.4),
    "0.7-0.2-0.1": (0.7, 0.2, 0.1),
    "0.4-0.2-0.4": (0.4, 0.2, 0.4),
}
NORMALISED = "-normalised"

#: Every row the pipeline runs (``dvc.yaml``'s foreach lists): as printed, then the normalised ones.
ROW_IDS = [*ROWS, *(f"{r}{NORMALISED}" for r, w in ROWS.items() if abs(sum(w) - 1) > 1e-9)]

#: The methods of a row, by their name in the result files.
METHODS = ("eho", "eho_box", "random", "de")

#: The columns of ``<row>.csv``, in order.
COLUMNS = [
    "row", "weights", "method", "seed", "f4", "dr_benefit_usd", "grid_stress_kw2", "mean_wait_h",
    "max_wait_h", "peak_kw", "min_kw", "load_factor", "user_cost_usd", "evaluations", "matriarch_clipped",
]


def row_weights(row: str) -> tuple[float, float, float]:
    """The weights of row ``row`` (an id of :data:`ROWS`, optionally with ``-normalised``)."""
    base = row.removesuffix(NORMALISED)
    if base not in ROWS:
        allowed = ", ".join([*ROWS, *(f"{r}{NORMALISED}" for r in ROWS if abs(sum(ROWS[r]) - 1) > 1e-9)])
        raise ConfigError(f"unknown Table 9 row {row!r}: choose one of {allowed}")
    weights = ROWS[base]
    if row.endswith(NORMALISED):
        total = sum(weights)
        if abs(total - 1) < 1e-9:
            raise ConfigError(f"row {base!r} already sums to 1: use it without {NORMALISED!r}")
        weights = tuple(w / total for w in weights)
    return weights


def budget(options: EHOOptions) -> int:
    """EHO's evaluations per run: the initial herd and one herd per generation (Table 6: 2,550)."""
    return options.n_elephants * (options.n_iterations + 1)


def evaluate_best(case: PriolkarCase, weights, x: np.ndarray) -> dict[str, float]:
    """F4 and the metrics of the users' exact response to elephant ``x``."""
    fitness = Fitness(case, weights)
    dp, _caps, _prio = decode(case, x)
    out = outcome(case, dp, fitness.schedules(x[None, :])[0])
    return {
        "f4": f4(out, fitness.norm, weights),
        "dr_benefit_usd": out.dr_benefit_usd,
        "grid_stress_kw2": out.grid_stress_kw2,
        "mean_wait_h": out.mean_wait_h,
        "max_wait_h": float(out.wait_h.max()),
        "peak_kw": out.peak_kw,
        "min_kw": out.min_kw,
        "load_factor": out.load_factor,
        "user_cost_usd": out.user_cost_usd,
    }


def run_method(case: PriolkarCase, weights, method: str, seed: int) -> dict[str, Any]:
    """One seeded run of ``method`` on ``case`` with F4 ``weights``: its best and its trace.

    ``history`` holds the best F4 after each batch of 50 evaluations (EHO:
    after each generation), ``x`` the best elephant.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    opts = case.params.eho
    fitness = Fitness(case, weights)
    lo, hi = search_box(case)
    n = budget(opts)
    if method in ("eho", "eho_box"):
        res = eho_minimise(fitness, lo, hi, opts.model_copy(update={"frame": "origin" if method == "eho"
                                                                     else "box"}), seed=seed)
        clipped = res.matriarch_clipped
    elif method == "random":
        res = random_search_minimise(fitness, lo, hi, budget=n, seed=seed, batch=opts.n_elephants)
        clipped = float("nan")
    else:
        res = differential_evolution_minimise(fitness, lo, hi, budget=n, seed=seed,
                                              population=opts.n_elephants)
        clipped = float("nan")
    return {"x": res.x, "history": -np.asarray(res.history), "evaluations": res.evaluations,
            "matriarch_clipped": clipped, "lp_fallbacks": fitness.lp_fallbacks}


def _task(task: tuple[PriolkarCase, tuple[float, float, float], str, int]) -> dict[str, Any]:
    case, weights, method, seed = task
    return run_method(case, weights, method, seed)


def convergence(row: str, histories: dict[str, list[np.ndarray]], batch: int) -> pd.DataFrame:
    """Per method and evaluation count, the spread over seeds of the best F4 so far (Fig. 4)."""
    parts = []
    for method, traces in histories.items():
        h = np.vstack(traces)
        parts.append(pd.DataFrame({
            "row": row, "method": method, "evaluations": batch * np.arange(1, h.shape[1] + 1),
            "f4_median": np.median(h, axis=0), "f4_q25": np.quantile(h, 0.25, axis=0),
            "f4_q75": np.quantile(h, 0.75, axis=0), "f4_min": h.min(axis=0), "f4_max": h.max(axis=0),
            "runs": h.shape[0],
        }))
    return pd.concat(parts, ignore_index=True)


def exact_table(row: str, case: PriolkarCase, weights) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Solve the row exactly: a per-period table (DR price, load) and a summary."""
    from evgrid.papers.priolkar2025.exact import solve_exact

    p = case.params
    res = solve_exact(case, weights, time_limit_s=p.solver.time_limit_s, solver=p.solver.solver)
    out = res.outcome
    summary = {
        "row": row, "f4": res.f4, "upper_bound": res.upper_bound, "gap": res.gap, "abs_gap": res.abs_gap,
        "status": res.status, "f4_price_search": res.f4_search, "f4_earliest_tie": res.f4_greedy, "dr_benefit_usd": out.dr_benefit_usd,
        "grid_stress_kw2": out.grid_stress_kw2, "mean_wait_h": out.mean_wait_h,
        "max_wait_h": float(out.wait_h.max()), "peak_kw": out.peak_kw, "min_kw": out.min_kw,
        "load_factor": out.load_factor, "user_cost_usd": out.user_cost_usd,
        "seconds": res.seconds,
    }
    hours = (p.horizon_start_h + np.arange(N_PERIODS)) % 24
    per_period = pd.DataFrame({"period": np.arange(N_PERIODS), "clock_hour": hours, "bp_usd_per_kwh": case.bp,
                               "dp_usd_per_kwh": res.dp, "dp_over_bp": res.dp / case.bp,
                               "load_kw": out.load_kw})
    return per_period, summary


def run_row(row: str, params_file: str = "params.yaml", *, progress: bool = True,
            parallel: ParallelOptions | None = None) -> pd.DataFrame:
    """Run every heuristic of Table 9 row ``row`` from ``n_runs`` seeds; write ``<row>.csv`` and its convergence."""
    weights = row_weights(row)
    params: Priolkar2025Params = load_section("priolkar2025", params_file)
    case = make_instance(params)
    normalisation(case)  # fails early on a degenerate instance
    options = load_parallel(params_file) if parallel is None else parallel
    tasks = [(case, weights, method, seed) for method in METHODS for seed in range(params.n_runs)]
    start = time.perf_counter()
    results = map_tasks(_task, tasks, options=options, desc=f"Table 9 row {row}", progress=progress)
    seconds = time.perf_counter() - start
    rows, histories = [], {}
    for (_case, _w, method, seed), res in zip(tasks, results, strict=True):
        metrics = evaluate_best(case, weights, res["x"])
        rows.append({"row": row, "weights": ":".join(f"{w:.4g}" for w in weights), "method": method,
                     "seed": seed, **metrics, "evaluations": res["evaluations"],
                     "matriarch_clipped": res["matriarch_clipped"]})
        histories.setdefault(method, []).append(res["history"])
    table = pd.DataFrame(rows, columns=COLUMNS)
    evaluations = int(table["evaluations"].sum())
    print(f"row {row}: {len(tasks)} runs, {evaluations} lower-level solves in {seconds:.1f} s "
          f"({evaluations / seconds:,.0f} per second)", flush=True)
    folder = output_path(params.results_dir, "table9")
    write_csv(convergence(row, histories, params.eho.n_elephants), folder / f"{row}_convergence.csv")
    write_csv(table, folder / f"{row}.csv")
    return table


def run_exact(row: str, params_file: str = "params.yaml") -> pd.DataFrame:
    """Solve Table 9 row ``row`` exactly; write ``<row>_exact.csv`` (one line per period, the summary repeated)."""
    weights = row_weights(row)
    params: Priolkar2025Params = load_section("priolkar2025", params_file)
    case = make_instance(params)
    per_period, summary = exact_table(row, case, weights)
    print(f"row {row}: exact F4 {summary['f4']:.4f} (bound {summary['upper_bound']:.4f}, "
          f"{summary['status']}) in {summary.pop('seconds'):.0f} s", flush=True)
    table = per_period.assign(**{k: v for k, v in summary.items() if k != "row"})
    table.insert(0, "row", row)
    write_csv(table, output_path(params.results_dir, "table9", f"{row}_exact.csv"))
    return table


def read_rows(folder, rows=ROW_IDS) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The pipeline's files of ``rows`` under ``folder``: every heuristic run, and each row's exact optimum.

    Raises ``FileNotFoundError`` naming the rows whose runs are missing; a row
    without an ``_exact.csv`` is left out of the second value.
    """
    folder = Path(folder)
    missing = [r for r in rows if not (folder / f"{r}.csv").exists()]
    if missing:
        raise FileNotFoundError(f"run `dvc repro priolkar2025_table9` first: missing rows {missing}")
    runs = pd.concat([pd.read_csv(folder / f"{r}.csv") for r in rows], ignore_index=True)
    exact = {r: pd.read_csv(folder / f"{r}_exact.csv") for r in rows if (folder / f"{r}_exact.csv").exists()}
    return runs, exact


def summarise(case: PriolkarCase, runs: pd.DataFrame, exact: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One line per row and method: median, quartiles and best F4 over the seeds; and one per row with
    ``method == "exact"`` (its incumbent in the F4 columns, ``upper_bound`` and ``status``).

    ``share_of_optimum_gain`` (heuristics only): how much of the optimum's gain over uncontrolled
    charging the median run reaches, ``(median - F4_unc) / (optimum - F4_unc)``, with ``F4_unc``
    the row's F4 of uncontrolled charging at the base price, computed here.
    """
    q = runs.groupby(["row", "method"], sort=False)["f4"]
    heur = pd.DataFrame({"f4_median": q.median(), "f4_q25": q.quantile(0.25), "f4_q75": q.quantile(0.75),
                         "f4_best": q.max(), "runs": q.count()}).reset_index()
    heur["upper_bound"], heur["status"] = np.nan, None
    ex = pd.DataFrame([{"row": r, "method": "exact", "f4_median": e["f4"].iloc[0], "f4_q25": e["f4"].iloc[0],
                        "f4_q75": e["f4"].iloc[0], "f4_best": e["f4"].iloc[0], "runs": 1,
                        "upper_bound": e["upper_bound"].iloc[0], "status": e["status"].iloc[0]}
                       for r, e in exact.items()], columns=heur.columns)
    unc = outcome(case, case.bp, asap_schedule(case))
    norm = normalisation(case)
    f4_unc = heur["row"].map(lambda r: f4(unc, norm, row_weights(r)))
    optimum = heur["row"].map(ex.set_index("row")["f4_median"]) if len(ex) else np.nan
    heur["share_of_optimum_gain"] = (heur["f4_median"] - f4_unc) / (optimum - f4_unc)
    return pd.concat([heur, ex.assign(share_of_optimum_gain=np.nan)], ignore_index=True) if len(ex) else heur


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.papers.priolkar2025.table9",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["heuristics", "exact"])
    parser.add_argument("row", help=f"a row of Table 9: one of {', '.join(ROWS)} (or <row>{NORMALISED})")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.what == "heuristics":
            run_row(args.row, args.params, progress=not args.no_progress)
        else:
            run_exact(args.row, args.params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
