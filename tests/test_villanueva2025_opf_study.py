"""The CEVCM OPF study of Villanueva-Machado et al. (2025): its files, their stability, and the paper's table keys.

The study is run on shortened days (the first N_SHORT periods: opf.N_PERIODS patched, as in
test_villanueva2025_opf) for the day without EVs and the authors' Sc3 min profiles, and the caps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evgrid.core.compare import load_paper_values
from evgrid.core.parallel import TaskFailedError
from evgrid.papers.villanueva2025 import opf
from evgrid.papers.villanueva2025 import opf_study as study
from evgrid.papers.villanueva2025.authors import LOAD_BUSES, SAMPLES, SCENARIOS

N_SHORT = 4
FILES = ("days.csv", "metrics.csv", "caps.csv")


def short_cases() -> list[study.StudyCase]:
    pem = opf.authors_day("Sc3", "min").pem_mw
    pem = pem[pem["t"] <= N_SHORT].reset_index(drop=True)
    return [study.StudyCase("none"), study.StudyCase("authors_paper", "Sc3", "min", pem)]


@contextmanager
def short_day(root: Path) -> Iterator[pytest.MonkeyPatch]:
    """Days of N_SHORT periods, outputs under ``root``."""
    opf.read_load_factor()  # read (and cached) with 48 periods; the days get LF_1..LF_N_SHORT
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(opf, "N_PERIODS", N_SHORT)
        mp.setenv("EVGRID_OUTPUT_ROOT", str(root))
        yield mp


def run_short() -> dict[str, pd.DataFrame]:
    return study.run_study(parallel={"workers": 1}, cases=short_cases(),
                           load_factor=opf.read_load_factor()[:N_SHORT], progress=False)


def contents(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> dict:
    """The shortened study run once; its returned tables, folder, file bytes and the raw task results."""
    root = tmp_path_factory.mktemp("opf_study")
    raw: list[pd.DataFrame] = []
    real = study.solve_task

    def recording(task):
        raw.append(real(task))
        return raw[-1]

    with short_day(root) as mp:
        mp.setattr(study, "solve_task", recording)
        out = run_short()
    folder = root / "results" / "villanueva2025" / "opf"
    return {"root": root, "folder": folder, "out": out, "bytes": contents(folder), "raw": raw}


# --------------------------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------------------------


def test_files_columns_and_no_timings(first_run):
    folder = first_run["folder"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no temporary file left behind
    days = pd.read_csv(folder / "days.csv")
    metrics = pd.read_csv(folder / "metrics.csv")
    caps = pd.read_csv(folder / "caps.csv")
    assert tuple(days.columns) == study.DAYS_COLUMNS
    assert tuple(metrics.columns) == study.METRICS_COLUMNS
    assert tuple(caps.columns) == study.CAPS_COLUMNS
    for table in (days, metrics, caps):
        assert not [c for c in table.columns if c.endswith("_s") or "time" in c or "second" in c]
    assert len(days) == 2 * N_SHORT and len(metrics) == 2 and len(caps) == N_SHORT * len(LOAD_BUSES)
    assert days["profiles"].tolist() == ["none"] * N_SHORT + ["authors_paper"] * N_SHORT
    assert days["scenario"].isna().sum() == N_SHORT and (days["scenario"] == "Sc3").sum() == N_SHORT
    assert days["t"].tolist() == list(range(1, N_SHORT + 1)) * 2
    assert days["converged"].all() and caps["converged"].all()


def test_written_values(first_run):
    metrics = first_run["out"]["metrics"].set_index("profiles")
    days = first_run["out"]["days"]
    pem = short_cases()[1].pem_mw
    ev_energy = pem["pem_mw"].sum() * 0.5
    assert metrics.at["authors_paper", "ev_energy_mwh"] == pytest.approx(ev_energy, abs=1e-6)
    assert metrics.at["authors_paper", "energy_demand_mwh"] == pytest.approx(
        metrics.at["none", "energy_demand_mwh"] + ev_energy, abs=1e-5)
    assert metrics.at["none", "energy_demand_mwh"] == pytest.approx(259.0 * opf.read_load_factor()[:N_SHORT].sum() * 0.5)
    assert (metrics["nse_mwh"] == 0).all() and (metrics["failed_periods"] == 0).all()
    assert metrics["losses_mwh"].between(5.0 * N_SHORT * 0.5, 20.0 * N_SHORT * 0.5).all()
    # powers are rounded to 1e-6 MW: solver noise near 0 is written as 0
    assert (days["nsp_mw"] == 0).all() and (days["balance_residual_mw"] == 0).all()
    # the caps beside the authors': the same periods (t = 1..4), sums within 0.05 MW (test_villanueva2025_opf)
    caps = first_run["out"]["caps"]
    sums = caps.groupby("t")[["cap_mw", "authors_cap_mw"]].sum()
    np.testing.assert_allclose(sums["cap_mw"], sums["authors_cap_mw"], rtol=0, atol=0.05)
    assert caps["authors_cap_mw"].notna().all()


def test_a_rerun_is_byte_identical(first_run):
    with short_day(first_run["root"]):
        run_short()
    assert contents(first_run["folder"]) == first_run["bytes"]


def test_a_failed_solve_leaves_the_earlier_files(first_run):
    def failing(task):
        if task[0] == "caps":
            raise RuntimeError("injected failure")
        return first_run["raw"][0]

    with short_day(first_run["root"]) as mp:
        mp.setattr(study, "solve_task", failing)
        with pytest.raises(TaskFailedError, match="injected failure"):
            run_short()
    assert contents(first_run["folder"]) == first_run["bytes"]
    assert sorted(p.name for p in first_run["folder"].iterdir()) == sorted(FILES)


def test_a_failed_write_leaves_the_earlier_file(first_run):
    """metrics.csv's write dies halfway: its earlier version stays, and no temporary file is left."""
    raw = iter(first_run["raw"])
    real_to_csv = pd.DataFrame.to_csv

    def dying_to_csv(self, path, *args, **kwargs):
        if "metrics" in Path(path).name:
            Path(path).write_text("profiles,scen")
            raise OSError("disk full (injected)")
        return real_to_csv(self, path, *args, **kwargs)

    with short_day(first_run["root"]) as mp:
        mp.setattr(study, "solve_task", lambda task: next(raw))
        mp.setattr(pd.DataFrame, "to_csv", dying_to_csv)
        with pytest.raises(OSError, match="injected"):
            run_short()
    assert contents(first_run["folder"]) == first_run["bytes"]
    assert sorted(p.name for p in first_run["folder"].iterdir()) == sorted(FILES)


