"""The CEVCM study of Villanueva-Machado et al. (2025): the per-half-hour AC OPF on every set of EV profiles.

One pipeline stage solves, through :func:`evgrid.core.parallel.map_tasks` (one task per day):

* the day without EVs (``profiles = "none"``: the "Without EVs" columns of Tables 3 and 5);
* the authors' own P^EM profiles, as they fed them to their OPF (``"authors_paper"``,
  :func:`~evgrid.papers.villanueva2025.opf.authors_day`): Sc1, Sc2, Sc3 and Sc3-CR, min and max;
* the authors' DEVCM inputs re-solved by us (``"authors_resolved"``,
  ``<results_dir>/authors_runs/<scenario>_profiles.csv``, corrected pricing);
* our own Monte Carlo and DEVCM (``"own"``, ``<results_dir>/own_runs/Sc<n>_profiles.csv``,
  corrected pricing);
* the DNO's caps on the no-EV load (:func:`~evgrid.papers.villanueva2025.opf.solve_caps`,
  Eqs. 54-55), beside the authors' caps.

Of the two profile sets the stages write, every (scenario, sample) whose file exists is solved; a
sample whose profile is incomplete (a bus or period missing, a failed DEVCM solve's NaN) is
skipped with a printed note, and its table cells stay "not computed".

Three files, under ``<results_dir>/opf`` (each written atomically by
:func:`evgrid.core.outputs.write_csv`, all three only after every solve has finished, so a failed
or interrupted run leaves the earlier files as they were):

``days.csv``
    one row per case and period: ``profiles``, ``scenario``, ``sample`` (empty for the no-EV
    day), then the :func:`~evgrid.papers.villanueva2025.opf.solve_day` columns without the
    timing (:data:`DAYS_COLUMNS`), among them every bus's voltage magnitude ``vm_bus<k>_pu``,
    which the IEEE 13-node feeder analysis (:mod:`.feeder13`) reads.
``metrics.csv``
    one row per case: :func:`~evgrid.papers.villanueva2025.opf.day_metrics` and the EV energy
    (:data:`METRICS_COLUMNS`). :func:`table3_values` and :func:`table5_values` turn it into the
    paper's Tables 3 and 5.
``caps.csv``
    one row per period and load bus: our cap and the authors' (:data:`CAPS_COLUMNS`).

Powers are rounded to 1e-6 MW before writing (PIPS solves to 1e-9 p.u. = 1e-7 MW; a residual
of 1e-10 MW is written as 0), then to :data:`evgrid.core.outputs.SIGNIFICANT_DIGITS` significant
digits. No time is written: a re-run is byte-identical. Times are printed.

Reading them back (notebook 05): :func:`read_study` loads the three files; :func:`bus_loads`,
:func:`negative_net_load_periods` and :func:`copy_previous_periods` redo what the authors' OPF did
with a period it could not solve (it copied the previous period's result; notes §4, Table 3
checks); :func:`text_values` gives the OPF numbers quoted in the paper's text.

CLI::

    python -m evgrid.papers.villanueva2025.opf_study [--params params.yaml] [--no-progress] [--caps-only | --no-caps]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evgrid.core.config import load_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks
from evgrid.core.paths import output_path, repo_path
from evgrid.networks import load_ieee14
from evgrid.papers.villanueva2025 import opf
from evgrid.papers.villanueva2025.authors import LOAD_BUSES, SAMPLES, SCENARIOS

__all__ = [
    "CAPS_COLUMNS",
    "CASE_COLUMNS",
    "DAYS_COLUMNS",
    "METRICS_COLUMNS",
    "PROFILE_SETS",
    "TABLE_ROWS",
    "StudyCase",
    "bus_loads",
    "caps_table",
    "copy_previous_periods",
    "days_table",
    "metrics_table",
    "negative_net_load_periods",
    "read_profile_set",
    "read_study",
    "run_study",
    "solve_task",
    "study_cases",
    "table3_values",
    "table5_values",
    "text_values",
]

#: Where a case's P^EM comes from: none (no EVs), the authors' OPF inputs, the authors' DEVCM
#: inputs re-solved here, our own Monte Carlo and DEVCM.
PROFILE_SETS: tuple[str, ...] = ("none", "authors_paper", "authors_resolved", "own")
#: The columns that name a case.
CASE_COLUMNS: tuple[str, ...] = ("profiles", "scenario", "sample")
#: Columns of ``days.csv``: the case, then every solve_day column but the timing.
DAYS_COLUMNS: tuple[str, ...] = CASE_COLUMNS + tuple(c for c in opf.DAY_COLUMNS if c != "solve_s")
#: Columns of a ``days.csv`` written before the per-bus voltages (``vm_bus<k>_pu``) were added;
#: :func:`read_study` still reads one, with those columns NaN.
_DAYS_COLUMNS_WITHOUT_BUS_VM: tuple[str, ...] = tuple(c for c in DAYS_COLUMNS if c not in opf.VM_BUS_COLUMNS)
#: The day_metrics keys, in order (written to ``metrics.csv`` after the case and ``ev_energy_mwh``).
_METRIC_KEYS: tuple[str, ...] = (
    "energy_demand_mwh", "peak_load_mw", "load_factor", "energy_supplied_mwh", "losses_mwh", "losses_true_mwh",
    "nse_mwh", "max_nsp_mw", "nsp_bus", "shed_mwh", "failed_periods",
)
#: Columns of ``metrics.csv``.
METRICS_COLUMNS: tuple[str, ...] = CASE_COLUMNS + ("ev_energy_mwh",) + _METRIC_KEYS
#: Columns of ``caps.csv``: the cap OPF's cap and the authors' (``authors_cap_mw``), the bus's
#: no-EV load, and the period's network losses and status in the cap OPF.
CAPS_COLUMNS: tuple[str, ...] = ("t", "bus", "pd_mw", "cap_mw", "authors_cap_mw", "losses_mw", "converged")
#: The rows of Tables 3 and 5 (labels of ``data/paper_values/villanueva2025.yaml``) and the metric of each.
TABLE_ROWS: dict[str, str] = {
    "Energy demand": "energy_demand_mwh",
    "Peak load": "peak_load_mw",
    "Load factor": "load_factor",
    "Power supplied": "energy_supplied_mwh",
    "Losses": "losses_mwh",
    "NSE": "nse_mwh",
    "Maximum NSP": "max_nsp_mw",
    "NSP bus": "nsp_bus",
}
#: The paper's column of each scenario (Tables 3 and 5) and of the day without EVs.
_SCENARIO_COLUMNS = {"Sc1": "Scenario 1", "Sc2": "Scenario 2", "Sc3": "Scenario 3", "Sc3-CR": "Scenario 3 CR"}
_NO_EV_COLUMN = "Without EVs"
#: The paper prints the NSP bus only in these columns (the other cells of the row are blank).
_NSP_BUS_COLUMNS = {"Table 3": ("Sc3",), "Table 5": ("Sc3-CR",)}
#: Decimals kept for powers and energies (MW, Mvar, MWh) and voltages (p.u.) before the significant digits.
_DECIMALS = 6
#: Where each profile set's files lie under the results folder, and the scenarios each can hold.
_PROFILE_FILES = {"authors_resolved": ("authors_runs", SCENARIOS), "own": ("own_runs", SCENARIOS)}
_PRICING = "corrected"


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StudyCase:
    """One day of the study: where its profiles come from, and P^EM in the long form solve_day takes.

    ``pem_mw`` (columns ``bus``, ``t``, ``pem_mw``) is None for the day without EVs, whose
    ``scenario`` and ``sample`` are empty.
    """

    profiles: str
    scenario: str = ""
    sample: str = ""
    pem_mw: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.profiles not in PROFILE_SETS:
            raise ValueError(f"profiles = {self.profiles!r}: allowed {list(PROFILE_SETS)}")
        if (self.profiles == "none") != (self.pem_mw is None):
            raise ValueError(f"{self.label}: the day without EVs, and only it, has no P^EM")

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.profiles, self.scenario, self.sample) if p)


def _profile_problem(rows: pd.DataFrame) -> str:
    """Why one sample's profile cannot be solved ('' if it can): every load bus x 48 periods, finite."""
    n = opf.N_PERIODS
    missing = sorted(set(LOAD_BUSES) - set(rows["bus"].astype(int)))
    if missing:
        return f"no profile for bus {missing}"
    if rows.duplicated(["bus", "t"]).any() or len(rows) != len(LOAD_BUSES) * n:
        return f"{len(rows)} rows, not one per load bus and period ({len(LOAD_BUSES)} x {n})"
    bad = rows.loc[~np.isfinite(rows["pem_mw"].to_numpy(dtype=float)), "bus"]
    if len(bad):
        return f"P^EM is not finite at bus {sorted(set(bad.astype(int)))} (a failed DEVCM solve?)"
    return ""


