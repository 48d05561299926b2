"""Benchmark: Villanueva-Machado et al. (2025), the per-bus DEVCM at the paper's size.

Run from the repo root (about 2 minutes per run asked for)::

    .venv/bin/python benchmarks/villanueva2025_devcm.py                      # Sc1 min bus 2, Sc3 max bus 13
    .venv/bin/python benchmarks/villanueva2025_devcm.py Sc2_max_bus12 --authors

For each of the authors' runs named: the corrected model's bounded solve (restriction + relaxation,
the cheaper schedule kept; the ``villanueva2025`` section's time limit and gap), its build and solve seconds, the proven gap,
and the authors' CPLEX outcome beside it; with ``--authors`` also their one-sided pricing. Writes
``benchmarks/results/villanueva2025_devcm.csv``; the README quotes it. Timings are for this machine.
The full set of runs is the pipeline's (``dvc repro villanueva2025_authors``), whose log prints
each run's time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from evgrid.core.config import load_section
from evgrid.papers.villanueva2025 import authors
from evgrid.papers.villanueva2025.devcm import solve_devcm

OUT = Path(__file__).resolve().parent / "results" / "villanueva2025_devcm.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", default=["Sc1_min_bus02", "Sc3_max_bus13"])
    parser.add_argument("--authors", action="store_true", help="also solve the authors' one-sided pricing")
    args = parser.parse_args(argv)
    p = load_section("villanueva2025")
    rows = []
    for run in args.runs:
        inst = authors.load_run(run)
        for pricing in ["corrected"] + (["authors"] if args.authors else []):
            limit = p.authors_runs.time_limit_s if pricing == "corrected" else p.authors_runs.authors_time_limit_s
            tick = time.perf_counter()
            res, _ = solve_devcm(inst, p.devcm.model_copy(update={"pricing": pricing}), time_limit_s=limit,
                                 mip_gap=p.authors_runs.mip_gap)
            wall = time.perf_counter() - tick
            out = authors.authors_outcome(run)
            rows.append({"run": run, "pricing": pricing, "vehicles": inst.n_vehicles, "binaries": res.n_binaries,
                         "objective_usd": res.objective_usd, "bound_usd": res.bound_usd, "rel_gap": res.rel_gap,
                         "schedule": res.schedule,
                         "build_s": round(res.build_s, 1), "wall_s": round(wall, 1),
                         "authors_incumbent": out["objective_incumbent"], "authors_rel_gap": out["rel_gap"],
                         "authors_wall_s": out["wall_time_s"]})
            print(rows[-1], flush=True)
    OUT.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
