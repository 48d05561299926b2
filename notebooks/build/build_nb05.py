"""Write notebooks/05_villanueva2025_centralized.ipynb from its cells (run once; DVC then executes it).

Kept beside the notebook so that its narrative and code can be edited as text and regenerated:
``.venv/bin/python notebooks/build/build_nb05.py``. The executed notebook is the DVC stage's output.
It reads the OPF study's files (``python -m evgrid.papers.villanueva2025.opf_study``) and the IEEE
13-node study's (``python -m evgrid.papers.villanueva2025.feeder13``), and writes
only ``results/villanueva2025/comparison_opf.csv``, ``results/villanueva2025/metrics_opf.json`` and
``figures/05_*.png``, so that it never overwrites part 1's outputs.
"""

from __future__ import annotations

from nbcells import code, md, parameters, write_notebook

SECTION = "villanueva2025"


CELLS = [
    md(r"""
# 05 · Villanueva-Machado et al. (2025), part 2: the centralized AC OPF and the DNO's caps

C. W. Villanueva-Machado, J. E. Luyo, A. Ríos-Villacorta, "Operative analysis of controlled charging
management for electric vehicles: centralized and decentralized coordination", *Ingenius* 34 (2025).
Part 1 (notebook 04) solved the **decentralized** model: one aggregator MILP per load bus, whose output
is the traded power P^EM_{k,t} of each bus k and half hour t. Part 2 is the **centralized** model
(CEVCM, Eqs. 43-55): the network operator (DNO) adds every aggregator's profile to its bus load and
solves, for each of the 48 half hours separately, an AC optimal power flow (OPF) on the paper's
IEEE 14-bus variant. The OPF minimises the slack generation plus a penalty on the non-supplied power
(NSP). Tables 3 and 5 summarise these OPFs. For the coordinated scenario (Sc3-CR) the DNO also
computes a **cap** on each bus's EV load (Eqs. 54-55); the aggregators then re-solve within it.

What the close reading of the paper and of the authors' repository found
(`shared/reference/villanueva2025_notes.md`, §3-§4):

* **The energies in Tables 3 and 5 are exact.** They are twice the authors' own summary files, whose
  0.25 h step is wrong; the paper's 0.5 h is right. The no-EV column must come out of a correct AC
  OPF closely.
* **When the authors' OPF failed in a period, they copied the previous period's result.** It failed
  where a bus's net load was negative (V2G above the bus load). This inflates Table 3's energies for
  Sc2 max and Sc3, and Table 5's for Sc3-CR.
* **Sc2 max had NSE that the paper does not report:** about 2 MW at bus 14 at t = 33 in the authors'
  per-period output, while Table 3 prints 0.

What is ours and what is the paper's. The OPF, its data and its costs are the paper's and the
authors' data file's. Four things are our inferences, and the notebook says so where they matter:

* the **NSP source** is the data file's 11 MW unit at bus 14, made dispatchable at the penalty
  C_pen;
* a **load-shedding guard** at every load bus, at a higher cost, so that an infeasible period shows
  up as shed load rather than as a failure (it never acts);
* **branch limits as current limits** (|I| ≤ S^up/V^max), because pandapower's PIPS cannot limit |S|
  with this SciPy;
* the cap OPF's **2.5 % floor** and its **objective** (maximise the total cap).

The OPFs are one pipeline stage (`python -m evgrid.papers.villanueva2025.opf_study`). It solves the
no-EV day, the authors' profiles (Sc1-Sc3 and Sc3-CR, min and max), the authors' inputs re-solved by
part 1, our own Monte Carlo's profiles, and the caps, and writes `results/villanueva2025/opf/`
(`days.csv`, `metrics.csv`, `caps.csv`). The IEEE 13-node analysis of Fig. 9 is a second stage
(`python -m evgrid.papers.villanueva2025.feeder13`), which writes `results/villanueva2025/feeder13/`.
This notebook reads those files and runs only what takes seconds.
"""),
    code(parameters(SECTION), tags=["parameters"]),
    code(r"""
%matplotlib inline
import pandas as pd

from evgrid.core.compare import compare_with_paper, load_paper_values, rounded
from evgrid.core.config import notebook_params
from evgrid.core.outputs import save_figure, write_csv, write_json
from evgrid.core.paths import output_path, repo_path
from evgrid.networks.ieee13 import ieee13_published_voltages
from evgrid.papers.villanueva2025 import feeder13, figures, opf, opf_study
from evgrid.papers.villanueva2025.authors import SAMPLES

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
params = notebook_params("villanueva2025", globals())
out = output_path(params.results_dir)  # the repo, or a scratch/test folder (EVGRID_OUTPUT_ROOT)
fig_dir = output_path(params.figures_dir)
out.mkdir(parents=True, exist_ok=True)
fig_dir.mkdir(parents=True, exist_ok=True)
study = opf_study.read_study(repo_path(params.results_dir, "opf"))  # the OPF stage's files, read from the repository
days, metrics, caps = study["days"], study["metrics"], study["caps"]
paper = load_paper_values("villanueva2025")
AUTHORS = "authors_paper"  # the authors' own P^EM profiles, as they fed them to their OPF


def case_days(profiles, scenario="", sample=""):  # one day's 48 rows of days.csv
    part = days[(days["profiles"] == profiles) & (days["scenario"] == scenario) & (days["sample"] == sample)]
    return part.sort_values("t").reset_index(drop=True)


print(metrics.groupby("profiles", sort=False)["scenario"].apply(lambda s: ", ".join(dict.fromkeys(s)) or "-")
      .to_string())
"""),
    md(r"""
## 1. The model as built (Eqs. 43-53)

For each half hour t (Δt = 0.5 h; t = 1 is 00:00-00:30), with LF_t the dataset's load factor (sheet MT):

* **(43)** Pd_{k,t} = Pd_k·LF_t + P^EM_{k,t}. Only the active load changes: Qd_{k,t} = Qd_k·LF_t. A
  negative net bus load is legal. pandapower treats a negative load as an injection; the authors'
  solver failed on it.
* **(44)** min C_pen·Σ_k NSP_k + P_g,slack, with C_pen = 6000 per MW (the authors' code). The other
  generation costs nothing, so bus 2 runs at its 40 MW. Minimising the slack output then
  minimises the losses.
* **(45)** P_g,k + NSP_k = Pd_k + Σ_m P_km. The paper allows NSP at every bus, but every NSP it
  reports is at bus 14, supplied by the data file's 11 MW unit there ("extra generation needed in
  bus bar 14"). So that unit is the NSP source: P ∈ [0, 11] MW, Q = 0, cost C_pen. A shedding
  generator at every load bus, capped at the bus load and costing 10 C_pen, is a guard that is
  reported separately.
* **(46)** Q_g,k = Qd_k + Qsh_k + Σ_m Q_km, with the 0.19 p.u. shunt at bus 9.
* **(47)-(48)** P_km and Q_km are pandapower's standard π-model flows, with the data file's
  transformer taps. As printed, the two equations mix the admittance-magnitude and -angle notations.
* **(49)** |S_km| ≤ S^up_km, with the file's ratings read as p.u. of 100 MVA (175/150/100 MVA). PIPS
  can only limit the current here, so |I_km| ≤ S^up_km / V^up. That makes |S| ≤ S^up at every
  admissible voltage, at most 9.5 % stricter.
* **(50)** 0.95 ≤ V_k ≤ 1.05 p.u. at every bus, the slack's included.
* **(51)** There is no bound on the bus angles: on this 14-bus system they stay far inside ±π/2.
* **(52)-(53)** These are the file's limits. Slack P ∈ [0, 232.4] MW and Q = 0. Bus 2: P ∈ [0, 40]
  MW and Q ∈ [-40, 50] Mvar. The condensers at buses 3, 6 and 8 have P = 0. Firm capacity is
  232.4 + 40 = **272.4 MW**; above it, the load is served by NSP.

Each period is an independent OPF (PIPS, interior point). It starts flat and, if needed, from the
previous period's solution and then from a power flow. A period that no start solves is reported
as failed, never copied. The study ran with the defaults below (`params.yaml` has no OPF block; these
are the paper's and the data file's values):
"""),
    code(r"""
options = opf.OpfOptions()
pd.DataFrame({"value": {name: str(value) for name, value in options.model_dump().items()},
              "description": {name: field.description for name, field in opf.OpfOptions.model_fields.items()}})
"""),
    md(r"""
## 2. The day without EVs, the power balance, and failures

The no-EV day depends only on the network and the load factor, so a correct AC OPF must reproduce
the "Without EVs" column of Table 3. It must also close the power balance in every period of every
case: generation + NSP + shed = load + the line and transformer losses summed from the solved flows.
`balance_residual_mw` is the difference, written at 1e-6 MW.
"""),
    code(r"""
no_ev = opf_study.table3_values(metrics)
no_ev = compare_with_paper(no_ev[no_ev["column"] == "Without EVs"],
                           paper[(paper["table"] == "Table 3") & (paper["column"] == "Without EVs")], rel_tol=0.005)
assert (no_ev["status"] == "match").all(), no_ev  # every row within 0.5 % (the load factor: the paper rounds 0.914)
rounded(no_ev[["row", "computed", "paper", "abs_diff", "rel_diff", "status"]].set_index("row"), 4)
"""),
    code(r"""
checks = days.groupby(["profiles", "scenario", "sample"], sort=False).agg(
    periods=("t", "size"), solved=("converged", "sum"), max_residual_mw=("balance_residual_mw", lambda s: s.abs().max()),
    shed_mwh=("shed_mw", lambda s: s.sum() * opf.DT_H), max_loading=("branch_loading_max", "max"),
    vm_min_pu=("vm_min_pu", "min"), vm_max_pu=("vm_max_pu", "max"))
failed = days.loc[~days["converged"], ["profiles", "scenario", "sample", "t", "error"]]
print(f"{len(checks)} days, {int(checks['periods'].sum())} periods; failed periods: {len(failed)}")
assert (checks["periods"] == 48).all() and failed.empty, failed
assert (checks["max_residual_mw"] <= 1e-6).all()  # power balance closed in every solved period
assert (checks["shed_mwh"] == 0).all()  # the shedding guard never acts
assert (checks["max_loading"] < 1).all()  # no branch at its rating (Eq. 49)
assert checks["vm_min_pu"].min() >= options.vmin_pu - 1e-6 and checks["vm_max_pu"].max() <= options.vmax_pu + 1e-6
rounded(checks, 4)
"""),
    md(r"""
Every period of all 17 days solved from the flat start, and the balance residual is below the
written precision (1e-6 MW) everywhere. No branch reaches its rating; the heaviest loading is
about 0.89 S^up. The lowest voltage is 0.996 p.u. and the highest is at the 1.05 p.u. limit,
where the OPF raises the voltages to cut the losses. Our no-EV losses are 251.39 MWh against the
paper's 251.44 (-0.02 %), and the energy supplied is 5737.47 MWh against 5737.52.
"""),
    md(r"""
## 3. The authors' profiles: Tables 3 and 5

The same OPF on the authors' own P^EM profiles: Sc1-Sc3 for Table 3 and Sc3-CR for Table 5. Sc3-CR is
the authors' new Monte Carlo draw, made under their caps. The definitions are those of the table
checks in the notes:

* energy demand = Σ_t Pd_t Δt, the EVs included;
* load factor = demand / (24 h · peak), the row the paper calls "power factor";
* supplied = generation at buses 1 and 2 only;
* losses = supplied − demand, the paper's definition, which leaves the NSP out;
* NSE = Σ_t NSP_t Δt.

A value "matches" below within 0.2 %, or within 0.005 in absolute terms, which is the paper's
rounding.
"""),
    code(r"""
computed_t35 = pd.concat([opf_study.table3_values(metrics), opf_study.table5_values(metrics)], ignore_index=True)
t35 = compare_with_paper(computed_t35, paper[paper["table"].isin(["Table 3", "Table 5"])], rel_tol=0.002,
                         abs_tol=0.005)
print(t35.groupby("table")["status"].value_counts().to_string())
assert not (t35["status"] == "not computed").any()


def side_by_side(table):  # one line per case, ours above the paper's; the rows of the table as columns
    part = t35[t35["table"] == table]
    grid = part.pivot(index="row", columns="column", values=["computed", "paper"]).swaplevel(axis=1)
    cases = list(dict.fromkeys(computed_t35.loc[computed_t35["table"] == table, "column"]))
    grid = grid[[(c, v) for c in cases for v in ("computed", "paper")]]
    return rounded(grid.reindex([r for r in opf_study.TABLE_ROWS if r in grid.index]).T, 2)


side_by_side("Table 3")
"""),
    code(r"""
side_by_side("Table 5")
"""),
    code(r"""
differs = t35[t35["status"] == "differs"]
rounded(differs[["table", "row", "column", "computed", "paper", "abs_diff", "rel_diff"]].reset_index(drop=True), 4)
"""),
    md(r"""
Sc1, Sc2 min and the no-EV day match to the paper's rounding, and so do the peaks of every case.
The differing cells fall into three groups. (The load factors of Sc3 min and Sc3-CR min differ only
because their demand does.)

**Energy demand, supplied and losses of Sc2 max, Sc3 and Sc3-CR.** The authors' OPF failed in every
period where some bus had a **negative net load**, Pd_k·LF_t + P^EM_{k,t} < 0, and they kept the
previous period's result there. Their demand therefore counts the load of period t−1 twice. The
notes found the copied periods in the authors' per-period outputs. Below, the same periods are
found from the profiles alone (the periods with a negative net bus load), and our days are recomputed
by copying the previous period at those t. That reproduces the paper's demand to its rounding:
"""),
    code(r"""
notes_copied = {("Sc2", "max"): [23, 24, 35, 40], ("Sc3", "min"): [23, 24, 39], ("Sc3", "max"): [23],
                ("Sc3-CR", "min"): [3, 15, 19, 25, 31], ("Sc3-CR", "max"): [39, 41]}  # notes §4, per-period files
paper_cell = paper.set_index(["table", "row", "column"])["value"]
rows = []
for scenario in ("Sc1", "Sc2", "Sc3", "Sc3-CR"):
    table, column = ("Table 5", "Scenario 3 CR") if scenario == "Sc3-CR" else ("Table 3", f"Scenario {scenario[2]}")
    for sample in SAMPLES:
        pem = opf.authors_day(scenario, sample).pem_mw
        loads = opf_study.bus_loads(pem)
        negative = opf_study.negative_net_load_periods(pem)
        assert negative == notes_copied.get((scenario, sample), []), (scenario, sample, negative)
        day = case_days(AUTHORS, scenario, sample)
        ours, copied = opf.day_metrics(day), opf.day_metrics(opf_study.copy_previous_periods(day, negative))
        buses = loads[loads["net_mw"] < 0].groupby("t")["bus"].apply(lambda b: "/".join(map(str, b)))
        rows.append({
            "case": f"{scenario} {sample}",
            "negative net load (t: bus)": ", ".join(f"{t}: {b}" for t, b in buses.items()) or "-",
            "demand, ours": ours["energy_demand_mwh"], "demand, copied": copied["energy_demand_mwh"],
            "demand, paper": paper_cell[(table, "Energy demand", f"{column} {sample}")],
            "supplied, ours": ours["energy_supplied_mwh"], "supplied, copied": copied["energy_supplied_mwh"],
            "supplied, paper": paper_cell[(table, "Power supplied", f"{column} {sample}")],
            "losses, copied": copied["losses_mwh"], "losses, paper": paper_cell[(table, "Losses", f"{column} {sample}")]})
replay = pd.DataFrame(rows).set_index("case")
replay["demand: copied - paper"] = replay["demand, copied"] - replay["demand, paper"]
replay["demand: ours - paper"] = replay["demand, ours"] - replay["demand, paper"]
assert (replay["demand: copied - paper"].abs() <= 0.02).all()  # the paper's rounding and our 6 significant digits
rounded(replay, 2)
"""),
    md(r"""
These periods are exactly the notes' list: 4, 3 and 1 periods in Sc2 max, Sc3 min and Sc3 max, and
5 and 2 in Sc3-CR min and max. In Sc2 and Sc3 the bus with the negative net load is 12 or 13 (once 6); in
Sc3-CR it is 6, 11 or 2. Copying them turns our demand into the paper's to within 0.01 MWh. Without
the copies, the demand of each day is the no-EV 5486.08 MWh plus the profiles' EV energy, which is
what Table 2/4's column sums say it should be.

After the copies, the energy supplied and the losses are within 0.1-0.5 MWh (at most 0.2 %) of the
paper's. That is the no-EV day's difference (0.05 MWh) plus our slightly lower losses at high load, by
up to a few hundredths of a MW per period (see the NSP periods below).

**NSE and the maximum NSP.** With the firm generation at 272.4 MW, the NSP is whatever the load plus
the losses leave over: NSP_t = Pd_t + losses_t − 272.4 MW. The authors' per-period outputs (notes §4)
give 3.69, 3.61, 7.23 and 0.34 MW for Sc3 min at t = 27, 34, 35 and 37, 3.10 MW for Sc3 max at t = 33
and 2.07 MW for **Sc2 max at t = 33**. The paper prints that last one as 0. We find NSP in the same
periods, always at bus 14, each value 0.04-0.07 MW lower. Our OPF finds lower losses in these peak
periods by about that much, and the NSP follows the losses one for one:
"""),
    code(r"""
firm_mw = options.slack_p_max_mw + options.gen2_p_max_mw
nsp = days[(days["nsp_mw"] > 0)].assign(case=lambda d: d["scenario"] + " " + d["sample"])
nsp = nsp.assign(**{"load + losses - firm (MW)": nsp["pd_mw"] + nsp["losses_mw"] - firm_mw})
assert (nsp["profiles"] == AUTHORS).all() and (nsp["nsp_bus"] == options.nsp_bus).all()
assert ((nsp["p_slack_mw"] + nsp["p_gen2_mw"] - firm_mw).abs() <= 1e-3).all()  # firm generation exhausted
rounded(nsp[["case", "t", "pd_mw", "losses_mw", "nsp_mw", "load + losses - firm (MW)", "nsp_bus"]]
        .set_index(["case", "t"]), 3)
"""),
    md(r"""
The Sc2-max NSE is **1.01 MWh** (2.01 MW at t = 33, bus 14). The authors' own output holds 2.07 MW, or
1.03 MWh, there, yet the paper prints 0. The Sc3 min NSE is 7.32 MWh against the paper's 7.44, and
Sc3 max's is 1.53 MWh against 1.54. Table 3's "NSP Slash" row (the NSP bus) is 14, as in the paper. The
paper's text speaks of "three instances of NSE" in Scenario 3. There are four periods in Sc3 min and
one in Sc3 max.

The Sc3-CR days have no NSP and a peak of 254.9 MW, as in Table 5. The caps kept their loads below
firm capacity at the peak. The higher load factor (0.93) comes from the caps filling the night.
"""),
    md(r"""
## 4. The same OPF on the profiles the compendium solved

Part 1 re-solved the authors' aggregator MILPs from their exact inputs with the pricing loophole
closed (`authors_resolved`), and solved our own Monte Carlo's (`own`). The paper has no values for
these days. They answer its question once the MILPs are actually solved: what do NSE, the peak and
the losses look like? Each Table-3 row is shown beside the authors' profiles of the same scenario and
sample, for the uncoordinated scenarios Sc1-Sc3 (the capped Sc3-CR is section 6's).
"""),
    code(r"""
columns = {"ev_energy_mwh": "EV energy (MWh)", "energy_demand_mwh": "Energy demand (MWh)",
           "peak_load_mw": "Peak load (MW)", "load_factor": "Load factor", "energy_supplied_mwh": "Supplied (MWh)",
           "losses_mwh": "Losses (MWh)", "nse_mwh": "NSE (MWh)", "max_nsp_mw": "Max NSP (MW)",
           "failed_periods": "failed periods"}
solved = metrics[metrics["profiles"].isin(["authors_resolved", "own"]) & (metrics["scenario"] != "Sc3-CR")]
keys = solved[["scenario", "sample"]].drop_duplicates()
together = metrics[metrics["profiles"] != "none"].merge(keys, on=["scenario", "sample"])
together["profiles"] = pd.Categorical(together["profiles"], [AUTHORS, "authors_resolved", "own"], ordered=True)
together["sample"] = pd.Categorical(together["sample"], list(SAMPLES), ordered=True)
together = together.sort_values(["scenario", "sample", "profiles"])
compendium = together.set_index(["scenario", "sample", "profiles"])[list(columns)].rename(columns=columns)
no_ev_row = metrics[metrics["profiles"] == "none"].iloc[0]
print(f"no EVs: demand {no_ev_row['energy_demand_mwh']:.2f} MWh, peak {no_ev_row['peak_load_mw']:.2f} MW, "
      f"losses {no_ev_row['losses_mwh']:.2f} MWh")
rounded(compendium, 3)
"""),
    code(r"""
ours = solved
theirs = metrics[metrics["profiles"] == AUTHORS].merge(keys, on=["scenario", "sample"])
loss_rise = (ours["losses_mwh"] / no_ev_row["losses_mwh"] - 1) * 100
# each compendium day against the authors' profile of the same scenario and sample
beside = ours.merge(theirs[["scenario", "sample", "ev_energy_mwh"]], on=["scenario", "sample"], suffixes=("", "_authors"))
more = beside[beside["ev_energy_mwh"] > beside["ev_energy_mwh_authors"]]
# the text below: more EV energy than the authors' ordinary schedules (Sc1, Sc2 min), less than their loophole days
assert {(r.scenario, r.sample) for r in more.itertuples()} == {("Sc1", "min"), ("Sc1", "max"), ("Sc2", "min")}
summary = pd.Series({
    "EV energy, compendium's days (MWh)": f"{ours['ev_energy_mwh'].min():.0f}-{ours['ev_energy_mwh'].max():.0f}",
    "EV energy, authors' profiles, same days (MWh)":
        f"{theirs['ev_energy_mwh'].min():.0f}-{theirs['ev_energy_mwh'].max():.0f}",
    "days above the authors' EV energy (scenario, sample)":
        ", ".join(sorted({f"{r.scenario} {r.sample}" for r in more.itertuples()})) or "none",
    "highest peak, compendium's days (MW)": f"{ours['peak_load_mw'].max():.2f}",
    "peak without EVs (MW)": f"{no_ev_row['peak_load_mw']:.2f}",
    "largest NSE, compendium's days (MWh)": f"{ours['nse_mwh'].max():.2f}",
    "loss increase over the no-EV day (%)": f"{loss_rise.min():.1f}-{loss_rise.max():.1f}",
})
assert (ours["nse_mwh"] < 1e-3).all()  # the text below: no NSE on any day the compendium solved
assert (ours["peak_load_mw"] <= no_ev_row["peak_load_mw"] + 0.01).all()  # and no higher peak
summary
"""),
    md(r"""
With the loophole closed and the MILPs solved, the aggregators buy at night and sell back (V2G) in
the evening (Fig. 6 in section 7). Against the authors' profiles of the same scenario and sample (the
summary above), the solved days carry **more EV energy** where the authors' incumbents are ordinary
schedules (Sc1, Sc2 min): the round-trip losses of the arbitrage come on top of the driving. They carry
**far less** where the authors' incumbents exploit the one-sided price steps (Sc2 max, Sc3: single buses
trading 40-80 MWh, Table 2). Either way the peak is **no higher than the no-EV peak** (14:30-15:00), no
day needs **NSP**, and the losses rise by a few percent at most over the no-EV day, against up to 7.8 %
in the paper. The authors' Sc2 max profile needs NSP at t = 33; the re-solved Sc2 max needs none. Our
own Monte Carlo's days are close to the re-solved ones: it draws the same kind of fleets.
"""),
    md(r"""
## 5. The DNO's caps (Eqs. 54-55)

For Sc3-CR the DNO computes, on the **no-EV** load and per half hour, how much EV load each bus may take:

* **(54)** P_g,k + NSP_k = Pd_k + P^EM_cap,k + Σ_m P_km, with the cap a controllable "virtual load"
  at every load bus;
* **(55)** P^EM_cap,k ≤ Pd_k.

The paper states neither the objective nor a lower bound. From the authors' cap file (their capped
runs' inputs) we infer them: maximise Σ_k P^EM_cap,k, each cap worth 100 per MW (above the slack's
cost, below C_pen), and a floor of 0.025·Pd_{k,t}. The authors' caps of buses 3, 10, 13 and 14 sit at
that floor in every period. With firm generation then fully used, maximising the total cap is the
same as minimising the losses. The room above the floors goes first to the buses whose extra load
costs the fewest extra losses.
"""),
    code(r"""
tol_mw = 1e-3  # the authors' caps are written to 0.001 MW
per_t = caps.groupby("t").agg(pd_mw=("pd_mw", "sum"), ours=("cap_mw", "sum"), authors=("authors_cap_mw", "sum"),
                              losses_ours=("losses_mw", "first"))
per_t["losses_authors"] = firm_mw - per_t["pd_mw"] - per_t["authors"]  # their caps use the firm generation too
per_t["total: ours - authors"] = per_t["ours"] - per_t["authors"]
assert caps["converged"].all() and ((firm_mw - per_t["pd_mw"] - per_t["ours"] - per_t["losses_ours"]).abs() < 1e-3).all()
bus_diff = (caps["cap_mw"] - caps["authors_cap_mw"]).abs().groupby(caps["bus"]).max()
at_floor = pd.DataFrame({
    who: (caps[col] - options.cap_floor_share * caps["pd_mw"]).abs().le(tol_mw).groupby(caps["bus"]).mean()
    for who, col in (("ours", "cap_mw"), ("authors'", "authors_cap_mw"))})
share = {who: opf.cap_room_share(caps.assign(cap_mw=caps[col]), options.cap_floor_share)
         for who, col in (("ours", "cap_mw"), ("authors'", "authors_cap_mw"))}
per_bus = pd.DataFrame({"max |ours - authors'| (MW)": bus_diff,
                        "share of periods at the floor, ours": at_floor["ours"],
                        "share of periods at the floor, authors'": at_floor["authors'"],
                        "room taken, ours": share["ours"], "room taken, authors'": share["authors'"]})
print(f"daily cap energy: ours {per_t['ours'].sum() * opf.DT_H:.2f} MWh, authors' {per_t['authors'].sum() * opf.DT_H:.2f} MWh")
print(f"total cap per period: largest |ours - authors'| {per_t['total: ours - authors'].abs().max():.3f} MW "
      f"(total {per_t['ours'].min():.1f}-{per_t['ours'].max():.1f} MW); losses {per_t['losses_ours'].min():.2f}-"
      f"{per_t['losses_ours'].max():.2f} MW")
for who in share:
    print(f"room order, {who}: {', '.join(str(b) for b in share[who].index[share[who] > 1e-3])}; at the floor: "
          f"{', '.join(str(b) for b in at_floor.index[at_floor[who] == 1])}")
assert per_t["total: ours - authors"].abs().max() < 0.05
assert list(share["ours"].index[:7]) == list(share["authors'"].index[:7])
rounded(per_bus, 3)
"""),
    md(r"""
The totals agree: the daily cap energy matches to 0.2 MWh out of 741, and each period's total to
within 0.03 MW. The same buses sit at the floor all day (3, 10, 13, 14), and the room goes to the
same buses in the same order, **2, 5, 6, 11, 9, 4, 12**. Bus by bus, the split differs by up to
3.2 MW at bus 4 and 2.3 MW at bus 9, and by about 0.9 MW at buses 11 and 12, all between midnight and
08:00. That is when the room is widest and buses 4, 9, 11 and 12 take only part of theirs.

Those four buses have **nearly equal marginal losses**. Moving load among them barely changes the
losses, so the OPF's split among them is barely determined. The data show it. In the night periods
where the two splits differ, by 2.6-3.2 MW moved from bus 4 to buses 9, 11 and 12, our losses and
those implied by the authors' caps (272.4 − Σ Pd − Σ cap) differ by at most 0.014 MW. In the periods
where the splits agree, they differ by up to 0.03 MW the other way. So the split is worth less in
losses than the small differences between the two OPF models are (the authors' free-disposal
balances, our current limits, the solvers' tolerances). The objective is nearly flat along it:
"""),
    code(r"""
moved = (caps.assign(diff=caps["cap_mw"] - caps["authors_cap_mw"]).groupby("t")["diff"]
         .agg(lambda d: d.abs().sum() / 2).rename("MW moved between buses"))
flat = per_t.join(moved)[["MW moved between buses", "losses_ours", "losses_authors"]]
flat["losses: ours - authors (MW)"] = flat["losses_ours"] - flat["losses_authors"]
big = flat[flat["MW moved between buses"] > 0.5]
rest = flat[flat["MW moved between buses"] <= 0.5]
print(f"{len(big)} periods move more than 0.5 MW between buses; their losses differ by at most "
      f"{big['losses: ours - authors (MW)'].abs().max():.3f} MW")
print(f"the other {len(rest)} periods: losses differ by at most {rest['losses: ours - authors (MW)'].abs().max():.3f} MW")
rounded(big.head(6), 3)
"""),
    md(r"""
## 6. Coordination on the compendium's own chain (Eqs. 56-57, Tables 4 and 5, Fig. 8)

The paper's question is whether the DNO's caps remove what uncoordinated charging does to the
network. The compendium's own chain answers it end to end: our Monte Carlo's scenario 3 (`own` Sc3,
part 1), the caps of section 5, the **same vehicles and draws** solved again with each aggregator's
trade held under its bus's cap by Eqs. (56)-(57) (`own` Sc3-CR, stage `villanueva2025_own_capped`),
and the OPF on both. Every aggregator recovers half of each of its vehicles' daily driving (part 1,
section 3). A capped run whose caps admit less energy over the day than that is refused before
solving, with the shortfall; its sample's day is then not solved (a bus without a schedule).
"""),
    code(r"""
own_runs = pd.concat([pd.read_csv(path) for path in (repo_path(params.results_dir, "own_runs", f"{sc}_runs.csv")
                                                     for sc in ("Sc3", "Sc3-CR")) if path.exists()],
                     ignore_index=True)
no_schedule = own_runs[own_runs["objective_usd"].isna()]
for _, r in no_schedule.iterrows():
    print(f"no schedule: {r['run']}: {str(r['status']).split(': ', 2)[-1]}")
# Our chain (own), and beside it the authors' inputs re-solved (Sc3 and Sc3-CR are two different Monte
# Carlo draws there, Sc3-CR under the authors' caps): without coordination against with the caps.
coordination = metrics[metrics["profiles"].isin(["own", "authors_resolved"]) & metrics["scenario"].isin(["Sc3", "Sc3-CR"])]
coordination = pd.concat([metrics[metrics["profiles"] == "none"].assign(scenario="no EVs"), coordination])
coordination = coordination.set_index(["profiles", "scenario", "sample"])[list(columns)].rename(columns=columns)
capped_days = metrics[metrics["profiles"].isin(["own", "authors_resolved"]) & (metrics["scenario"] == "Sc3-CR")]
assert (capped_days["nse_mwh"] < 1e-3).all()  # the text below: no NSE with the caps either
print(f"capped days: peak at most {capped_days['peak_load_mw'].max() - no_ev_row['peak_load_mw']:.2f} MW "
      f"above the no-EV peak, which is {capped_days['peak_load_mw'].max():.2f} MW")
rounded(coordination, 3)
"""),
    md(r"""
On both chains the capped days need **no NSP**, like the uncapped ones, and carry less EV energy and
fewer losses: the caps trim the V2G arbitrage. Their peak is the no-EV peak or slightly above it (the
line above): the buses whose caps barely admit their fleets' driving (12, 13 and 14) charge at their
cap through most of the day, the 14:30 peak included. That is within the caps, which are the load the DNO
admits up to firm generation (section 5), not a limit on the peak. Once the MILPs are solved there is
no NSE for the caps to remove.
"""),
    code(r"""
capped = pd.read_csv(repo_path(params.results_dir, "own_runs", "Sc3-CR_profiles.csv"))
capped = capped[capped["pricing"] == "corrected"]
under = capped.merge(caps[["t", "bus", "cap_mw"]], on=["t", "bus"], validate="many_to_one")
runs_cr = own_runs[own_runs["scenario"] == "Sc3-CR"]
raised = runs_cr[runs_cr["status"].astype(str).str.startswith("raised caps")]
for _, r in raised.iterrows():  # solved under caps raised by the least excess that makes them feasible
    print(f"caps raised by {r['cap_excess_mwh']:.3f} MWh over the day: {r['run']}")
held = ~under.set_index(["sample", "bus"]).index.isin(list(zip(raised["sample"], raised["bus"], strict=True)))
excess = (under["p_em_mw"] - under["cap_mw"])[held].max()
print(f"largest P^EM - cap over every other capped run and period: {excess:.2e} MW")
assert excess <= 1e-6  # Eq. (56): every schedule stays under its cap
fig = figures.plot_caps_response(capped, caps, "Our capped scenario 3: each aggregator's traded power within its "
                                 "cap (Eqs. 56-57, Fig. 8)")
save_figure(fig, fig_dir / "05_fig8_caps_response.png")
"""),
    md(r"""
**Fig. 8** shows every aggregator's traded power under its cap over the day, for the minimum and the
maximum sample. Where the cap sits at its 2.5 % floor all day (buses 10, 13 and 14; bus 3's floor is
1.9 MW), the aggregator rides it through most of the day and sells back only in the evening; the
maximum sample at buses 13 and 14 needs more than its caps admit and rises above them in the morning
(its caps raised by the least excess, 0.18 and 1.42 MWh). Where the caps leave room (buses 2, 4, 5, 6,
9 at night) the schedules are those of the uncapped runs: buy at night, sell at the evening peak.
"""),
    md(r"""
## 7. Figures

**Fig. 6** shows the system load, Σ_k (Pd_k·LF_t + P^EM_{k,t}), over the day for each scenario, with
one panel for the min samples and one for the max. The top row is the authors' profiles (the
paper's figure). The rows below are the same OPF inputs from the re-solved MILPs and from our Monte
Carlo: charging fills the night, and V2G shaves the evening.
"""),
    code(r"""
fig = figures.plot_system_load(days, tuple(p for p in (AUTHORS, "authors_resolved", "own")
                                           if (days["profiles"] == p).any()))
save_figure(fig, fig_dir / "05_fig6_system_load.png")
"""),
    md(r"""
**Fig. 7(a)** shows the OPF over the day for the paper's two cases, S1 max (blue in the paper) and
S3 min (red). Generation at buses 1 and 2 is the solid line and the load is dashed; the gap between
them is the losses, 8-14 MW. S3 min reaches the firm capacity four times, and the NSP at bus 14
covers the rest.
"""),
    code(r"""
fig = figures.plot_opf_day(days, [(AUTHORS, "Sc1", "max"), (AUTHORS, "Sc3", "min")], firm_capacity_mw=firm_mw)
save_figure(fig, fig_dir / "05_fig7a_opf_day.png")
"""),
    md(r"""
**Fig. 7(b)** shows the caps per bus over the day, ours stacked, against the authors' total, and on
the right the per-bus difference. Only buses 4, 9, 11 and 12 (and bus 2 by a few hundredths) differ,
and only at night.
"""),
    code(r"""
fig = figures.plot_caps(caps)
save_figure(fig, fig_dir / "05_fig7b_caps.png")
"""),
    md(r"""
**NSP per period and case.** NSP appears only in three days, all of them the authors' profiles, and
only in the afternoon and early evening (13:00-18:30), when those profiles add load on top of the
day's peak.
"""),
    code(r"""
fig = figures.plot_nsp(days)
save_figure(fig, fig_dir / "05_nsp.png")
"""),
    md(r"""
## 8. The IEEE 13-node analysis (Fig. 9)

**What the paper says** (Secs. 2.4.3 and 3.3). The transmission study's results for Sc3-CR, meaning
the 14-bus OPF's bus voltages and the aggregators' charging and V2G profiles P^EM_{k,t}, are carried
to the unbalanced IEEE 13-node feeder in OpenDSS. The high-voltage side of the substation
transformer is not modelled, and generators at the distribution buses stand for V2G (Fig. 3). A
"data mining" step characterises the transmission results statistically. A Monte Carlo "synthesis"
then draws samples that scale the feeder's EV loads and V2G generators and set its source voltage.
Fig. 9 shows the two synthesized datasets "with the lowest error", labelled "5 %" and "14 %". For
each, it plots the per-phase voltages over the day at the far buses 671, 675, 611, 684, 652, 680 and
692. The claim is that there is no under-voltage and everything stays within ±5 %, the Peruvian
NTCSE limit for urban medium voltage.

**What it leaves undefined.** The paper does not say what "5 %" and "14 %" measure or how the data
are mined and synthesized. It does not say how large the EV load is on a feeder that carries a
small fraction of one 14-bus bus's load, which 14-bus bus feeds the feeder, or whether the feeder's
voltage regulator acts. No code or data of this part was published (notes, §6).

**The construction** (`evgrid.papers.villanueva2025.feeder13`, its own pipeline stage). The
module docstring gives every assumption. Here, *paper* marks what the text fixes and *ours* marks
what we chose:

* *paper*: the standard IEEE 13-node feeder in OpenDSS, without the high-voltage side of the
  substation transformer. Our loader's default is a stiff source at bus 650, the published set-up.
* *ours*: the 650-RG60 **regulator is disabled**: its taps are neutral and have no control. This
  follows the paper's remark that regulation "could interfere" with the voltage monitoring.
* *ours*: the **source voltage** in each half hour is the 14-bus OPF's voltage magnitude at
  **bus 13**, taken from the Sc3-CR day of the authors' profiles (min or max sample). The paper says
  only "voltages from the transmission study".
* *ours*: the feeder's **loads** are their published values scaled by LF_t / max LF, the 14-bus load
  shape. The feeder therefore carries its published load in the peak half hour.
* *paper*: EV aggregators at the far buses, with V2G as generators. *Ours*: at each far bus, a
  **charging load** max(P_t, 0) and a **V2G generator** max(−P_t, 0). Both run at unity power factor
  and constant power, split equally over the bus's phases.
* *ours*: the datasets **"5 %" and "14 %" are EV energy shares**. The EVs' daily charging energy on
  the feeder is 5 % and 14 % of the feeder's daily load energy.
* *ours*: a **seeded Monte Carlo over synthetic days**. Each day draws the source's OPF day (min or
  max). For every aggregator bus it draws one of the Sc3-CR per-bus profiles, normalised to its
  charging energy so that its V2G stays in proportion. It also draws the split of the day's EV
  energy over the buses: by the bus's published load, times a random factor. The load-free
  junctions 680 and 684 therefore host no EVs. Both datasets use the same draws, so they differ only
  in the EV energy.
* *ours*: a **no-EV day** for comparison: the feeder without aggregators, its source at the no-EV
  OPF day's voltage.
* Each day is solved as 48 snapshot power flows. Every phase's voltage is in p.u. of its bus's own
  line-to-neutral base, and it is checked against the paper's ±5 % band.

The stage writes `results/villanueva2025/feeder13/envelopes.csv` and `violations.csv`. The
envelopes hold, per dataset, bus, phase and half hour, the minimum, maximum, 5th and 95th percentile
over the synthetic days. The violations count the values outside the band, where a value is one bus
phase in one half hour of one day. This notebook reads the two files:
"""),
    code(r"""
feeder = feeder13.read_feeder_study(repo_path(params.results_dir, "feeder13"))  # the feeder stage's files
envelopes, violations = feeder["envelopes"], feeder["violations"]
band = feeder13.Feeder13Options()  # the stage runs the defaults: the band is the NTCSE's ±5 %
NO_EV = feeder13.NO_EV
datasets = list(dict.fromkeys(envelopes["dataset"]))
ev_datasets = [d for d in datasets if d != NO_EV]
totals = violations[violations["bus"] == "all"].set_index("dataset")
assert datasets[0] == NO_EV and ev_datasets and list(totals.index) == datasets
assert list(dict.fromkeys(envelopes["bus"])) == list(feeder13.FAR_BUSES)
print(f"datasets: {', '.join(datasets)}; synthetic days per EV dataset: "
      f"{', '.join(str(totals.loc[d, 'n_days']) for d in ev_datasets)}; band {band.vmin_pu}-{band.vmax_pu} p.u.")
inputs_13 = paper[(paper["table"] == "Text") & paper["row"].str.startswith("IEEE 13-bus")]
inputs_13[["row", "column", "value", "unit", "note"]].reset_index(drop=True)
"""),
    md(r"""
The paper's two numbers for this part, shown above, are the datasets' labels. In our construction
they are **inputs** (the EV energy shares), not results, so `comparison_opf.csv` holds no computed
value for them.

**Per-phase extremes and violations.** For each far bus and phase, the table gives the lowest and
highest voltage over the day (and over the synthetic days, for the EV datasets). It also counts the
values below the band ("under") and above it ("over"). The second table sums them per dataset.
"""),
    code(r"""
order = pd.MultiIndex.from_frame(envelopes[["bus", "phase"]].drop_duplicates())
extremes = (envelopes.groupby(["dataset", "bus", "phase"], sort=False)
            .agg(vm_min_pu=("vm_min_pu", "min"), vm_max_pu=("vm_max_pu", "max")))
per_phase = violations[violations["bus"] != "all"].set_index(["dataset", "bus", "phase"])
assert (extremes - per_phase[["vm_min_pu", "vm_max_pu"]].loc[extremes.index]).abs().max().max() < 1e-9
labels = {"vm_min_pu": "min (p.u.)", "vm_max_pu": "max (p.u.)", "n_under": "under", "n_over": "over"}
phase_table = pd.concat({d: per_phase.loc[d, list(labels)].rename(columns=labels).reindex(order) for d in datasets},
                        axis=1, names=["dataset", ""])
rounded(phase_table, 4).astype({c: int for c in phase_table.columns if c[1] in ("under", "over")})
"""),
    code(r"""
counts = ["n_days", "n_values", "n_under", "n_over", "n_violations", "days_with_violation"]
rounded(totals[[*counts, "vm_min_pu", "vm_max_pu"]], 4).astype(dict.fromkeys(counts, int))
"""),
    md(r"""
**Fig. 9** plots, for each far bus (rows) and each EV dataset (columns), the per-phase voltage over
the day. The light band is the min-max envelope over the synthetic days and the dark band the 5-95 %
range. The no-EV day is dashed and the ±5 % limits are dotted. Each panel's title counts its values
outside the band.
"""),
    code(r"""
fig = figures.plot_feeder_voltages(envelopes, vmin_pu=band.vmin_pu, vmax_pu=band.vmax_pu, no_ev=NO_EV,
                                   violations=violations)
save_figure(fig, fig_dir / "05_fig9_feeder13.png")
"""),
    md(r"""
**The finding: "no under-voltage, within ±5 %" does not reproduce here.** The cell below checks
three things. First, where the no-EV day already leaves the band. Second, how far apart phases B
and C are in the feeder's peak half hour, the period of the highest load factor, where the loads
are at their published values. That gap is set beside the IEEE's own published solution, which has
the regulator at its taps. Third, how the EV datasets move the extremes.
"""),
    code(r"""
lf = pd.Series(opf.read_load_factor(), index=range(1, opf.N_PERIODS + 1))
t_peak = int(lf.idxmax())
clock = "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in (30 * (t_peak - 1), 30 * t_peak))  # t = 1: 00:00-00:30
no_ev_rows = per_phase.loc[NO_EV]
under_no_ev = no_ev_rows[no_ev_rows["n_under"] > 0]
phase_c = no_ev_rows.xs("c", level="phase")
print(f"no EVs: {totals.loc[NO_EV, 'n_under']} of {totals.loc[NO_EV, 'n_values']} values below {band.vmin_pu} p.u.; "
      f"phase C below it at {int((phase_c['vm_min_pu'] < band.vmin_pu).sum())} of {len(phase_c)} far buses "
      f"having it ({phase_c['n_under'].min()}-{phase_c['n_under'].max()} of {opf.N_PERIODS} half hours), "
      f"lowest {phase_c['vm_min_pu'].min():.4f} p.u.")
print("no EVs, bus phases with under-voltage:", ", ".join(f"{b}{p}" for b, p in under_no_ev.index))

day = envelopes[(envelopes["dataset"] == NO_EV) & (envelopes["t"] == t_peak)]  # one day: min = max = its voltage
at_peak = day.pivot(index="bus", columns="phase", values="vm_min_pu").reindex(feeder13.FAR_BUSES)
published = ieee13_published_voltages().pivot(index="bus", columns="phase", values="vm_pu")
three = [b for b in feeder13.FAR_BUSES if at_peak.loc[b, ["b", "c"]].notna().all()]
spread = pd.DataFrame({
    "phase B (p.u.)": at_peak.loc[three, "b"], "phase C (p.u.)": at_peak.loc[three, "c"],
    "B - C, ours (no regulator)": at_peak.loc[three, "b"] - at_peak.loc[three, "c"],
    "B - C, IEEE published (regulator taps)": published.loc[three, "b"] - published.loc[three, "c"]})
spread_max = float(spread["B - C, ours (no regulator)"].max())
band_width = band.vmax_pu - band.vmin_pu
boost = float(published.loc["rg60", "c"] - published.loc["rg60", "b"])
print(f"peak half hour t = {t_peak} ({clock}): phases B and C differ by up to {spread_max:.4f} p.u. "
      f"(the band is {band_width:.2f} p.u. wide); in the IEEE published solution the regulator lifts phase C "
      f"{boost:.4f} p.u. more than B, and B still stands up to "
      f"{spread['B - C, IEEE published (regulator taps)'].max():.4f} p.u. above C")

widening = totals[["vm_min_pu", "vm_max_pu"]].copy()
widening["span (p.u.)"] = widening["vm_max_pu"] - widening["vm_min_pu"]
widening["lowest: change vs no EVs"] = widening["vm_min_pu"] - widening.loc[NO_EV, "vm_min_pu"]
widening["highest: change vs no EVs"] = widening["vm_max_pu"] - widening.loc[NO_EV, "vm_max_pu"]
widening["span: change vs no EVs"] = widening["span (p.u.)"] - widening.loc[NO_EV, "span (p.u.)"]
over = per_phase[per_phase["n_over"] > 0]
for d in ev_datasets:
    print(f"{d:>4} EV energy: lowest {widening.loc[d, 'lowest: change vs no EVs']:+.4f} p.u., highest "
          f"{widening.loc[d, 'highest: change vs no EVs']:+.4f} p.u. vs the no-EV day; "
          f"{totals.loc[d, 'n_under']} under, {totals.loc[d, 'n_over']} over, on {totals.loc[d, 'days_with_violation']} "
          f"of {totals.loc[d, 'n_days']} days")
print("bus phases with over-voltage:", ", ".join(f"{d} {b}{p}" for d, b, p in over.index) or "none")

# the prose below holds only while these do
assert totals.loc[NO_EV, "n_under"] > 0 and (phase_c["vm_min_pu"] < band.vmin_pu).all()
assert (phase_c["n_under"] > opf.N_PERIODS / 2).all()  # "for most of the day"
assert "a" in under_no_ev.index.get_level_values("phase")  # "phase A dips below the band at some buses"
assert 0.8 * band_width < spread_max < 1.2 * band_width  # "about as wide as the whole band"
assert (spread["B - C, IEEE published (regulator taps)"] > band_width / 2).all() and boost > 0
assert (totals.loc[ev_datasets, "days_with_violation"] == totals.loc[ev_datasets, "n_days"]).all()
assert widening["vm_min_pu"].is_monotonic_decreasing and widening["vm_max_pu"].is_monotonic_increasing
assert (over.index.get_level_values("phase") == "b").all() and totals.loc[ev_datasets[-1], "n_over"] > 0
display(rounded(spread, 4))
rounded(widening, 4)
"""),
    md(r"""
Under this construction the paper's claim does not hold, and **it fails before any EV is connected**.
On the no-EV day, phase C is below 0.95 p.u. at every far bus that has it, for most of the day, and
phase A dips below the band at some buses (listed above). The cause is the feeder itself.
The IEEE 13-node feeder is strongly unbalanced. Without its regulator, phase B at the far buses
stands above phase C at the peak by about as much as the whole ±5 % band is wide (the spread
printed above). A balanced source voltage, whatever value the 14-bus OPF gives it, therefore has
next to no room to hold both phases inside the band. The IEEE's own published solution shows the
same imbalance: there, the regulator lifts phase C more than phase B, and B still stands well above C.
Disabling the regulator, as the paper's "could interfere" suggests, removes exactly the device the
feeder is designed to need.

**The EVs widen the envelopes.** The lowest voltage falls and the highest rises with the EV energy
(the changes are printed above). The largest dataset also pushes phase B, the feeder's high phase,
over the upper limit on some days. Part of the change may come from the source, which in the EV
datasets follows the Sc3-CR OPF days rather than the no-EV day. Every synthetic day of every EV
dataset has under-voltage. Our datasets are a stated reading of labels the paper leaves undefined,
so this does not contradict a computation we could repeat. It does show that the feeder as the
paper describes it (regulator disabled, a balanced source from the transmission study) misses the
band on phase C even without EVs. The paper's result needs something it does not report, such as
the regulator acting or an unbalanced source.
"""),
    md(r"""
## 9. Everything beside the paper

`results/villanueva2025/comparison_opf.csv` holds Tables 3 and 5 and the OPF numbers of the text,
computed from the authors' profiles. It has the same format as part 1's `comparison.csv`. It
holds no computed value for the IEEE 13-node datasets' "5 %" and "14 %", which are inputs of our
construction (section 8). The
reasons for each difference are in section 3, and for the report in
`data/paper_values/villanueva2025_deviations.yaml`. `metrics_opf.json` holds the headline numbers.
"""),
    code(r"""
text_values = opf_study.text_values(metrics, days)
text = compare_with_paper(text_values, paper[(paper["table"] == "Text") & paper["row"].isin(text_values["row"])],
                          rel_tol=0.002, abs_tol=0.005)
rounded(text[["row", "column", "computed", "paper", "status"]], 3)
"""),
    md(r"""
The text's loss increase of "up to 7.79 %" for Scenario 3 is 271.02/251.44 − 1, which includes the
copied periods. Ours is 5.7 % without them. The Sc3-CR increases, 7.34 % (blue, min) and 5.9 %
(red, max), come out at 6.2 % and 5.3 % without the copies. The paper's 7.34 % does not even follow
from its own Table 5, which gives 270.02/251.44 − 1 = 7.39 %.
"""),
    code(r"""
computed = pd.concat([computed_t35, text_values], ignore_index=True)
assert not computed["row"].isin(inputs_13["row"]).any()  # the '5 %' and '14 %' are our inputs, not results
write_csv(computed.assign(paper_id="villanueva2025")[["table", "row", "column", "computed", "paper_id"]],
          out / "comparison_opf.csv")
authors_cases = metrics[metrics["profiles"] == AUTHORS]
compendium_cases = metrics[metrics["profiles"].isin(["authors_resolved", "own"])]
headline = {
    "days_solved": int(len(metrics)),
    "periods_failed": int((~days["converged"]).sum()),
    "max_balance_residual_mw": float(days["balance_residual_mw"].abs().max()),
    "no_ev_losses_mwh": float(metrics.loc[metrics["profiles"] == "none", "losses_mwh"].iloc[0]),
    "no_ev_supplied_mwh": float(metrics.loc[metrics["profiles"] == "none", "energy_supplied_mwh"].iloc[0]),
    "tables_3_5_cells_matching": int((t35["status"] == "match").sum()),
    "tables_3_5_cells": int(len(t35)),
    "copied_periods_demand_max_abs_diff_mwh": float(replay["demand: copied - paper"].abs().max()),
    "copied_periods": int(sum(len(v) for v in notes_copied.values())),
    "sc2_max_nse_mwh": float(authors_cases.query("scenario == 'Sc2' and sample == 'max'")["nse_mwh"].iloc[0]),
    "sc3_min_nse_mwh": float(authors_cases.query("scenario == 'Sc3' and sample == 'min'")["nse_mwh"].iloc[0]),
    "authors_profiles_max_nsp_mw": float(authors_cases["max_nsp_mw"].max()),
    "compendium_days": int(len(compendium_cases)),
    "compendium_max_nse_mwh": float(compendium_cases["nse_mwh"].max()) if len(compendium_cases) else 0.0,
    "compendium_max_peak_mw": float(compendium_cases["peak_load_mw"].max()) if len(compendium_cases) else 0.0,
    "caps_total_max_abs_diff_mw": float(per_t["total: ours - authors"].abs().max()),
    "caps_bus_max_abs_diff_mw": float(bus_diff.max()),
    "feeder13_phase_bc_spread_peak_pu": spread_max,
}
for dataset in datasets:  # the IEEE 13-node study (section 8), per dataset: no_ev, 5pct, 14pct
    key = "no_ev" if dataset == NO_EV else dataset.replace("%", "pct")
    headline[f"feeder13_violations_{key}"] = int(totals.loc[dataset, "n_violations"])
    headline[f"feeder13_under_{key}"] = int(totals.loc[dataset, "n_under"])
    headline[f"feeder13_over_{key}"] = int(totals.loc[dataset, "n_over"])
    headline[f"feeder13_days_with_violation_{key}"] = int(totals.loc[dataset, "days_with_violation"])
    headline[f"feeder13_vm_min_pu_{key}"] = float(totals.loc[dataset, "vm_min_pu"])
    headline[f"feeder13_vm_max_pu_{key}"] = float(totals.loc[dataset, "vm_max_pu"])
write_json(headline, out / "metrics_opf.json")
headline
"""),
    md(r"""
## What differs from the paper, and why

* **The no-EV day** matches Table 3 to the paper's rounding: demand 5486.08 MWh, peak 250.11 MW,
  supplied 5737.47 against 5737.52 MWh, and losses 251.39 against 251.44 MWh (-0.02 %). The OPF,
  its data and its costs are the paper's. The remaining 0.05 MWh are model details: our standard
  equality balances against the authors' free disposal, and current limits that never bind.
* **Energy demand, supplied and losses of Sc2 max, Sc3 min and max, and Sc3-CR min and max** are
  lower than the paper's by 12-49 MWh of demand. The authors' OPF failed in every period with a negative
  net bus load (V2G above the bus load) and they copied the previous period's result. Copying those
  same periods in our days reproduces the paper's demand to 0.01 MWh. We report the days as solved,
  which pandapower does without trouble.
* **The Sc2-max NSE is 1.01 MWh (2.01 MW at t = 33, bus 14), not 0.** The authors' own per-period
  output holds it (2.07 MW), but their summary and Table 3 do not.
* **NSE and maximum NSP of Sc3** (7.32 against 7.44 MWh and 7.19 against 7.23 MW for min; 1.53 against
  1.54 MWh for max) fall in the same periods, at the same bus 14. Each value is 0.04-0.07 MW lower,
  because our OPF finds correspondingly lower losses at firm capacity. The text's "three instances"
  are four periods in Sc3 min (plus one in Sc3 max).
* **The text's loss increases** (7.79 %, 7.34 % and 5.9 %) include the copied periods. Ours are
  5.7 %, 6.2 % and 5.3 %. The 7.34 % itself does not follow from the paper's Table 5, which gives 7.39 %.
* **Four things are ours, not the paper's:** the NSP source (the 11 MW unit at bus 14 made
  dispatchable at C_pen), the shedding guard (it never acts), the branch limits as current limits
  (they never bind), and the cap OPF's 2.5 % floor and objective, inferred from the authors' caps.
  Our caps match theirs in total (within 0.03 MW per period), in the buses at the floor, and in the
  order the room is handed out. Bus by bus they differ by up to 3.2 MW among buses 4, 9, 11 and 12,
  whose nearly equal marginal losses leave that split barely determined.
* **The IEEE 13-node claim (Fig. 9), "no under-voltage, within ±5 %", does not reproduce** under
  our construction (section 8). Phase C at the far buses is below 0.95 p.u. even without EVs. With
  the regulator disabled, as the paper's "could interfere" suggests, the unbalanced feeder's phases
  B and C differ at the peak by about the band's whole width. That is a property of the IEEE 13-node
  feeder itself: its published solution needs the regulator's per-phase taps. The EVs then widen the
  envelopes. The construction of the "5 %" and "14 %" datasets is ours, because the paper leaves
  it undefined: we read them as EV energy shares of the feeder's daily load, with a seeded Monte
  Carlo over synthetic days, the source at the 14-bus OPF's bus-13 voltage, and loads scaled by the
  load factor. They are therefore inputs, not results compared with the paper.
* **With the aggregators' MILPs actually solved** (part 1; the loophole closed), the uncoordinated
  days carry **no NSE**, a peak no higher than without EVs, and losses a few percent above the no-EV
  day (section 4); the capped days likewise, with a peak at most 0.7 MW above it (section 6). The paper's NSE and its "deviating" buses come from the
  incumbents of unsolved MILPs, not from the EVs.
"""),
]


def main() -> None:
    print(f"wrote {write_notebook(CELLS, '05_villanueva2025_centralized.ipynb')}")


if __name__ == "__main__":
    main()