def read_profile_set(results_dir: str | Path, profiles: str) -> tuple[list[StudyCase], list[str]]:
    """The cases of one profile set the stages wrote (``authors_resolved`` or ``own``), corrected pricing.

    Reads ``<results_dir>/authors_runs/<scenario>_profiles.csv`` (Sc1, Sc2, Sc3, Sc3-CR) or
    ``<results_dir>/own_runs/<scenario>_profiles.csv`` (Sc1, Sc2, Sc3, and Sc3-CR under the cap OPF's
    caps) where they exist (columns
    ``scenario, sample, bus, pricing, t, p_em_mw``).

    Returns
    -------
    cases : list of StudyCase
        One per (scenario, sample) found with a complete profile, in scenario then sample order.
    skipped : list of str
        One line per (scenario, sample) found but incomplete, saying why.
    """
    if profiles not in _PROFILE_FILES:
        raise ValueError(f"profiles = {profiles!r}: allowed {list(_PROFILE_FILES)}")
    folder, scenarios = _PROFILE_FILES[profiles]
    cases, skipped = [], []
    for scenario in scenarios:
        path = Path(results_dir) / folder / f"{scenario}_profiles.csv"
        if not path.exists():
            continue
        table = pd.read_csv(path)
        table = table[(table["pricing"] == _PRICING) & (table["scenario"] == scenario)]
        for sample in SAMPLES:
            rows = table[table["sample"] == sample]
            if rows.empty:
                continue
            rows = rows.rename(columns={"p_em_mw": "pem_mw"})[["bus", "t", "pem_mw"]].reset_index(drop=True)
            problem = _profile_problem(rows)
            if problem:
                skipped.append(f"{profiles} {scenario} {sample} ({path}): {problem}")
                continue
            cases.append(StudyCase(profiles, scenario, sample, rows))
    return cases, skipped


