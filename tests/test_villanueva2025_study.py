"""The study's glue for Villanueva-Machado et al. (2025): instances from our Monte Carlo, result keys, task failures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evgrid.core.compare import load_paper_values
from evgrid.core.config import load_section
from evgrid.papers.villanueva2025 import authors, report, study
from evgrid.papers.villanueva2025.devcm import DevcmOptions, check_instance, least_cap_excess
from evgrid.papers.villanueva2025.mcs import McsOptions, rt_redraws, simulate_scenario


@pytest.fixture(scope="module")
def params():
    return load_section("villanueva2025")


def test_instances_from_our_monte_carlo_are_valid_at_every_bus(params):
    sc = simulate_scenario(params.mcs, 1)
    red = rt_redraws(sc, "max", seed=params.mcs.seed)
    system = study.system_data()
    total = 0.0
    for bus in authors.LOAD_BUSES:
        at = red.at_bus(bus)
        inst = study.instance_from_mcs(at, name=f"b{bus}", bus=bus, seed=bus, system=system)
        check_instance(inst, DevcmOptions())  # raises if any vehicle cannot make its trips
        assert inst.n_scenarios == params.mcs.n_rt_scenarios
        assert 100 <= inst.battery_cost_usd_per_kwh.min() and inst.battery_cost_usd_per_kwh.max() <= 140
        assert np.allclose(inst.degradation_slope, 0.0006 + 0.0011 * (inst.battery_cost_usd_per_kwh - 100) / 40)
        assert ((12 <= inst.soc_init_kwh) & (inst.soc_init_kwh <= 76)).all()
        total += inst.weight_evs.sum()
    # every vehicle is seen by its home and its work aggregator
    assert total == 2 * params.mcs.n_evs[0]


def test_the_same_seed_gives_the_same_instance(params):
    sc = simulate_scenario(params.mcs, 1)
    at = rt_redraws(sc, "min", seed=params.mcs.seed).at_bus(4)
    a = study.instance_from_mcs(at, name="a", bus=4, seed=7)
    b = study.instance_from_mcs(at, name="a", bus=4, seed=7)
    assert np.array_equal(a.soc_init_kwh, b.soc_init_kwh)
    assert np.array_equal(a.battery_cost_usd_per_kwh, b.battery_cost_usd_per_kwh)


def test_every_computed_key_is_a_key_of_the_paper(params):
    paper = load_paper_values("villanueva2025")
    keys = set(zip(paper["table"], paper["row"], paper["column"], strict=True))
    runs = pd.DataFrame({"scenario": ["Sc1", "Sc3-CR"], "sample": ["max", "min"], "bus": [13, 2],
                         "pricing": ["corrected", "corrected"], "daily_energy_mwh": [1.5, 2.5]})
    computed = pd.concat([report.table1_values(), report.table2_values(runs),
                          report.text_values(params, None)], ignore_index=True)
    missing = [k for k in zip(computed["table"], computed["row"], computed["column"], strict=True) if k not in keys]
    assert not missing
    t2 = report.table2_values(runs).set_index(["table", "row", "column"])["computed"]
    assert t2[("Table 2", "Bus 13", "Scenario 1 max")] == 1.5
    assert t2[("Table 4", "Bus 2", "Scenario 3 CR min")] == 2.5


def test_a_run_that_fails_is_kept_as_failed_with_its_reason(params):
    sc = simulate_scenario(McsOptions(n_samples=(3, 3, 3)), 1)
    at = rt_redraws(sc, "min", seed=1).at_bus(2)
    inst = study.instance_from_mcs(at, name="bad", bus=2, seed=1)
    inst = type(inst)(**{**inst.__dict__, "road_kwh": inst.road_kwh * 50})  # trips no battery can drive
    out = study.solve_task({"instance": inst, "devcm": params.devcm.model_dump(), "pricings": ["corrected", "authors"],
                            "time_limit_s": {"corrected": 5, "authors": 5}, "mip_gap": 0.01})
    assert [o["row"]["pricing"] for o in out] == ["corrected", "authors"]
    for o in out:
        assert o["row"]["status"].startswith("failed: InstanceError")
        assert np.isnan(o["p_em_mw"]).all()
    # the table keeps the run's identity even for a failed solve
    table, profiles = study._tables([out], [{"run": "bad", "scenario": "Sc1", "sample": "min", "bus": 2}])
    assert table["run"].tolist() == ["bad", "bad"] and len(profiles) == 96


def test_the_balance_columns_flag_a_residual_above_the_tolerance():
    good = {"soc": 3e-9, "cycle": 0.0, "fleet": 1e-8, "balance": 2e-7, "degradation": 4e-7}
    row = study.balance_row(good)
    assert row["balance_ok"] and row["soc_residual_kwh"] == 0.0 and set(row) == {*study.BALANCE_COLUMNS.values(),
                                                                                  "balance_ok"}
    assert not study.balance_row({**good, "cycle": 0.01})["balance_ok"]
    assert not study.balance_row({**good, "degradation": -0.5})["balance_ok"]  # priced below the SoC drops


def test_a_solved_run_carries_its_energy_balance(params):
    sc = simulate_scenario(McsOptions(n_samples=(3, 3, 3), n_rt_scenarios=2), 1)
    at = rt_redraws(sc, "min", seed=1).at_bus(12)
    inst = study.instance_from_mcs(at, name="b12", bus=12, seed=1)
    out = study.solve_task({"instance": inst, "devcm": params.devcm.model_dump(), "pricings": ["corrected"],
                            "time_limit_s": {"corrected": 20}, "mip_gap": 0.01})
    row = out[0]["row"]
    assert row["status"] == "bounds" and row["balance_ok"], row
    assert row["schedule"] in ("restriction", "relaxation")
    table, _ = study._tables([out], [{"run": "b12", "scenario": "Sc1", "sample": "min", "bus": 12}])
    assert [c for c in study.RUN_COLUMNS if c in table] == [c for c in table.columns if c in study.RUN_COLUMNS]


def test_the_aggregators_together_recover_every_vehicles_road_energy_once(params):
    """Each vehicle joins its home and its work aggregator, and each recovers road_share of its day's driving:
    with the default 0.5 the eleven aggregators together recover the fleet's road energy exactly once."""
    sc = simulate_scenario(params.mcs, 1)
    red = rt_redraws(sc, "min", seed=params.mcs.seed)
    share = DevcmOptions(**params.devcm.model_dump()).road_share
    assert share == 0.5
    recovered = sum(share * (red.at_bus(bus)["weight_evs"][None, :, None] * red.at_bus(bus)["road_kwh"]).sum()
                    for bus in authors.LOAD_BUSES)
    fleet = (red.weight_evs[None, :, None] * red.road_kwh).sum()
    assert recovered == pytest.approx(fleet, rel=1e-12)


