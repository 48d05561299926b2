"""Benchmark: Kerama's budget sweep (Table 3) serially and on a local Dask cluster.

Run from the repo root (about 15 minutes on the 2-core machine)::

    .venv/bin/python benchmarks/kerama2025_parallel.py
    .venv/bin/python benchmarks/kerama2025_parallel.py --workers 1 2 4 --sweep fleet --no-benders

Two kinds of fan-out, both through :mod:`evgrid.core.parallel`:

* **Sweep points** (``kind=sweep``): ``run_sweep(<sweep>)`` with the
  ``parallel`` section of ``params.yaml`` set to ``workers=N`` (1: a plain
  loop in this process; N > 1: a local Dask cluster of N processes, one point
  per worker, Benders serial inside each point). Each run writes its table
  under a scratch output root, and the script checks that every run wrote the
  serial run's bytes (points stopped by the time limit would differ; the budget
  sweep has none).
* **Benders scenarios** (``kind=benders``, unless ``--no-benders``): the
  paper instance's :func:`~evgrid.papers.kerama2025.decomposition.solve_benders`
  with its ten scenario LPs on N workers.

For each run it records the wall time, the speed-up over one worker, and two
bounds on the speed-up that the serial run's own timings imply: a set of
points cannot finish before its slowest point (``slowest_point_s``), nor
before its total work divided by N (``ideal_s``), so the best possible wall
time with N workers is ``max(slowest_point_s, ideal_s)`` (``bound_s``).

Writes ``benchmarks/results/kerama2025_parallel.csv`` and ``.png``; the README
quotes them. Timings are for this machine; rerun before comparing. Nothing
tracked by the pipeline is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def _params_file(folder: Path, workers: int) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["parallel"] = {**params["parallel"], "workers": workers, "scheduler": None,
                          "cluster": "local"}
    path = folder / f"params_w{workers}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def sweep_run(sweep: str, workers: int, folder: Path) -> dict:
    """One sweep on ``workers`` workers, written under ``folder``; wall time and per-point times."""
    from evgrid.papers.kerama2025.sweep import run_sweep

    root = folder / f"out_w{workers}"
    os.environ["EVGRID_OUTPUT_ROOT"] = str(root)
    params = _params_file(folder, workers)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = run_sweep(sweep, str(params), progress=False)
    wall = time.perf_counter() - start
    written = next((root / "results").rglob(f"{sweep}.csv")).read_bytes()
    return {"wall_s": wall, "points_s": list(table["seconds"]), "bytes": written,
            "statuses": sorted(set(table["status"]))}


def benders_run(workers: int) -> dict:
    """The paper instance's Benders solve with its scenario LPs on ``workers`` workers."""
    from evgrid.core.config import load_section
    from evgrid.papers.kerama2025.case import make_instance
    from evgrid.papers.kerama2025.decomposition import solve_benders

    params = load_section("kerama2025")
    case = make_instance(params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_benders(case, tol=params.solver.mip_gap, workers=workers,
                               time_limit_s=params.solver.time_limit_s)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "objective": result.objective, "iterations": len(result.trace),
            "scenario_s": [sol.solve_s for sol in result.scenarios.values()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", default="budget", choices=("budget", "degradation", "price", "fleet"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-benders", action="store_true", help="only the sweep points")
    args = parser.parse_args(argv)
    if 1 not in args.workers:
        parser.error("--workers must include 1: the speed-ups are measured against it")
    workers = sorted(set(args.workers))
    print(f"evgrid benchmark on {os.cpu_count()} cores: sweep {args.sweep!r}, workers {workers}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="evgrid-parallel-") as tmp:
        runs = {n: sweep_run(args.sweep, n, Path(tmp)) for n in workers}
    serial = runs[1]
    total, slowest = sum(serial["points_s"]), max(serial["points_s"])
    for n, run in runs.items():
        rows.append({
            "kind": "sweep", "what": f"{args.sweep} sweep, {len(serial['points_s'])} points",
            "workers": n, "wall_s": run["wall_s"], "speedup": serial["wall_s"] / run["wall_s"],
            "slowest_point_s": slowest, "ideal_s": total / n, "bound_s": max(slowest, total / n),
            "same_bytes_as_serial": run["bytes"] == serial["bytes"],
            "statuses": "/".join(run["statuses"]),
        })
        print(f"sweep, {n} worker(s): {run['wall_s']:.0f} s", flush=True)
    if not args.no_benders:
        bruns = {n: benders_run(n) for n in workers}
        base = bruns[1]
        for n, run in bruns.items():
            rows.append({
                "kind": "benders", "what": f"paper instance, {len(run['scenario_s'])} scenario LPs, "
                f"{run['iterations']} iteration(s)",
                "workers": n, "wall_s": run["wall_s"], "speedup": base["wall_s"] / run["wall_s"],
                "slowest_point_s": max(base["scenario_s"]), "ideal_s": None, "bound_s": None,
                "same_bytes_as_serial": run["objective"] == base["objective"],
                "statuses": "",
            })
            print(f"benders, {n} worker(s): {run['wall_s']:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    table.round(2).to_csv(OUT / "kerama2025_parallel.csv", index=False)
    _figure(table, OUT / "kerama2025_parallel.png")
    print(table.round(2).to_string(index=False))
    return 0


def _figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, g in table.groupby("kind", sort=False):
        line, = ax.plot(g["workers"], g["wall_s"] / 60, "o-", label=f"{kind}: measured")
        if kind == "sweep":
            ax.plot(g["workers"], g["bound_s"] / 60, "--", color=line.get_color(),
                    label="sweep: best possible (slowest point, work / N)")
    ax.set_xlabel("Dask worker processes")
    ax.set_ylabel("Wall time (min)")
    ax.set_xticks(sorted(table["workers"].unique()))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Kerama 2025 on {os.cpu_count()} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