def study_cases(results_dir: str | Path) -> tuple[list[StudyCase], list[str]]:
    """Every day of the study, in the order written: no EVs, the authors' OPF inputs, re-solved, own.

    ``results_dir`` is where the DEVCM stages' profile files lie. Returns the cases and the
    skipped samples (see :func:`read_profile_set`).
    """
    cases = [StudyCase("none")]
    for scenario in SCENARIOS:
        for sample in SAMPLES:
            day = opf.authors_day(scenario, sample)
            cases.append(StudyCase("authors_paper", scenario, sample, day.pem_mw))
    skipped: list[str] = []
    for profiles in ("authors_resolved", "own"):
        found, missed = read_profile_set(results_dir, profiles)
        cases += found
        skipped += missed
    return cases, skipped


# --------------------------------------------------------------------------------------------
# solving
# --------------------------------------------------------------------------------------------


#: One task: ("day", case, options, load factor) or ("caps", None, options, load factor).
_Task = tuple[str, StudyCase | None, opf.OpfOptions, tuple[float, ...] | None]


def solve_task(task: _Task) -> pd.DataFrame:
    """One :func:`map_tasks` task: ``("day", case, ...)`` -> solve_day, ``("caps", None, ...)`` -> solve_caps.

    The task's last two items are the OPF options and the load factor (None: the dataset's).
    """
    kind, case, options, load_factor = task
    if kind == "caps":
        return opf.solve_caps(options, load_factor)
    if kind == "day" and case is not None:
        return opf.solve_day(case.pem_mw, options, load_factor=load_factor)
    raise ValueError(f"unknown task {kind!r}: allowed ('day', case) or ('caps', None)")


