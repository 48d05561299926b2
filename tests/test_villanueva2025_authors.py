"""The authors' 88 DEVCM runs (Villanueva-Machado et al. 2025) load, validate and obey the data README's relations."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from evgrid.papers.villanueva2025 import authors
from evgrid.papers.villanueva2025.instance import DevcmInstance, InstanceError


@pytest.fixture(scope="module")
def runs() -> dict[str, DevcmInstance]:
    """All 88 runs, loaded (and validated by load_run) once for the module."""
    return {run_id: authors.load_run(run_id) for run_id in authors.run_ids()}


def test_run_ids_order_and_filters():
    ids = authors.run_ids()
    assert len(ids) == 88 == len(set(ids))
    assert ids[0] == "Sc1_min_bus02" and ids[10] == "Sc1_min_bus14" and ids[11] == "Sc1_max_bus02"
    assert ids[-1] == "Sc3-CR_max_bus14"
    assert [i.split("_")[0] for i in ids[::22]] == list(authors.SCENARIOS)
    assert authors.run_ids("Sc1", "min", 2) == ["Sc1_min_bus02"]
    assert authors.run_ids(scenario="Sc3-CR", bus=[14, 2]) == ["Sc3-CR_min_bus02", "Sc3-CR_min_bus14",
                                                              "Sc3-CR_max_bus02", "Sc3-CR_max_bus14"]
    assert len(authors.run_ids(sample="max")) == 44
    with pytest.raises(ValueError, match="bus"):
        authors.run_ids(bus=7)
    runs_csv = authors.read_runs()
    assert runs_csv.index.name == "run" and runs_csv.index.tolist() == ids


def test_all_runs_load_with_shapes_and_weights(runs):
    table = authors.read_runs()
    for run_id, inst in runs.items():
        row = table.loc[run_id]
        n_veh = int(row["n_vehicles"])
        assert inst.name == run_id and inst.bus == row["bus"] == inst.meta["bus"]
        assert (inst.n_scenarios, inst.n_vehicles, inst.n_periods) == (10, n_veh, 48)
        assert inst.price_per_kwh.shape == (20,) and inst.soc_init_kwh.shape == (10, n_veh)
        assert inst.weight_evs.sum() == pytest.approx(row["weighted_evs"])
        assert set(np.unique(inst.weight_evs)) <= {7.0, 10.0, 13.0}
        for key in ("batavmax_kwh", "batavmin_kwh", "maxchg_kw"):
            assert inst.meta[key].shape == (10, 48)
        for key in ("weight_used_in_maxchg", "vehicle_id", "from_bus", "to_bus"):
            assert inst.meta[key].shape == (n_veh,)
        # the run for bus k holds the sample's vehicles that start or end at k, in vehicle_id order
        assert np.all((inst.meta["from_bus"] == inst.bus) | (inst.meta["to_bus"] == inst.bus))
        assert np.all(np.diff(inst.meta["vehicle_id"]) > 0)
        assert inst.dt_h == 0.5 and inst.currency_per_usd == 4.08
        assert inst.meta["Pvmax"] == 150 and inst.meta["SoCmin"] == 12 and inst.meta["SoCmax"] == 76
        assert inst.meta["regsocdeparture"] == 60 and inst.meta["regsocarrive"] == 18


def test_scalars_filled_only_for_runs_without_output(runs):
    table = authors.read_runs()
    missing = {r for r in runs if not table.loc[r, "output_available"]}
    assert len(missing) == 5
    for run_id, inst in runs.items():
        filled = inst.meta["scalars_filled_from_other_runs"]
        assert bool(filled) == (run_id in missing)
        if filled:
            assert {"deltat", "dolarconv", "Pvmax", "Mbig"} <= set(filled)
        expected_slack = None if run_id in missing else run_id == "Sc3-CR_max_bus12"
        assert inst.meta["model_has_cap_slack"] is expected_slack, run_id


def test_fleet_bounds_relations(runs):
    for run_id, inst in runs.items():
        plugged = inst.plugged.astype(float)
        weighted = np.einsum("nvt,v->nt", plugged, inst.weight_evs)
        np.testing.assert_allclose(inst.meta["batavmax_kwh"], 76 * weighted, err_msg=run_id)
        np.testing.assert_allclose(inst.meta["batavmin_kwh"], 12 * weighted, err_msg=run_id)
        misaligned = np.einsum("nvt,v->nt", plugged, inst.meta["weight_used_in_maxchg"])
        np.testing.assert_allclose(inst.meta["maxchg_kw"], 150 * misaligned, err_msg=run_id)
        np.testing.assert_allclose(inst.meta["soc_init_plugged_sum_kwh"],
                                   (inst.soc_init_kwh * inst.plugged[:, :, 0]).sum(axis=1), err_msg=run_id)


def test_vehicle_arrays_relations(runs):
    for run_id, inst in runs.items():
        assert inst.soc_init_kwh.min() >= 12 - 1e-9 and inst.soc_init_kwh.max() <= 76 + 1e-9, run_id
        np.testing.assert_allclose(inst.road_kwh.sum(axis=2) / 1000 / 2, inst.meta["road_energy_one_leg_mwh"],
                                   rtol=1e-12, atol=1e-15, err_msg=run_id)
        assert not np.any((inst.road_kwh > 0) & ~inst.on_road), run_id
        # arrival/departure flags only on plugged slots, at most one each per (n, v)
        assert not np.any(inst.arrival & ~inst.plugged) and not np.any(inst.departure & ~inst.plugged), run_id
        assert inst.arrival.sum(axis=2).max() <= 1 and inst.departure.sum(axis=2).max() <= 1, run_id
        np.testing.assert_allclose(inst.degradation_slope,
                                   0.0006 + 0.0011 * (inst.battery_cost_usd_per_kwh - 100) / 40, err_msg=run_id)


def test_on_road_and_plugged_overlap_count(runs):
    """README quirk 12: 680 (t, v, n) slots are both driving and plugged in (all in 187 always-plugged (v, n))."""
    overlap = sum(int((inst.on_road & inst.plugged).sum()) for inst in runs.values())
    always = sum(int(inst.plugged.all(axis=2).sum()) for inst in runs.values())
    assert overlap == 680 and always == 187


def test_system_series_prices_and_caps(runs):
    first = runs["Sc1_min_bus02"]
    for run_id, inst in runs.items():
        np.testing.assert_array_equal(inst.psys_mw, first.psys_mw, err_msg=run_id)
        np.testing.assert_array_equal(inst.price_per_kwh, first.price_per_kwh, err_msg=run_id)
        np.testing.assert_array_equal(inst.step_lower_mw, first.step_lower_mw, err_msg=run_id)
        np.testing.assert_array_equal(inst.step_upper_mw, first.step_upper_mw, err_msg=run_id)
        np.testing.assert_array_equal(inst.pi, np.full(10, 0.1), err_msg=run_id)
        if inst.meta["scenario"] == "Sc3-CR":
            assert inst.meta["cap_kind"] == "vector" and not inst.cap_includes_system_load, run_id
            assert np.unique(inst.cap_mw).size > 1 and inst.cap_mw.max() < 100, run_id
        else:
            assert inst.meta["cap_kind"] == "scalar" and inst.cap_includes_system_load, run_id
            np.testing.assert_allclose(inst.cap_mw, 259.0, rtol=1e-12, err_msg=run_id)
    lam = first.price_per_kwh
    assert lam[0] == 0 and first.step_lower_mw[0] == first.step_upper_mw[0] == 0
    assert np.all(np.diff(lam[1:]) > 0) and lam[1] > 0
    assert first.step_upper_mw[-1] == pytest.approx(259.0)
    # Psys exceeds the 259 MW breakpoint at t = 23, 24 (quirk 8)
    assert np.flatnonzero(first.psys_mw > 259.0).tolist() == [22, 23]


def test_pem_profiles_and_outcomes():
    pem = authors.authors_pem_mw("Sc1_min_bus02")
    assert pem.shape == (48,)
    assert pem.sum() * 0.5 == pytest.approx(2.2107, abs=5e-4)
    outcome = authors.authors_outcome("Sc1_min_bus02")
    assert outcome["pem_energy_mwh_out_gdx"] == pytest.approx(2.2107, abs=5e-4)
    assert set(outcome) == set(authors.OUTCOME_COLUMNS)
    assert outcome["output_available"] is True and outcome["duplicate_of_run"] is None
    assert outcome["binaries"] == 10560 and outcome["cplex_mip_status"] == "time limit exceeded"
    missing = authors.authors_outcome("Sc3_min_bus02")
    assert missing["output_available"] is False and missing["rows"] is None and np.isnan(missing["rel_gap"])
    assert authors.authors_outcome("Sc1_max_bus13")["duplicate_of_run"] == "Sc1_max_bus11"
    np.testing.assert_array_equal(authors.authors_pem_mw("Sc1_max_bus13"), authors.authors_pem_mw("Sc1_max_bus11"))
    daily = authors.authors_daily_energy()
    assert len(daily) == 88 and daily["run"].tolist() == authors.run_ids()
    assert list(daily.columns[:4]) == ["run", "scenario", "sample", "bus"]
    assert daily.set_index("run").loc["Sc1_min_bus02", "energy_mwh"] == pytest.approx(2.2107, abs=5e-4)
    assert len(authors.read_pem_profiles()) == 88 * 48


def test_unknown_run_id_is_named():
    for bad in ("Sc1_min_bus2", "Sc4_min_bus02", "Sc1_min_bus07"):
        with pytest.raises((ValueError, KeyError), match=bad) as info:
            authors.load_run(bad)
        assert "Sc1_min_bus02" in str(info.value)
    with pytest.raises((ValueError, KeyError), match="Sc1_mid_bus02"):
        authors.authors_outcome("Sc1_mid_bus02")


def test_cached_load_is_fast(runs):
    start = time.perf_counter()
    authors.load_run("Sc3_max_bus04")
    assert time.perf_counter() - start < 0.5


def test_price_steps_not_increasing_raise(runs):
    inst = runs["Sc1_min_bus02"]
    lam = inst.price_per_kwh.copy()
    lam[5] = lam[4]
    with pytest.raises(InstanceError, match="price steps must increase"):
        dataclasses.replace(inst, price_per_kwh=lam).validate()


def test_zero_scenarios_and_no_vehicles_raise(runs):
    inst = runs["Sc1_min_bus02"]
    with pytest.raises(InstanceError, match="scenario count N is 0"):
        dataclasses.replace(inst, plugged=inst.plugged[:0]).validate()
    with pytest.raises(InstanceError, match="has no vehicles"):
        dataclasses.replace(inst, plugged=inst.plugged[:, :0]).validate()
