"""Benchmark: where one Benders scenario's time goes, Pyomo build vs translation vs HiGHS.

Run from the repo root (about 3 minutes on the 2-core machine)::

    .venv/bin/python benchmarks/kerama2025_overhead.py            # the paper instance (200 EVs)
    .venv/bin/python benchmarks/kerama2025_overhead.py --evs 500

One scenario (scenario 0), one process, the two solves Benders makes of it
in a run that closes in one iteration (its high-point bound, then its
subproblem at the uncapped grid point), made two ways:

* **separate models** (evgrid before the persistent scenario LP): the
  high-point relaxation and the subproblem are each built with Pyomo,
  translated to HiGHS and solved;
* **one persistent LP** (:class:`evgrid.papers.kerama2025.decomposition._ScenarioLP`):
  one model, translated once; the subproblem adds the aggregators'
  optimality rows to the HiGHS model already there, and every later Benders
  iteration or feasibility solve changes bounds only.

Writes ``benchmarks/results/kerama2025_overhead.csv``; the README quotes it.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def _case(total_evs: int):
    from evgrid.core.config import load_section, validate_section
    from evgrid.papers.kerama2025.case import make_instance

    base = load_section("kerama2025").model_dump()
    base["fleet"]["n_evs"] = total_evs // base["n_aggregators"]
    return make_instance(validate_section("kerama2025", base))


def _row(method, step, build_s, result, wall_s):
    """``other_s``: the rest of the call: loading the solution and, for the persistent LP,
    handing HiGHS the optimality rows the high-point bound left out."""
    return {
        "method": method, "step": step, "pyomo_build_s": build_s,
        "translation_s": result.build_time_s, "highs_s": result.solve_time_s,
        "other_s": wall_s - result.build_time_s - result.solve_time_s, "objective": result.objective,
    }


def separate(case) -> list[dict]:
    from evgrid.papers.kerama2025.case import one_scenario
    from evgrid.papers.kerama2025.decomposition import _solve_lp, build_subproblem
    from evgrid.papers.kerama2025.model import build_single_level

    rows = []
    start = time.perf_counter()
    model, _ = build_single_level(one_scenario(case, 0), lower_level="high_point")
    built = time.perf_counter() - start
    tick = time.perf_counter()
    rows.append(_row("separate models", "high-point bound", built, _solve_lp(model, case),
                     time.perf_counter() - tick))
    start = time.perf_counter()
    model, bits = build_subproblem(case, 0)
    for bit in bits:
        bit.fix(1)  # the uncapped grid point
    built = time.perf_counter() - start
    tick = time.perf_counter()
    rows.append(_row("separate models", "subproblem", built, _solve_lp(model, case, reduced_costs_of=bits),
                     time.perf_counter() - tick))
    return rows


def persistent(case) -> list[dict]:
    from evgrid.papers.kerama2025.decomposition import _ScenarioLP

    lp = _ScenarioLP(case, 0)
    ones = [1] * len(lp.hats)
    rows = []
    for step, mode, point, build in [("high-point bound", "high_point", None, lp.build_s),
                                     ("subproblem", "optimal", ones, 0.0),
                                     ("subproblem, next iteration", "optimal", ones, 0.0)]:
        tick = time.perf_counter()
        result = lp.solve(mode, point)
        rows.append(_row("one persistent LP", step, build, result, time.perf_counter() - tick))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evs", type=int, default=200)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    case = _case(args.evs)
    table = pd.DataFrame(separate(case) + persistent(case))
    table.insert(0, "evs", args.evs)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "kerama2025_overhead.csv"
    table.round(2).to_csv(path, index=False)
    both = table[table["step"].isin(["high-point bound", "subproblem"])]  # what both ways do
    totals = both.groupby("method")[["pyomo_build_s", "translation_s", "highs_s", "other_s"]].sum()
    totals["total_s"] = totals.sum(axis=1)
    print(table.round(2).to_string(index=False))
    print(totals.round(1).to_string())
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