# --------------------------------------------------------------------------------------------
# the paper's tables
# --------------------------------------------------------------------------------------------


def paper_keys(table: str) -> set[tuple[str, str]]:
    values = load_paper_values("villanueva2025")
    rows = values[values["table"] == table]
    return set(zip(rows["row"], rows["column"], strict=True))


def synthetic_metrics(profiles: str, scenarios=SCENARIOS) -> pd.DataFrame:
    """A metrics.csv with the no-EV day and every (scenario, sample) of one profile set, distinct values."""
    cases = [("none", "", "")] + [(profiles, sc, sample) for sc in scenarios for sample in SAMPLES]
    rows = []
    for i, case in enumerate(cases):
        row = dict(zip(study.CASE_COLUMNS, case, strict=True))
        row.update({key: 100.0 * i + j for j, key in enumerate(study.METRICS_COLUMNS[3:])})
        rows.append(row)
    return pd.DataFrame(rows)[list(study.METRICS_COLUMNS)]


def test_table_labels_are_the_paper_values_files():
    metrics = synthetic_metrics("authors_paper")
    t3 = study.table3_values(metrics)
    t5 = study.table5_values(metrics)
    assert list(t3.columns) == ["table", "row", "column", "computed"]
    assert (t3["table"] == "Table 3").all() and (t5["table"] == "Table 5").all()
    assert not t3.duplicated(["row", "column"]).any() and not t5.duplicated(["row", "column"]).any()
    assert set(zip(t3["row"], t3["column"], strict=True)) == paper_keys("Table 3")
    assert set(zip(t5["row"], t5["column"], strict=True)) == paper_keys("Table 5")
    # each cell is its case's metric
    cell = t3.set_index(["row", "column"])["computed"]
    sc2max = metrics[(metrics["scenario"] == "Sc2") & (metrics["sample"] == "max")].iloc[0]
    assert cell[("Load factor", "Scenario 2 max")] == sc2max["load_factor"]
    assert cell[("Losses", "Without EVs")] == metrics.iloc[0]["losses_mwh"]
    assert cell[("NSP bus", "Scenario 3 min")] == metrics.iloc[5]["nsp_bus"]
    cell5 = t5.set_index(["row", "column"])["computed"]
    assert cell5[("Peak load", "Scenario 3 CR max")] == metrics.iloc[8]["peak_load_mw"]


