"""The DEVCM study of Villanueva-Machado et al. (2025): every per-bus MILP, solved, through the parallel module.

Two sets of runs, each one MILP per load bus and Monte Carlo sample:

* **the authors' runs** (:func:`run_authors`): their 88 instances exactly as they fed them to
  CPLEX (``data/villanueva2025/authors_runs``), solved in the corrected model and in the authors'
  one-sided pricing, each beside the authors' own solver outcome;
* **our own study** (:func:`run_own`): this compendium's Monte Carlo (``mcs.py``) for the three
  scenarios, min and max sample, 11 buses, corrected model; and scenario 3 again under the DNO's
  caps that the cap OPF computed (``capped=True``, Eqs. 56-57, written as ``Sc3-CR``), the
  coordinated scenario of Table 4.

Each scenario is one DVC stage; its tasks (one per run and pricing) go through
:func:`evgrid.core.parallel.map_tasks`. Two files per stage, both under ``results_dir``:

``<set>/<scenario>_runs.csv``
    one row per run and pricing: status, objective and proven bound (US$), gap, which schedule was
    kept, the parts of the cost, the traded energy, model size, the energy-balance residuals of
    the solved schedule (:data:`BALANCE_COLUMNS`, ``balance_ok``), and (authors' runs) the
    authors' outcome beside it.
``<set>/<scenario>_profiles.csv``
    the per-bus half-hourly DA trade P^EM_{k,t} (MW; + buys, - sells), one row per run, pricing
    and period: **the file the centralized OPF (part 2) reads**; columns ``scenario, sample, bus,
    pricing, t, p_em_mw``. Part 2 adds it to bus k's load in period t (Eq. 43).

Times are printed, never written (a re-run is byte-identical when every solve ends the same way;
a run that stops at its time limit may not, and its status says so).

CLI::

    python -m evgrid.papers.villanueva2025.study authors Sc1
    python -m evgrid.papers.villanueva2025.study own 1
    python -m evgrid.papers.villanueva2025.study own 3-CR   # needs <results_dir>/opf/caps.csv
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from evgrid.core.config import load_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks
from evgrid.core.paths import output_path
from evgrid.core.solvers import InfeasibleModelError
from evgrid.papers.villanueva2025 import authors
from evgrid.papers.villanueva2025.devcm import DevcmOptions, least_cap_excess, solve_devcm
from evgrid.papers.villanueva2025.instance import DevcmInstance, InstanceError

__all__ = ["BALANCE_COLUMNS", "RUN_COLUMNS", "balance_row", "instance_from_mcs", "read_caps", "run_authors", "run_own",
           "solve_task", "system_data"]

#: The energy-balance check of every solved run (:func:`~evgrid.papers.villanueva2025.devcm.energy_balance`):
#: its largest residual per account, written rounded to 1e-6 (kWh, MW or US$).
BALANCE_COLUMNS = {"soc": "soc_residual_kwh", "cycle": "cycle_residual_kwh", "fleet": "fleet_residual_mw",
                   "balance": "trade_residual_mw", "degradation": "degradation_excess_usd"}
#: Residual allowed in ``balance_ok`` (kWh or MW): HiGHS's feasibility tolerance is 1e-7 on scaled rows.
BALANCE_TOL = 1e-4

#: Columns of ``<scenario>_runs.csv`` (authors' runs add the ``authors_*`` columns).
RUN_COLUMNS = ["run", "scenario", "sample", "bus", "pricing", "method", "status", "objective_usd", "bound_usd",
               "rel_gap", "abs_gap_usd", "relaxation_usd", "schedule", "market_usd", "battery_usd",
               "daily_energy_mwh", "import_mwh", "export_mwh", "cap_excess_mwh", "n_vehicles", "n_vehicles_merged", "n_binaries",
               "n_variables", "n_constraints", *BALANCE_COLUMNS.values(), "balance_ok"]


def system_data() -> dict[str, Any]:
    """The data every aggregator shares (identical in all 88 of the authors' runs): Psys, steps, cap, currency."""
    inst = authors.load_run(authors.run_ids()[0])
    return {"psys_mw": inst.psys_mw, "price_per_kwh": inst.price_per_kwh, "step_lower_mw": inst.step_lower_mw,
            "step_upper_mw": inst.step_upper_mw, "cap_mw": inst.cap_mw, "currency_per_usd": inst.currency_per_usd,
            "dt_h": inst.dt_h}


def instance_from_mcs(at_bus: dict[str, np.ndarray], *, name: str, bus: int, seed: int,
                      system: dict[str, Any] | None = None) -> DevcmInstance:
    """One aggregator's instance from our Monte Carlo's re-draws (``RtRedraws.at_bus(bus)``).

    What the Monte Carlo does not draw is drawn here as the authors' inputs show it (data
    README, §"Relations checked"): battery cost C_v ~ N(120, 10) $/kWh clipped to [100, 140],
    degradation slope m_v = 0.0006 + 0.0011 (C_v - 100) / 40, SoC^init ~ U[12, 76] kWh per vehicle
    and scenario. Psys, the price steps, P^SYScap and the currency are the authors' (:func:`system_data`).
    """
    sysd = system or system_data()
    rng = np.random.default_rng(seed)
    n_sc, n_v, _ = at_bus["plugged"].shape
    cost = np.clip(rng.normal(120.0, 10.0, n_v), 100.0, 140.0)
    return DevcmInstance(
        name=name, bus=bus, weight_evs=at_bus["weight_evs"].astype(float), plugged=at_bus["plugged"].astype(bool),
        on_road=at_bus["on_road"].astype(bool), road_kwh=at_bus["road_kwh"].astype(float),
        arrival=at_bus["arrival"].astype(bool), departure=at_bus["departure"].astype(bool),
        soc_init_kwh=rng.uniform(12.0, 76.0, (n_sc, n_v)), battery_cost_usd_per_kwh=cost,
        degradation_slope=0.0006 + 0.0011 * (cost - 100.0) / 40.0, pi=np.full(n_sc, 1.0 / n_sc),
        psys_mw=sysd["psys_mw"], cap_mw=sysd["cap_mw"], cap_includes_system_load=True,
        price_per_kwh=sysd["price_per_kwh"], step_lower_mw=sysd["step_lower_mw"],
        step_upper_mw=sysd["step_upper_mw"], currency_per_usd=sysd["currency_per_usd"], dt_h=sysd["dt_h"],
        meta={"source": "evgrid Monte Carlo", "vehicles": at_bus["vehicles"]},
    ).validate()


def solve_task(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Solve one run in each pricing of ``task["pricings"]`` (a pure task for :func:`map_tasks`).

    The corrected model is solved first; its schedule, feasible in the authors' one-sided pricing
    too, is offered to that solve as a first incumbent. Returns one ``{"row", "p_em_mw"}`` per
    pricing. A capped run that its hard caps make infeasible (refused before building, or proven
    by HiGHS) is solved again, when ``task["raise_infeasible_caps"]``, under caps raised by the least
    excess that makes it feasible (:func:`~evgrid.papers.villanueva2025.devcm.least_cap_excess`):
    its status then starts with ``raised caps`` and says why, and ``cap_excess_mwh`` is the energy
    the caps were raised by. A pricing that still fails is returned as failed, with its reason, and NaN
    traded power: one failed solve must not lose the others.
    """
    from evgrid.papers.villanueva2025.devcm import energy_balance, solution_arrays

    inst: DevcmInstance = task["instance"] if "instance" in task else authors.load_run(task["run"])
    out, start = [], None
    for pricing in task["pricings"]:
        opt = DevcmOptions(**{**task["devcm"], "pricing": pricing})
        tick = time.perf_counter()
        raised_reason = None
        try:
            try:
                res, model = solve_devcm(inst, opt, time_limit_s=task["time_limit_s"][pricing],
                                         mip_gap=task["mip_gap"], threads=1,
                                         start=None if pricing == "corrected" else start)
            except (InstanceError, InfeasibleModelError) as exc:
                if inst.cap_includes_system_load or not task.get("raise_infeasible_caps"):
                    raise
                raised_reason = str(exc).split(": ", 1)[-1]
                excess = least_cap_excess(inst, opt)
                raised = replace(inst, cap_mw=inst.cap_mw + excess)
                left = max(task["time_limit_s"][pricing] - (time.perf_counter() - tick), 30.0)
                res, model = solve_devcm(raised, opt, time_limit_s=left, mip_gap=task["mip_gap"], threads=1)
        except Exception as exc:
            row = {k: np.nan for k in RUN_COLUMNS if k not in ("run", "scenario", "sample", "bus")}
            row.update(pricing=pricing, status=f"failed: {type(exc).__name__}: {exc}"[:300],
                       seconds=time.perf_counter() - tick)
            out.append({"row": row, "p_em_mw": np.full(inst.n_periods, np.nan)})
            continue
        if pricing == "corrected":
            start = solution_arrays(model)
        row = res.row()
        if raised_reason is not None:
            row["status"] = f"raised caps ({raised_reason})"[:300]
            row["cap_excess_mwh"] = float(excess.sum() * inst.dt_h)
        row.update(balance_row(energy_balance(model)))
        for key in ("name", "build_s", "solve_s"):  # tracked result files hold no timings
            row.pop(key, None)
        row["seconds"] = time.perf_counter() - tick  # printed by the caller, not written
        out.append({"row": row, "p_em_mw": res.p_em_mw})
    return out


def balance_row(balance: dict[str, float]) -> dict[str, Any]:
    """The columns of one run's energy-balance check: residuals rounded to 1e-6, and whether all are small.

    ``soc``, ``cycle``, ``fleet`` and ``balance`` must be within :data:`BALANCE_TOL`; the
    degradation account may exceed the SoC drops it prices (never fall below them).
    """
    row = {col: round(float(balance[key]), 6) + 0.0 for key, col in BALANCE_COLUMNS.items()}
    row["balance_ok"] = bool(max(balance[k] for k in ("soc", "cycle", "fleet", "balance")) <= BALANCE_TOL
                             and balance["degradation"] >= -1e-6)
    return row


def _tables(results: list[list[dict]], meta: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, profiles = [], []
    for per_pricing, info in zip(results, meta, strict=True):
        for res in per_pricing:
            row = {**res["row"], **info}  # the run's identity is the caller's, never the solve's
            rows.append(row)
            profiles.append(pd.DataFrame({"scenario": info["scenario"], "sample": info["sample"], "bus": info["bus"],
                                          "pricing": row["pricing"], "t": np.arange(1, 49),
                                          "p_em_mw": res["p_em_mw"]}))
    table = pd.DataFrame(rows)
    front = [c for c in ("run", "scenario", "sample", "bus", "mcs_sample_index", "pricing") if c in table]
    known = [c for c in RUN_COLUMNS if c in table and c not in front]  # a fixed order, whichever row came first
    order = front + known + [c for c in table.columns if c not in front and c not in known]
    return table[order], pd.concat(profiles, ignore_index=True)


def _f(x: Any, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _print(table: pd.DataFrame, seconds: float, label: str) -> None:
    for _, r in table.iterrows():
        print(f"{r['run']:>18} {r['pricing']:>9} {str(r['status'])[:40]:>18} obj {_f(r['objective_usd'], '10.3f')} "
              f"bound {_f(r['bound_usd'], '10.3f')} gap {_f(r['rel_gap'], '8.2%')} "
              f"{_f(r['daily_energy_mwh'], '8.3f')} MWh {r['seconds']:6.1f} s", flush=True)
    print(f"{label}: {len(table)} solves in {seconds:.0f} s wall "
          f"({table['seconds'].sum():.0f} s of solver time)", flush=True)


def _solve_and_write(tasks: list[dict], meta: list[dict], results_dir: str, which: str, label: str,
                     params_file: str, *, progress: bool, parallel: ParallelOptions | None) -> pd.DataFrame:
    """Fan ``tasks`` out through :func:`map_tasks`; write ``<which>/<label>_runs.csv`` and ``_profiles.csv``."""
    options = load_parallel(params_file) if parallel is None else parallel
    tick = time.perf_counter()
    results = map_tasks(solve_task, tasks, options=options, desc=f"{which} {label}", progress=progress)
    table, profiles = _tables(results, meta)
    _print(table, time.perf_counter() - tick, f"{which} {label}")
    folder = output_path(results_dir, which)
    write_csv(profiles, folder / f"{label}_profiles.csv")
    write_csv(table.drop(columns="seconds"), folder / f"{label}_runs.csv")
    return table


def run_authors(scenario: str, params_file: str = "params.yaml", *, progress: bool = True,
                parallel: ParallelOptions | None = None) -> pd.DataFrame:
    """Re-solve every authors' run of ``scenario`` in each pricing of the section; write runs and profiles."""
    params = load_section("villanueva2025", params_file)
    ids = authors.run_ids(scenario=scenario)
    limits = {"corrected": params.authors_runs.time_limit_s, "authors": params.authors_runs.authors_time_limit_s}
    pricings = sorted(params.authors_runs.pricings, key=["corrected", "authors"].index)
    tasks, meta = [], []
    for run in ids:
        tasks.append({"run": run, "devcm": params.devcm.model_dump(), "pricings": pricings,
                      "time_limit_s": limits, "mip_gap": params.authors_runs.mip_gap,
                      "raise_infeasible_caps": params.authors_runs.raise_infeasible_caps})
        out = authors.authors_outcome(run)
        info = authors.read_runs().loc[run]
        meta.append({"run": run, "scenario": scenario, "sample": info["sample"], "bus": int(info["bus"]),
                     **{f"authors_{k}": out[k] for k in ("objective_incumbent", "best_bound", "rel_gap",
                                                         "objective_final_fixed_lp", "pem_energy_mwh_out_gdx",
                                                         "output_available", "duplicate_of_run")},
                     "authors_daily_energy_mwh": float(authors.authors_pem_mw(run).sum() * 0.5)})
    return _solve_and_write(tasks, meta, params.results_dir, "authors_runs", scenario, params_file,
                            progress=progress, parallel=parallel)


def read_caps(results_dir: str) -> dict[int, np.ndarray]:
    """The DNO's caps P^EM_cap,k,t (MW) by load bus, from the cap OPF's ``<results_dir>/opf/caps.csv``.

    Raises ``FileNotFoundError`` (run the caps stage first) or ``ValueError`` naming what is missing:
    a load bus without caps, a period missing, or a cap that is not finite.
    """
    path = output_path(results_dir, "opf") / "caps.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the DNO's caps are not there; run the cap OPF first "
                                "(python -m evgrid.papers.villanueva2025.opf_study --caps-only)")
    caps = pd.read_csv(path)
    out = {}
    for bus in authors.LOAD_BUSES:
        rows = caps[caps["bus"] == bus].sort_values("t")
        if rows["t"].tolist() != list(range(1, 49)):
            raise ValueError(f"{path}: bus {bus} has caps for periods {rows['t'].tolist()}, expected 1..48")
        cap = rows["cap_mw"].to_numpy(float)
        if not np.isfinite(cap).all():
            raise ValueError(f"{path}: bus {bus} has a cap that is not finite (a failed cap OPF period)")
        out[bus] = cap
    extra = sorted(set(caps["bus"]) - set(authors.LOAD_BUSES))
    if extra:
        raise ValueError(f"{path}: caps for buses {extra}, which carry no load; load buses are {authors.LOAD_BUSES}")
    return out


def run_own(scenario: int, params_file: str = "params.yaml", *, progress: bool = True,
            parallel: ParallelOptions | None = None, capped: bool = False) -> pd.DataFrame:
    """Solve our own Monte Carlo's runs of ``scenario`` (1-3): min and max sample, every load bus, corrected.

    With ``capped``, each aggregator's trade is held under its bus's cap from the cap OPF
    (:func:`read_caps`) by Eqs. (56)-(57) instead of the system capacity (29)-(30); the runs are
    written as scenario ``Sc<n>-CR``.
    """
    from evgrid.papers.villanueva2025.mcs import rt_redraws, simulate_scenario

    params = load_section("villanueva2025", params_file)
    caps = read_caps(params.results_dir) if capped else None  # before any simulation: fail fast
    sc = simulate_scenario(params.mcs, scenario)
    sysd = system_data()
    label = f"Sc{scenario}-CR" if capped else f"Sc{scenario}"
    tasks, meta = [], []
    for sample in ("min", "max"):
        red = rt_redraws(sc, sample, seed=params.mcs.seed)
        for bus in authors.LOAD_BUSES:
            at = red.at_bus(bus)
            name = f"{label}_{sample}_bus{bus:02d}"
            inst = instance_from_mcs(at, name=name, bus=bus, seed=params.mcs.seed + 1000 * scenario + bus
                                     + (0 if sample == "min" else 500), system=sysd)
            if caps is not None:  # the same vehicles and draws as the uncapped run, under the bus's cap
                inst = replace(inst, cap_mw=caps[bus], cap_includes_system_load=False).validate()
            tasks.append({"instance": inst, "devcm": params.devcm.model_dump(), "pricings": ["corrected"],
                          "time_limit_s": {"corrected": params.authors_runs.time_limit_s},
                          "mip_gap": params.authors_runs.mip_gap,
                          "raise_infeasible_caps": params.authors_runs.raise_infeasible_caps})
            meta.append({"run": name, "scenario": label, "sample": sample, "bus": bus,
                         "mcs_sample_index": int(sc.chosen(sample)[0]) + 1})
    return _solve_and_write(tasks, meta, params.results_dir, "own_runs", label, params_file,
                            progress=progress, parallel=parallel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.papers.villanueva2025.study",
                                     description="Solve the DEVCM runs of one scenario and write their results.")
    parser.add_argument("which", choices=["authors", "own"])
    parser.add_argument("scenario", help="Sc1, Sc2, Sc3 or Sc3-CR (authors); 1, 2, 3 or 3-CR (own; 3-CR under "
                        "the cap OPF's caps)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.which == "authors":
        if args.scenario not in authors.SCENARIOS:
            parser.error(f"scenario {args.scenario!r}: allowed {', '.join(authors.SCENARIOS)}")
        run_authors(args.scenario, args.params, progress=not args.no_progress)
    else:
        if args.scenario not in ("1", "2", "3", "3-CR"):
            parser.error(f"scenario {args.scenario!r}: allowed 1, 2, 3, 3-CR")
        run_own(int(args.scenario[0]), args.params, progress=not args.no_progress,
                capped=args.scenario.endswith("-CR"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


