"""Villanueva-Machado et al. (2025), part 1: what the pipeline computes, keyed like the paper's values.

Every function returns rows ``(table, row, column, computed)`` with the keys of
``data/paper_values/villanueva2025.yaml``; notebook 04 joins them with the paper's values
(:func:`evgrid.core.compare.compare_with_paper`) and writes ``results/villanueva2025/comparison.csv``
for the reproduction report. Nothing here solves anything: the inputs are the stages' result
files and the Monte Carlo.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from evgrid.papers.villanueva2025 import authors, dataset

__all__ = ["SCENARIO_COLUMNS", "table1_values", "table2_values", "text_values", "runs_table"]

#: The paper's column name of each of the authors' scenarios (Tables 2 and 4).
SCENARIO_COLUMNS = {"Sc1": "Scenario 1", "Sc2": "Scenario 2", "Sc3": "Scenario 3", "Sc3-CR": "Scenario 3 CR"}


def _rows(records: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=["table", "row", "column", "computed"])


def table1_values() -> pd.DataFrame:
    """Table 1 recomputed from the authors' bus-assignment files (weighted EVs per bus, Dep = from, Arr = to)."""
    t1 = dataset.table1_from_assignment()
    return _rows([("Table 1", f"Bus {bus}", str(col), float(t1.loc[bus, col]))
                  for bus in t1.index for col in t1.columns])


def runs_table(folder, which: str = "authors_runs", scenarios=authors.SCENARIOS) -> pd.DataFrame:
    """The stages' ``<scenario>_runs.csv`` files of ``which`` (``authors_runs`` or ``own_runs``) that exist."""
    from pathlib import Path

    parts = []
    for sc in scenarios:
        path = Path(folder) / which / f"{sc}_runs.csv"
        if path.exists():
            parts.append(pd.read_csv(path))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def table2_values(runs: pd.DataFrame, pricing: str = "corrected") -> pd.DataFrame:
    """Tables 2 and 4: daily energy traded per aggregator, sum_t P^EM_t dt (MWh), from the re-solved authors' runs.

    Sc1-Sc3 fill Table 2, Sc3-CR (the capped runs on the authors' caps) Table 4; runs that
    failed are left out (their cells stay "not computed").
    """
    part = runs[(runs["pricing"] == pricing) & runs["daily_energy_mwh"].notna()]
    rows = []
    for _, r in part.iterrows():
        table = "Table 4" if r["scenario"] == "Sc3-CR" else "Table 2"
        rows.append((table, f"Bus {int(r['bus'])}", f"{SCENARIO_COLUMNS[r['scenario']]} {r['sample']}",
                     float(r["daily_energy_mwh"])))
    return _rows(rows)


def text_values(params, scenarios: Mapping[int, object] | None = None) -> pd.DataFrame:
    """The settings the text states, as the pipeline uses them (the Monte Carlo's and the model's)."""
    mcs, dev = params.mcs, params.devcm
    rows = []
    for i, (n_evs, n_samples) in enumerate(zip(mcs.n_evs, mcs.n_samples, strict=True), start=1):
        evs = n_evs
        if scenarios is not None:
            sc = scenarios[i]
            evs = float(np.asarray(sc.chosen("min")[1]).sum())
        rows += [("Text", f"Scenario {i} EVs", "Sec. 2.1", float(evs)),
                 ("Text", f"Scenario {i} MCS samples", "Sec. 2.2.2", float(n_samples))]
    rows.append(("Text", "MCS micro-evaluations", "Sec. 2.2.2",
                 float(sum(a * b for a, b in zip(mcs.n_evs, mcs.n_samples, strict=True)))))
    # The normals the authors' code sampled from (slot code k covers [(k-1)/2, k/2) h)
    fit = dataset.fit_time_normals()
    for key, label in (("departure", "Departure"), ("arrival", "Arrival")):
        mu, sd = fit[key]
        rows += [("Text", f"{label} time mean", "Sec. 2.3", (mu - 1.0) / 2.0),
                 ("Text", f"{label} time sd", "Sec. 2.3", sd / 2.0)]
    lo, hi = mcs.consumption_kwh_per_km
    rows += [("Text", "Energy consumption min", "Sec. 2.3.1", lo), ("Text", "Energy consumption max", "Sec. 2.3.1", hi),
             ("Text", "Battery capacity", "Sec. 2.3.1", dev.battery_kwh),
             ("Text", "Maximum charging power P_max", "Sec. 2.3.1", dev.charger_kw),
             ("Text", "Charging efficiency", "Sec. 2.3.1", dev.charge_efficiency),
             ("Text", "Discharging efficiency", "Sec. 2.3.1", dev.discharge_efficiency),
             ("Text", "SoC lower limit", "Sec. 2.3.1", 100 * dev.soc_min),
             ("Text", "SoC upper limit", "Sec. 2.3.1", 100 * dev.soc_max)]
    # Battery cost and degradation slope: their range in the authors' inputs (all 88 runs)
    veh = pd.concat([pd.DataFrame({"c": authors.load_run(r).battery_cost_usd_per_kwh,
                                   "m": authors.load_run(r).degradation_slope}) for r in authors.run_ids()])
    rows += [("Text", "Battery cost min", "Sec. 2.3.1", float(veh["c"].min())),
             ("Text", "Battery cost max", "Sec. 2.3.1", float(veh["c"].max())),
             ("Text", "Battery degradation rate m_v min", "Sec. 2.3.1", float(veh["m"].min())),
             ("Text", "Battery degradation rate m_v max", "Sec. 2.3.1", float(veh["m"].max()))]
    return _rows(rows)