def test_tables_for_other_profile_sets_and_the_written_file(first_run):
    own = synthetic_metrics("own", scenarios=("Sc1", "Sc2", "Sc3"))
    t3_own = study.table3_values(own, "own")
    assert set(zip(t3_own["row"], t3_own["column"], strict=True)) == paper_keys("Table 3")
    assert set(study.table5_values(own, "own")["column"]) == {"Without EVs"}  # own has no Sc3-CR
    assert study.table3_values(own, "authors_resolved")["column"].unique().tolist() == ["Without EVs"]
    with pytest.raises(ValueError, match="profiles = 'none'"):
        study.table3_values(own, "none")
    # metrics.csv as written (the no-EV day's empty scenario reads back as NaN)
    written = pd.read_csv(first_run["folder"] / "metrics.csv")
    t3 = study.table3_values(written)
    assert set(t3["column"]) == {"Without EVs", "Scenario 3 min"}
    assert t3[t3["row"] == "NSP bus"]["column"].tolist() == ["Scenario 3 min"]
    assert len(t3) == 8 + 7


# --------------------------------------------------------------------------------------------
# cases, profile files and the CLI
# --------------------------------------------------------------------------------------------


def profile_file(scenario: str, samples=SAMPLES, *, pricings=("corrected", "authors")) -> pd.DataFrame:
    rows = []
    for sample in samples:
        for pricing in pricings:
            for bus in LOAD_BUSES:
                for t in range(1, 49):
                    value = 0.01 * bus + 0.001 * t + (5.0 if pricing == "authors" else 0.0)
                    rows.append((scenario, sample, bus, pricing, t, value))
    return pd.DataFrame(rows, columns=["scenario", "sample", "bus", "pricing", "t", "p_em_mw"])


def test_study_cases_read_the_profile_files_present(tmp_path):
    (tmp_path / "authors_runs").mkdir()
    (tmp_path / "own_runs").mkdir()
    resolved = profile_file("Sc1")
    resolved.loc[(resolved["sample"] == "max") & (resolved["bus"] == 6) & (resolved["t"] == 9), "p_em_mw"] = np.nan
    resolved.to_csv(tmp_path / "authors_runs" / "Sc1_profiles.csv", index=False)
    own = profile_file("Sc2", pricings=("corrected",))
    own = own[~((own["sample"] == "max") & (own["bus"] == 13))]
    own.to_csv(tmp_path / "own_runs" / "Sc2_profiles.csv", index=False)
    cases, skipped = study.study_cases(tmp_path)
    labels = [c.label for c in cases]
    assert labels[0] == "none" and cases[0].pem_mw is None
    assert labels[1:9] == [f"authors_paper {sc} {s}" for sc in SCENARIOS for s in SAMPLES]
    assert labels[9:] == ["authors_resolved Sc1 min", "own Sc2 min"]
    assert len(skipped) == 2
    assert "authors_resolved Sc1 max" in skipped[0] and "not finite at bus [6]" in skipped[0]
    assert "own Sc2 max" in skipped[1] and "no profile for bus [13]" in skipped[1]
    # the corrected pricing's P^EM, in solve_day's long form
    pem = cases[9].pem_mw
    assert list(pem.columns) == ["bus", "t", "pem_mw"] and len(pem) == 48 * 11
    assert pem.set_index(["bus", "t"]).loc[(9, 10), "pem_mw"] == pytest.approx(0.1)
    # the authors' own profiles are theirs
    authors = opf.authors_day("Sc2", "max").pem_mw
    pd.testing.assert_frame_equal(cases[4].pem_mw, authors)