def _write_caps(root, frame):
    folder = root / "results" / "opf"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "caps.csv", index=False)


def test_the_caps_are_read_per_load_bus_and_refused_when_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="caps-only"):
        study.read_caps("results")
    full = pd.DataFrame([{"t": t, "bus": b, "cap_mw": 0.1 * b + 0.001 * t} for t in range(1, 49)
                         for b in authors.LOAD_BUSES])
    _write_caps(tmp_path, full)
    caps = study.read_caps("results")
    assert sorted(caps) == list(authors.LOAD_BUSES)
    assert caps[14][0] == pytest.approx(1.401) and len(caps[14]) == 48
    _write_caps(tmp_path, full[full["bus"] != 12])
    with pytest.raises(ValueError, match="bus 12 has caps for periods"):
        study.read_caps("results")
    _write_caps(tmp_path, full[~((full["bus"] == 5) & (full["t"] == 7))])
    with pytest.raises(ValueError, match=r"bus 5 .*expected 1..48"):
        study.read_caps("results")
    _write_caps(tmp_path, pd.concat([full, pd.DataFrame([{"t": 1, "bus": 1, "cap_mw": 1.0}])]))
    with pytest.raises(ValueError, match=r"buses \[1\], which carry no load"):
        study.read_caps("results")
    nan = full.copy()
    nan.loc[0, "cap_mw"] = np.nan
    _write_caps(tmp_path, nan)
    with pytest.raises(ValueError, match="not finite"):
        study.read_caps("results")


def test_the_cli_runs_the_capped_scenario(monkeypatch):
    calls = []
    monkeypatch.setattr(study, "run_own", lambda n, params, **kw: calls.append((n, kw["capped"])))
    assert study.main(["own", "3-CR", "--no-progress"]) == 0
    assert study.main(["own", "2", "--no-progress"]) == 0
    assert calls == [(3, True), (2, False)]
    with pytest.raises(SystemExit):
        study.main(["own", "2-CR"])


def test_the_authors_road_energy_is_the_weighted_road_energy_of_their_instances():
    table = authors.authors_road_energy().set_index("run")
    assert len(table) == 88
    for run in ("Sc1_min_bus02", "Sc3-CR_max_bus12"):
        inst = authors.load_run(run)
        expect = (inst.weight_evs[None, :, None] * inst.road_kwh).sum() / inst.n_scenarios / 1000.0
        assert table.loc[run, "road_energy_mwh"] == pytest.approx(expect, rel=1e-12)


def test_a_capped_run_its_hard_caps_make_infeasible_is_solved_under_raised_caps(params):
    sc = simulate_scenario(McsOptions(n_samples=(3, 3, 3)), 1)
    at = rt_redraws(sc, "min", seed=1).at_bus(5)
    inst = study.instance_from_mcs(at, name="tight", bus=5, seed=1)
    inst = replace(inst, cap_mw=np.full(48, 0.001), cap_includes_system_load=False)  # far below the fleet's need
    task = {"instance": inst, "devcm": params.devcm.model_dump(), "pricings": ["corrected"],
            "time_limit_s": {"corrected": 8}, "mip_gap": 0.05}
    hard = study.solve_task(task)[0]
    assert hard["row"]["status"].startswith("failed: InstanceError") and "MWh short" in hard["row"]["status"]
    raised = study.solve_task({**task, "raise_infeasible_caps": True})[0]
    row = raised["row"]
    assert row["status"].startswith("raised caps (") and "MWh short" in row["status"]
    need = 0.5 * (inst.weight_evs[None, :, None] * inst.road_kwh).sum(axis=(1, 2)).max() / 0.9 / 1000.0
    room = 0.001 * 48 * 0.5
    # the least excess: at least what the caps leave short over the day, and not much more
    assert need - room - 1e-6 <= row["cap_excess_mwh"] <= need
    assert row["balance_ok"] and np.isfinite(raised["p_em_mw"]).all() and row["objective_usd"] is not None
    assert set(study.RUN_COLUMNS) <= set(row) | {"run", "scenario", "sample", "bus"}


def test_the_least_cap_excess_is_zero_where_the_caps_hold_and_refuses_an_uncapped_run(params):
    sc = simulate_scenario(McsOptions(n_samples=(3, 3, 3)), 1)
    inst = study.instance_from_mcs(rt_redraws(sc, "min", seed=1).at_bus(5), name="roomy", bus=5, seed=1)
    with pytest.raises(ValueError, match="not a capped instance"):
        least_cap_excess(inst)
    roomy = replace(inst, cap_mw=np.full(48, 50.0), cap_includes_system_load=False)
    assert (least_cap_excess(roomy) == 0).all()