def _rounded(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` rounded to :data:`_DECIMALS` decimals (and -0.0 written as 0)."""
    out = frame.copy()
    for column in columns:
        out[column] = out[column].astype(float).round(_DECIMALS) + 0.0
    return out


def days_table(cases: Sequence[StudyCase], days: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``days.csv``: each case's :func:`~evgrid.papers.villanueva2025.opf.solve_day` rows, without timings."""
    parts = []
    for case, day in zip(cases, days, strict=True):
        frame = day.drop(columns="solve_s")
        frame.insert(0, "sample", case.sample)
        frame.insert(0, "scenario", case.scenario)
        frame.insert(0, "profiles", case.profiles)
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True)[list(DAYS_COLUMNS)]
    powers = [c for c in table.columns if c.endswith(("_mw", "_mvar", "_pu"))]
    return _rounded(table, powers)


def metrics_table(cases: Sequence[StudyCase], days: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``metrics.csv``: one row per case, ``ev_energy_mwh`` = sum_t P^EM_t Delta t and :func:`opf.day_metrics`.

    The metrics (Delta t = 0.5 h; notes §4, Table 3 checks): ``energy_demand_mwh`` = sum_t Pd_t
    Delta t, load incl. EVs; ``peak_load_mw`` = max_t Pd_t; ``load_factor`` = demand / (24 h x
    peak), the paper's "power factor" row; ``energy_supplied_mwh`` = sum_t (P_slack + P_gen2)
    Delta t; ``losses_mwh`` = supplied - demand, the paper's "losses" (NSP excluded);
    ``losses_true_mwh`` = sum_t (generation + NSP + shed - load) Delta t; ``nse_mwh`` = sum_t NSP_t
    Delta t; ``max_nsp_mw``; ``nsp_bus`` (0: none); ``shed_mwh`` (the guard); ``failed_periods``
    (any makes the sums NaN: failures are reported, not filled).
    """
    rows = []
    for case, day in zip(cases, days, strict=True):
        metrics = opf.day_metrics(day)
        rows.append({"profiles": case.profiles, "scenario": case.scenario, "sample": case.sample,
                     "ev_energy_mwh": float(day["pem_mw"].sum() * opf.DT_H),
                     **{key: metrics[key] for key in _METRIC_KEYS}})
    table = pd.DataFrame(rows)[list(METRICS_COLUMNS)]
    return _rounded(table, [c for c in table.columns if c.endswith(("_mw", "_mwh"))])


def caps_table(ours: pd.DataFrame, authors: pd.DataFrame) -> pd.DataFrame:
    """``caps.csv``: our caps (:func:`opf.solve_caps`) beside the authors' (:func:`opf.authors_caps`), by (t, bus)."""
    theirs = authors[["t", "bus", "cap_mw"]].rename(columns={"cap_mw": "authors_cap_mw"})
    table = ours.merge(theirs, on=["t", "bus"], how="left", validate="one_to_one")
    table = table.sort_values(["t", "bus"], kind="stable").reset_index(drop=True)[list(CAPS_COLUMNS)]
    return _rounded(table, ["pd_mw", "cap_mw", "authors_cap_mw", "losses_mw"])


def _print(metrics: pd.DataFrame, caps: pd.DataFrame | None, skipped: Sequence[str], seconds: float) -> None:
    for _, r in metrics.iterrows():
        print(f"{r['profiles']:>16} {r['scenario']:>6} {r['sample']:>3}  EV {r['ev_energy_mwh']:8.2f} MWh  demand "
              f"{r['energy_demand_mwh']:8.2f}  peak {r['peak_load_mw']:7.2f}  supplied {r['energy_supplied_mwh']:8.2f}  "
              f"losses {r['losses_mwh']:7.2f}  NSE {r['nse_mwh']:6.2f}  max NSP {r['max_nsp_mw']:5.2f}  "
              f"failed {int(r['failed_periods'])}", flush=True)
    if caps is not None:
        diff = (caps["cap_mw"] - caps["authors_cap_mw"]).abs()
        per_t = caps.groupby("t")[["cap_mw", "authors_cap_mw"]].sum()
        print(f"caps: {int((~caps['converged'].astype(bool)).sum() // len(LOAD_BUSES))} failed periods; max |ours - "
              f"authors'| {diff.max():.3f} MW per bus, {(per_t['cap_mw'] - per_t['authors_cap_mw']).abs().max():.3f} "
              "MW summed over the buses", flush=True)
    for line in skipped:
        print(f"skipped: {line}", flush=True)
    print(f"OPF study: {len(metrics)} days{' and the caps' if caps is not None else ''} in {seconds:.0f} s wall",
          flush=True)


def run_study(params_file: str = "params.yaml", *, progress: bool = True,
              parallel: ParallelOptions | Mapping[str, Any] | None = None,
              cases: Sequence[StudyCase] | None = None, options: opf.OpfOptions | None = None,
              load_factor: Sequence[float] | None = None, caps: bool = True,
              days: bool = True) -> dict[str, pd.DataFrame]:
    """Solve the study's days and the caps; write ``days.csv``, ``metrics.csv``, ``caps.csv``.

    The pipeline runs the caps alone first (``days=False``: the capped DEVCM runs read them),
    then the days (``caps=False``), so that each stage writes only its own files.

    Parameters
    ----------
    params_file : str
        Its ``villanueva2025.results_dir`` names where the DEVCM profiles are read (under the
        repository) and where ``opf/`` is written (under :func:`evgrid.core.paths.output_path`).
    progress : bool
    parallel : ParallelOptions or mapping, optional
        Default :func:`evgrid.core.parallel.load_parallel` (``params.yaml``'s ``parallel``).
    cases : sequence of StudyCase, optional
        Default :func:`study_cases` (every day of the study).
    options : OpfOptions, optional
        Default the paper's.
    load_factor : sequence of float, optional
        LF_t of every day; default the dataset's (:func:`opf.read_load_factor`).
    caps : bool
        Solve the cap OPF and write ``caps.csv``.
    days : bool
        Solve the days and write ``days.csv`` and ``metrics.csv``.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``days`` and ``metrics`` (with ``days``) and ``caps`` (with ``caps``), as written.

    Raises
    ------
    evgrid.core.parallel.TaskFailedError
        If a solve raised; nothing is written then.
    """
    params = load_section("villanueva2025", params_file)
    if not (days or caps):
        raise ValueError("run_study: nothing to solve (days=False and caps=False)")
    options = options or opf.OpfOptions()
    skipped: list[str] = []
    if not days:
        cases = []
    elif cases is None:
        cases, skipped = study_cases(repo_path(params.results_dir))
    cases = list(cases)
    labels = [case.label for case in cases]
    if len(set(labels)) != len(labels):
        raise ValueError(f"case labels must be unique: {labels}")
    lf = None if load_factor is None else tuple(float(x) for x in load_factor)
    tasks: list[_Task] = [("day", case, options, lf) for case in cases]
    if caps:
        tasks.append(("caps", None, options, lf))
    tick = time.perf_counter()
    results = map_tasks(solve_task, tasks, options=load_parallel(params_file) if parallel is None else parallel,
                        desc="CEVCM OPF days", progress=progress)
    solved = results[:len(cases)]
    out = {"days": days_table(cases, solved), "metrics": metrics_table(cases, solved)} if days else {}
    if caps:
        out["caps"] = caps_table(results[-1], opf.authors_caps())
    _print(out.get("metrics", pd.DataFrame(columns=METRICS_COLUMNS)), out.get("caps"), skipped,
           time.perf_counter() - tick)
    folder = output_path(params.results_dir, "opf")
    for name, table in out.items():
        write_csv(table, folder / f"{name}.csv")
    return out


# --------------------------------------------------------------------------------------------
# the paper's tables
# --------------------------------------------------------------------------------------------


def _case_metrics(metrics: pd.DataFrame, profiles: str, scenario: str, sample: str) -> pd.Series | None:
    scen = metrics["scenario"].fillna("").astype(str)
    samp = metrics["sample"].fillna("").astype(str)
    hit = metrics[(metrics["profiles"] == profiles) & (scen == scenario) & (samp == sample)]
    if len(hit) > 1:
        raise ValueError(f"metrics: {profiles} {scenario} {sample} appears {len(hit)} times")
    return hit.iloc[0] if len(hit) else None


def _table_values(metrics: pd.DataFrame, table: str, scenarios: Sequence[str], profiles: str) -> pd.DataFrame:
    if profiles not in PROFILE_SETS or profiles == "none":
        raise ValueError(f"profiles = {profiles!r}: allowed {[p for p in PROFILE_SETS if p != 'none']}")
    columns = [(_NO_EV_COLUMN, "none", "", "")]
    columns += [(f"{_SCENARIO_COLUMNS[sc]} {sample}", profiles, sc, sample) for sc in scenarios for sample in SAMPLES]
    records = []
    for label, source, scenario, sample in columns:
        row = _case_metrics(metrics, source, scenario, sample)
        if row is None:
            continue  # not solved (no profile file): the cells stay "not computed"
        for name, key in TABLE_ROWS.items():
            if key == "nsp_bus" and scenario not in _NSP_BUS_COLUMNS[table]:
                continue  # the paper leaves this cell blank
            records.append((table, name, label, float(row[key])))
    return pd.DataFrame(records, columns=["table", "row", "column", "computed"])


def table3_values(metrics: pd.DataFrame, profiles: str = "authors_paper") -> pd.DataFrame:
    """Table 3 of the paper (centralized OPF, Sc1-Sc3, min and max) from ``metrics.csv``, for one profile set.

    Rows ``(table, row, column, computed)`` keyed like ``data/paper_values/villanueva2025.yaml``:
    the column "Without EVs" is the no-EV day, "Scenario n min/max" the day of scenario Sc<n>'s
    sample in ``profiles`` (``authors_paper``: the authors' own OPF inputs, which the paper's
    table was computed from; ``authors_resolved``; ``own``). A column whose day is not in
    ``metrics`` is left out. The rows and their definitions (Delta t = 0.5 h):

    * Energy demand [MWh] = sum_t Pd_t Delta t, the load including the EVs (Eq. 43);
    * Peak load [MW] = max_t Pd_t;
    * Load factor = demand / (24 h x peak): the paper's "power factor" row;
    * Power supplied [MWh] = sum_t (P_slack + P_gen2) Delta t, generation at buses 1 and 2 only;
    * Losses [MWh] = supplied - demand, as the paper reports them (the NSP excluded, so that with
      NSP they are the network losses less the NSE);
    * NSE [MWh] = sum_t NSP_t Delta t (the paper's "ENS"); Maximum NSP [MW] = max_t NSP_t;
    * NSP bus = the bus that supplied the NSP, 0 if none (the paper's "NSP Slash [#]"), given only
      where the paper prints it (Scenario 3).
    """
    return _table_values(metrics, "Table 3", ("Sc1", "Sc2", "Sc3"), profiles)


def table5_values(metrics: pd.DataFrame, profiles: str = "authors_paper") -> pd.DataFrame:
    """Table 5 of the paper (the CEVCM-managed OPF, Sc3-CR, min and max) from ``metrics.csv``.

    As :func:`table3_values`, with the columns "Without EVs", "Scenario 3 CR min" and "Scenario
    3 CR max" (the day of Sc3-CR's profiles in ``profiles``; ``own`` has none). The paper's
    "Maximum load" row is keyed "Peak load" and its "bar" row "NSP bus", as in the values file.
    """
    return _table_values(metrics, "Table 5", ("Sc3-CR",), profiles)


def text_values(metrics: pd.DataFrame, days: pd.DataFrame, profiles: str = "authors_paper") -> pd.DataFrame:
    """The OPF numbers of the paper's text (Secs. 3.2 and 3.2.1) from ``metrics.csv`` and ``days.csv``.

    Rows ``(table, row, column, computed)`` keyed like ``data/paper_values/villanueva2025.yaml``
    (table ``"Text"``), for the days of ``profiles``; a row whose day is missing is left out:

    * "Loss increase, Scenario 3 vs BAU" (%): Sc3 min losses / no-EV losses - 1 (the paper's
      note: "up to 7.79 %"; losses as in Table 3, supplied - demand);
    * "NSE instances, Scenario 3" (-): periods of Sc3 min with NSP > 0 (``nsp_bus`` != 0);
    * "NSE DEVCM, Scenario 3" (MWh): Sc3 min NSE;
    * "Loss increase, Scenario 3 CR min/max" (%): Sc3-CR losses / no-EV losses - 1.
    """
    none = _case_metrics(metrics, "none", "", "")
    records: list[tuple[str, str, str, float]] = []

    def increase(case: pd.Series | None) -> float | None:
        if case is None or none is None:
            return None
        return 100.0 * (float(case["losses_mwh"]) / float(none["losses_mwh"]) - 1.0)

    sc3 = _case_metrics(metrics, profiles, "Sc3", "min")
    for row, column, value in (("Loss increase, Scenario 3 vs BAU", "Sec. 3.2", increase(sc3)),
                               ("NSE DEVCM, Scenario 3", "Sec. 3.2", None if sc3 is None else float(sc3["nse_mwh"])),
                               ("Loss increase, Scenario 3 CR min", "Sec. 3.2.1",
                                increase(_case_metrics(metrics, profiles, "Sc3-CR", "min"))),
                               ("Loss increase, Scenario 3 CR max", "Sec. 3.2.1",
                                increase(_case_metrics(metrics, profiles, "Sc3-CR", "max")))):
        if value is not None:
            records.append(("Text", row, column, value))
    day = _case_days(days, profiles, "Sc3", "min")
    if len(day):
        records.insert(1, ("Text", "NSE instances, Scenario 3", "Sec. 3.2",
                           float((day["nsp_bus"].fillna(0).astype(int) != 0).sum())))
    return pd.DataFrame(records, columns=["table", "row", "column", "computed"])


# --------------------------------------------------------------------------------------------
# reading the files back, and the authors' copied periods
# --------------------------------------------------------------------------------------------


def read_study(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The three files :func:`run_study` wrote in ``folder``, read back as it wrote them.

    The case columns ``profiles``, ``scenario``, ``sample`` (empty for the no-EV day) and the
    text columns ``init``, ``error`` are strings ('' where empty), ``converged`` is boolean and
    ``nsp_bus`` an integer (0: no NSP).

    A ``days.csv`` written before the per-bus voltages were added to the study reads with its
    ``vm_bus<k>_pu`` columns NaN.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``days``, ``metrics``, ``caps`` (columns :data:`DAYS_COLUMNS`, :data:`METRICS_COLUMNS`,
        :data:`CAPS_COLUMNS`).

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file's columns are not the study's.
    """
    folder = Path(folder)
    text = {c: str for c in (*CASE_COLUMNS, "init", "error")}
    out = {}
    for name, columns in (("days", DAYS_COLUMNS), ("metrics", METRICS_COLUMNS), ("caps", CAPS_COLUMNS)):
        path = folder / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run python -m evgrid.papers.villanueva2025.opf_study")
        table = pd.read_csv(path, dtype={c: t for c, t in text.items() if c in columns})
        if name == "days" and tuple(table.columns) == _DAYS_COLUMNS_WITHOUT_BUS_VM:
            table = table.reindex(columns=list(columns))  # written before vm_bus<k>_pu: NaN
        if tuple(table.columns) != columns:
            raise ValueError(f"{path}: columns {list(table.columns)}, expected {list(columns)}")
        for column in text:
            if column in table:
                table[column] = table[column].fillna("")
        if "converged" in table:
            table["converged"] = table["converged"].astype(str).str.lower().eq("true")
        if name == "days":
            table["nsp_bus"] = table["nsp_bus"].astype("Int64")
        out[name] = table
    return out


@lru_cache(maxsize=1)
def _base_loads_mw() -> dict[int, float]:
    """Pd_k (MW) by IEEE load bus, from the network the OPF is built on (:func:`opf.build_opf_net`)."""
    # loading the network runs pandapower, which logs a harmless warning (generator voltage set
    # points above the buses' 1.05 p.u. limit, later reset by the OPF builder) that would
    # otherwise reach a notebook's stderr
    logger = logging.getLogger("pandapower")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        net = load_ieee14(variant="villanueva2025").net
    finally:
        logger.setLevel(level)
    number = {int(idx): int(name) for idx, name in net.bus["name"].items()}
    loads = {number[int(b)]: float(p) for b, p in zip(net.load["bus"], net.load["p_mw"], strict=True)}
    if sorted(loads) != sorted(LOAD_BUSES):
        raise ValueError(f"expected one load at each of {list(LOAD_BUSES)}, found buses {sorted(loads)}")
    return loads


def _case_days(days: pd.DataFrame, profiles: str, scenario: str, sample: str) -> pd.DataFrame:
    """One case's rows of ``days.csv``, sorted by t."""
    scen = days["scenario"].fillna("").astype(str)
    samp = days["sample"].fillna("").astype(str)
    rows = days[(days["profiles"] == profiles) & (scen == scenario) & (samp == sample)]
    return rows.sort_values("t").reset_index(drop=True)


def bus_loads(pem_mw: pd.DataFrame | None = None, load_factor: Sequence[float] | None = None) -> pd.DataFrame:
    """Every load bus's load per period, Eq. (43): Pd_{k,t} = Pd_k LF_t + P^EM_{k,t} (MW).

    Parameters
    ----------
    pem_mw : pandas.DataFrame, optional
        P^EM (MW) in the long form ``bus``, ``t``, ``pem_mw`` (e.g. ``opf.authors_day(...).pem_mw``);
        None: no EVs. Buses or periods left out have none.
    load_factor : sequence of 48 floats, optional
        LF_t; default the dataset's (:func:`opf.read_load_factor`).

    Returns
    -------
    pandas.DataFrame
        One row per period and load bus: ``t``, ``bus``, ``pd_mw`` (Pd_k LF_t, the network data's
        load), ``pem_mw``, ``net_mw`` = their sum (negative: the bus injects, V2G above its load).
    """
    lf = opf.read_load_factor() if load_factor is None else np.asarray(load_factor, dtype=float)
    if lf.shape != (opf.N_PERIODS,):
        raise ValueError(f"load_factor has shape {lf.shape}: it must hold {opf.N_PERIODS} values")
    base = _base_loads_mw()
    periods = np.arange(1, opf.N_PERIODS + 1)
    table = pd.DataFrame([(t, bus, float(base[bus]) * float(lf[t - 1])) for t in periods for bus in LOAD_BUSES],
                         columns=["t", "bus", "pd_mw"])
    pem = (pd.DataFrame(columns=["bus", "t", "pem_mw"]) if pem_mw is None
           else pem_mw[["bus", "t", "pem_mw"]].astype({"bus": int, "t": int, "pem_mw": float}))
    if pem.duplicated(["bus", "t"]).any():
        raise ValueError("pem_mw: a (bus, t) appears more than once (filter one scenario and sample first)")
    table = table.merge(pem, on=["t", "bus"], how="left")
    table["pem_mw"] = table["pem_mw"].astype(float).fillna(0.0)
    table["net_mw"] = table["pd_mw"] + table["pem_mw"]
    return table


def negative_net_load_periods(pem_mw: pd.DataFrame, load_factor: Sequence[float] | None = None) -> list[int]:
    """The periods t in which some load bus's net load Pd_k LF_t + P^EM_{k,t} is negative (MW < 0).

    These are the periods the authors' OPF could not solve and filled with the previous period's
    result (notes §4: a bus injecting more than its load made their NLP fail); the periods they
    copied (Sc2 max t = 23, 24, 35, 40; Sc3 min 23, 24, 39; Sc3 max 23; Sc3-CR min 3, 15, 19, 25,
    31; max 39, 41) are exactly these.
    """
    loads = bus_loads(pem_mw, load_factor)
    return sorted(int(t) for t in loads.loc[loads["net_mw"] < 0, "t"].unique())


def copy_previous_periods(day: pd.DataFrame, periods: Sequence[int]) -> pd.DataFrame:
    """``day`` as the authors' OPF reported it: each period in ``periods`` replaced by the period before.

    The authors filled a period their solver failed on with the previous period's result, load
    included (notes §4, Table 3 checks). Periods are replaced in increasing order, so a run of
    failed periods repeats the last solved one. Everything but ``t`` is copied; pass the result
    to :func:`opf.day_metrics` to get the day's Table 3 rows as the authors computed them.

    Parameters
    ----------
    day : pandas.DataFrame
        One day's rows (a :func:`opf.solve_day` result, or one case of ``days.csv``), with ``t``.
    periods : sequence of int
        The periods to replace, each in 2..48 and in ``day``.

    Raises
    ------
    ValueError
        If a period is 1 (it has no previous period) or not in ``day``.
    """
    out = day.sort_values("t").reset_index(drop=True)
    position = {int(t): i for i, t in enumerate(out["t"])}
    columns = [c for c in out.columns if c != "t"]
    for t in sorted({int(p) for p in periods}):
        if t not in position or t - 1 not in position:
            raise ValueError(f"periods: t = {t} cannot be copied from t = {t - 1} "
                             f"(periods {min(position)}..{max(position)} in the day)")
        out.loc[position[t], columns] = out.loc[position[t - 1], columns].to_numpy()
    return out.astype(day.dtypes.to_dict())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.papers.villanueva2025.opf_study",
                                     description="Solve the CEVCM OPF on every set of EV profiles, and the "
                                     "DNO's caps; write days.csv, metrics.csv and caps.csv.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--no-progress", action="store_true")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--caps-only", action="store_true", help="only the cap OPF: caps.csv")
    only.add_argument("--no-caps", action="store_true", help="only the days: days.csv and metrics.csv")
    args = parser.parse_args(argv)
    run_study(args.params, progress=not args.no_progress, caps=not args.no_caps, days=not args.caps_only)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