def test_study_case_and_task_checks():
    with pytest.raises(ValueError, match="profiles = 'bogus'"):
        study.StudyCase("bogus")
    with pytest.raises(ValueError, match="only it, has no P"):
        study.StudyCase("own", "Sc1", "min")
    with pytest.raises(ValueError, match="unknown task 'dayz'"):
        study.solve_task(("dayz", None, opf.OpfOptions(), None))
    with pytest.raises(ValueError, match="profiles = 'none'"):
        study.read_profile_set(".", "none")


def test_cli_runs_the_study(monkeypatch):
    calls = []
    monkeypatch.setattr(study, "run_study", lambda params, **kw: calls.append((params, kw)))
    assert study.main(["--no-progress", "--params", "other.yaml"]) == 0
    assert study.main(["--caps-only"]) == 0
    assert study.main(["--no-caps"]) == 0
    assert calls == [("other.yaml", {"progress": False, "caps": True, "days": True}),
                     ("params.yaml", {"progress": True, "caps": True, "days": False}),
                     ("params.yaml", {"progress": True, "caps": False, "days": True})]
    with pytest.raises(SystemExit):
        study.main(["--caps-only", "--no-caps"])


def test_a_study_with_nothing_to_solve_is_refused():
    with pytest.raises(ValueError, match="nothing to solve"):
        study.run_study(caps=False, days=False)


# --------------------------------------------------------------------------------------------
# reading the files back; the authors' copied periods (notebook 05)
# --------------------------------------------------------------------------------------------


#: The periods the authors' OPF copied from the period before (notes §4, Table 3 and 5 checks).
NOTES_COPIED = {("Sc1", "min"): [], ("Sc1", "max"): [], ("Sc2", "min"): [], ("Sc2", "max"): [23, 24, 35, 40],
                ("Sc3", "min"): [23, 24, 39], ("Sc3", "max"): [23], ("Sc3-CR", "min"): [3, 15, 19, 25, 31],
                ("Sc3-CR", "max"): [39, 41]}
_PAPER_COLUMN = {"Sc1": ("Table 3", "Scenario 1"), "Sc2": ("Table 3", "Scenario 2"), "Sc3": ("Table 3", "Scenario 3"),
                 "Sc3-CR": ("Table 5", "Scenario 3 CR")}


