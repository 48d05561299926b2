"""The study's glue for Villanueva-Machado et al. (2025): instances from our Monte Carlo, result keys, task failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evgrid.core.compare import load_paper_values
from evgrid.core.config import load_section
from evgrid.papers.villanueva2025 import authors, report, study
from evgrid.papers.villanueva2025.devcm import DevcmOptions, check_instance
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
