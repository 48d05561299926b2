"""Benchmark: Priolkar & Kunkolienkar (2025) at the paper's size, EHO and its baselines and the exact MILP.

Run from the repo root (a few seconds, plus the exact MILP if asked for)::

    .venv/bin/python benchmarks/priolkar2025_eho.py
    .venv/bin/python benchmarks/priolkar2025_eho.py --exact      # + the exact optimum of the default row

Measures, on the ``priolkar2025`` instance of ``params.yaml`` (50 EVs, 10
stations, weights 0.6 : 0.3 : 0.1):

* one population of 50 users' exact responses (``lower.respond``), the unit of
  every fitness evaluation;
* one run of each method of Table 9 (EHO, EHO in the box frame, random search,
  differential evolution: 2,550 evaluations each), median of ``--repeats``
  seeds, and the evaluations per second;
* with ``--exact``: ``exact.solve_exact`` on the default row, its proven gap and time.

Writes ``benchmarks/results/priolkar2025_eho.csv``; the README quotes it. Timings
are for this machine; rerun before comparing. Nothing tracked by the pipeline
is touched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evgrid.core.config import load_section
from evgrid.papers.priolkar2025 import lower, table9, upper
from evgrid.papers.priolkar2025.case import make_instance

OUT = Path(__file__).resolve().parent / "results" / "priolkar2025_eho.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="seeds per method (median time)")
    parser.add_argument("--exact", action="store_true", help="also time the exact MILP of the default row")
    args = parser.parse_args(argv)
    params = load_section("priolkar2025")
    case = make_instance(params)
    weights = params.weights
    rows = []
    lo, hi = upper.search_box(case)
    x = lo + (hi - lo) * np.random.default_rng(0).random((params.eho.n_elephants, len(lo)))
    dp = upper.decode(case, x)[0]
    times = []
    for _ in range(20):
        tick = time.perf_counter()
        lower.respond(case, dp)
        times.append(time.perf_counter() - tick)
    rows.append({"what": f"{len(x)} x {case.n_evs} users' exact responses (one population)", "runs": 20,
                 "median_s": float(np.median(times)), "evaluations": len(x),
                 "evaluations_per_s": len(x) / float(np.median(times)), "f4": np.nan, "gap": np.nan})
    for method in table9.METHODS:
        times, values = [], []
        for seed in range(args.repeats):
            tick = time.perf_counter()
            res = table9.run_method(case, weights, method, seed)
            times.append(time.perf_counter() - tick)
            values.append(float(res["history"][-1]))
        rows.append({"what": f"one {method} run, {res['evaluations']} evaluations", "runs": args.repeats,
                     "median_s": float(np.median(times)), "evaluations": res["evaluations"],
                     "evaluations_per_s": res["evaluations"] / float(np.median(times)),
                     "f4": float(np.median(values)), "gap": np.nan})
        print(f"{method}: {np.median(times):.2f} s per run", flush=True)
    if args.exact:
        from evgrid.papers.priolkar2025.exact import solve_exact

        tick = time.perf_counter()
        res = solve_exact(case, weights, time_limit_s=params.solver.time_limit_s)
        rows.append({"what": f"exact MILP, weights {weights}, limit {params.solver.time_limit_s:g} s", "runs": 1,
                     "median_s": time.perf_counter() - tick, "evaluations": np.nan,
                     "evaluations_per_s": np.nan, "f4": res.f4, "gap": res.gap})
    table = pd.DataFrame(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(OUT, index=False)
    print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