def test_read_study_gives_text_cases_and_typed_columns(tmp_path):
    from evgrid.core.outputs import write_csv

    days = pd.DataFrame({c: [0.0, 0.0] for c in study.DAYS_COLUMNS})
    days[list(study.CASE_COLUMNS)] = [["none", "", ""], ["own", "Sc1", "min"]]
    days[["t", "nsp_bus", "converged", "init", "error"]] = [[1, 0, True, "flat", ""], [1, 14, False, "", "flat: x"]]
    metrics = pd.DataFrame({c: [1.5] for c in study.METRICS_COLUMNS}).assign(profiles="none", scenario="", sample="")
    caps = pd.DataFrame({c: [2.0] for c in study.CAPS_COLUMNS}).assign(converged=True)
    for name, table in (("days", days), ("metrics", metrics), ("caps", caps)):
        write_csv(table, tmp_path / f"{name}.csv")
    out = study.read_study(tmp_path)
    assert set(out) == {"days", "metrics", "caps"}
    assert out["days"]["scenario"].tolist() == ["", "Sc1"] and out["metrics"]["sample"].tolist() == [""]
    assert out["days"]["error"].tolist() == ["", "flat: x"] and out["days"]["converged"].tolist() == [True, False]
    assert str(out["days"]["nsp_bus"].dtype) == "Int64" and out["caps"]["converged"].dtype == bool
    # the tables read back as the study's helpers take them
    assert study.table3_values(out["metrics"])["column"].unique().tolist() == ["Without EVs"]
    (tmp_path / "caps.csv").write_text("t,bus\n1,2\n")
    with pytest.raises(ValueError, match="caps.csv: columns"):
        study.read_study(tmp_path)
    (tmp_path / "caps.csv").unlink()
    with pytest.raises(FileNotFoundError, match="caps.csv does not exist"):
        study.read_study(tmp_path)


