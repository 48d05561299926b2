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
    assert calls == [("other.yaml", {"progress": False})]
