"""Benchmark: Villanueva-Machado et al. (2025) Monte Carlo of trips at the paper's size, both modes.

Run from the repo root (a few seconds)::

    .venv/bin/python benchmarks/villanueva2025_mcs.py
    .venv/bin/python benchmarks/villanueva2025_mcs.py --repeats 5

Measures :func:`evgrid.papers.villanueva2025.mcs.run_mcs` on the default options: 200 x 2,000 +
120 x 2,500 + 80 x 3,750 = 1,000,000 weighted EVs ("micro-stochastic evaluations", Sec. 2.2),
i.e. 100,000 representative vehicle-days, in mode ``authors`` and ``as_described``; median of
``--repeats`` runs after one untimed run that fills the dataset caches (reading the workbook).
Also times the 10 real-time re-draws of the six chosen samples (:func:`mcs.rt_redraws`).
Target: at most 10 s per full run on the project's 2-core machine.

Writes ``benchmarks/results/villanueva2025_mcs.csv``. Timings are for this machine; rerun
before comparing. Nothing tracked by the pipeline is touched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evgrid.papers.villanueva2025 import mcs

OUT = Path(__file__).resolve().parent / "results" / "villanueva2025_mcs.csv"
TARGET_S = 10.0


def _median_time(func, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        tick = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - tick)
    return float(np.median(times)), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode (median)")
    args = parser.parse_args(argv)
    rows = []
    for mode in ("authors", "as_described"):
        options = mcs.McsOptions(mode=mode)
        mcs.run_mcs(options)  # fills the dataset caches
        median_s, run = _median_time(lambda options=options: mcs.run_mcs(options), args.repeats)
        vehicle_days = sum(s.n_samples * s.n_vehicles for s in run.values())
        weighted = sum(s.n_samples * s.n_evs for s in run.values())
        rows.append({"what": "run_mcs, 3 scenarios, all samples", "mode": mode, "runs": args.repeats,
                     "median_s": median_s, "vehicle_days": vehicle_days, "weighted_evs": weighted,
                     "vehicle_days_per_s": vehicle_days / median_s})
        print(f"{mode}: run_mcs {median_s:.3f} s for {vehicle_days:,} vehicle-days ({weighted:,} weighted EVs); "
              f"target <= {TARGET_S:g} s: {'met' if median_s <= TARGET_S else 'MISSED'}", flush=True)

        def redraws(run=run) -> int:
            return sum(mcs.rt_redraws(s, which).road_kwh.shape[0] * s.n_vehicles
                       for s in run.values() for which in ("min", "max"))

        median_s, count = _median_time(redraws, args.repeats)
        rows.append({"what": "rt_redraws, n = 10, six chosen samples", "mode": mode, "runs": args.repeats,
                     "median_s": median_s, "vehicle_days": count, "weighted_evs": np.nan,
                     "vehicle_days_per_s": count / median_s})
        print(f"{mode}: rt_redraws of the six chosen samples {median_s:.3f} s", flush=True)
    table = pd.DataFrame(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(OUT, index=False)
    print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