def test_days_hold_every_bus_voltage(first_run):
    days = pd.read_csv(first_run["folder"] / "days.csv")
    vm = days[list(opf.VM_BUS_COLUMNS)]
    assert vm.notna().all().all() and ((vm >= 0.95 - 1e-6) & (vm <= 1.05 + 1e-6)).all().all()
    np.testing.assert_allclose(vm.min(axis=1), days["vm_min_pu"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(vm.max(axis=1), days["vm_max_pu"], rtol=0, atol=1e-12)


def test_read_study_reads_a_days_file_written_before_the_bus_voltages(tmp_path):
    from evgrid.core.outputs import write_csv

    old = [c for c in study.DAYS_COLUMNS if c not in opf.VM_BUS_COLUMNS]
    days = pd.DataFrame({c: [0.0] for c in old}).assign(profiles="none", scenario="", sample="", converged=True,
                                                        init="flat", error="", nsp_bus=0)
    write_csv(days, tmp_path / "days.csv")
    write_csv(pd.DataFrame({c: [1.5] for c in study.METRICS_COLUMNS}), tmp_path / "metrics.csv")
    write_csv(pd.DataFrame({c: [2.0] for c in study.CAPS_COLUMNS}).assign(converged=True), tmp_path / "caps.csv")
    out = study.read_study(tmp_path)["days"]
    assert tuple(out.columns) == study.DAYS_COLUMNS
    assert out[list(opf.VM_BUS_COLUMNS)].isna().all().all() and out["vm_min_pu"].tolist() == [0.0]
    write_csv(days.drop(columns="vm_min_pu"), tmp_path / "days.csv")  # any other layout still fails
    with pytest.raises(ValueError, match="days.csv: columns"):
        study.read_study(tmp_path)


def test_bus_loads_are_the_network_loads_times_the_load_factor():
    lf = opf.read_load_factor()
    loads = study.bus_loads()
    assert len(loads) == 48 * len(LOAD_BUSES) and (loads["pem_mw"] == 0).all()
    np.testing.assert_allclose(loads.groupby("t")["pd_mw"].sum(), 259.0 * lf, rtol=0, atol=1e-9)
    assert loads.set_index(["t", "bus"]).at[(30, 3), "pd_mw"] == pytest.approx(94.2 * lf[29])
    pem = pd.DataFrame({"bus": [14, 3], "t": [1, 2], "pem_mw": [-20.0, 1.5]})
    with_ev = study.bus_loads(pem).set_index(["t", "bus"])
    assert with_ev.at[(1, 14), "net_mw"] == pytest.approx(14.9 * lf[0] - 20.0)
    assert with_ev.at[(2, 3), "net_mw"] == pytest.approx(94.2 * lf[1] + 1.5)
    assert study.negative_net_load_periods(pem) == [1]
    with pytest.raises(ValueError, match="more than once"):
        study.bus_loads(pd.concat([pem, pem]))


@pytest.mark.parametrize("case", list(NOTES_COPIED), ids=lambda c: f"{c[0]}_{c[1]}")
def test_the_authors_copied_exactly_the_periods_with_a_negative_bus_load(case):
    """Copying those periods from the one before reproduces the paper's energy demand (Tables 3 and 5)."""
    scenario, sample = case
    pem = opf.authors_day(scenario, sample).pem_mw
    periods = study.negative_net_load_periods(pem)
    assert periods == NOTES_COPIED[case]
    loads = study.bus_loads(pem)
    day = loads.groupby("t", as_index=False)["net_mw"].sum().rename(columns={"net_mw": "pd_mw"})
    copied = study.copy_previous_periods(day, periods)
    table, column = _PAPER_COLUMN[scenario]
    values = load_paper_values("villanueva2025").set_index(["table", "row", "column"])["value"]
    paper = float(values[(table, "Energy demand", f"{column} {sample}")])
    # the paper's energies are 2 x the authors' summaries (notes §4), which round to 0.01 MWh
    assert copied["pd_mw"].sum() * opf.DT_H == pytest.approx(paper, abs=0.011)
    if periods:  # without the copies the demand is the profiles' own, and differs
        assert abs(day["pd_mw"].sum() * opf.DT_H - paper) > 10.0


def test_copy_previous_periods_repeats_the_last_solved_period():
    day = pd.DataFrame({"t": [1, 2, 3, 4, 5], "pd_mw": [10.0, 20.0, 30.0, 40.0, 50.0],
                        "converged": [True, True, False, False, True], "nsp_bus": pd.array([0, 14, 0, 0, 0], "Int64")})
    out = study.copy_previous_periods(day.iloc[::-1], [4, 3])
    assert out["t"].tolist() == [1, 2, 3, 4, 5]
    assert out["pd_mw"].tolist() == [10.0, 20.0, 20.0, 20.0, 50.0]
    assert out["converged"].tolist() == [True, True, True, True, True]
    assert out["nsp_bus"].tolist() == [0, 14, 14, 14, 0] and out.dtypes.equals(day.dtypes)
    assert day["pd_mw"].tolist()[2] == 30.0  # the input is left as it was
    with pytest.raises(ValueError, match="t = 1 cannot be copied"):
        study.copy_previous_periods(day, [1])
    with pytest.raises(ValueError, match="t = 7 cannot be copied"):
        study.copy_previous_periods(day, [7])


def test_text_values_from_metrics_and_days():
    metrics = synthetic_metrics("authors_paper")
    metrics["losses_mwh"] = [200.0, 0, 0, 0, 0, 210.0, 0, 220.0, 190.0]
    metrics["nse_mwh"] = 7.25
    days = pd.DataFrame({"profiles": "authors_paper", "scenario": "Sc3", "sample": "min", "t": [1, 2, 3, 4],
                         "nsp_bus": pd.array([0, 14, 14, 0], "Int64")})
    text = study.text_values(metrics, days).set_index("row")
    assert (text["table"] == "Text").all()
    assert text.at["Loss increase, Scenario 3 vs BAU", "computed"] == pytest.approx(5.0)
    assert text.at["NSE instances, Scenario 3", "computed"] == 2
    assert text.at["NSE DEVCM, Scenario 3", "computed"] == 7.25
    assert text.at["Loss increase, Scenario 3 CR min", "computed"] == pytest.approx(10.0)
    assert text.at["Loss increase, Scenario 3 CR max", "computed"] == pytest.approx(-5.0)
    assert text.at["Loss increase, Scenario 3 CR max", "column"] == "Sec. 3.2.1"
    keys = set(zip(load_paper_values("villanueva2025")["table"], load_paper_values("villanueva2025")["row"],
                   load_paper_values("villanueva2025")["column"], strict=True))
    assert {("Text", r, c) for r, c in zip(text.index, text["column"], strict=True)} <= keys
    # a profile set without Sc3 gives none of them
    assert study.text_values(synthetic_metrics("own", ("Sc1",)), days, "own").empty
