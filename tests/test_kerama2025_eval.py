"""Kerama (2025) Table 2 metrics from AC power flows: baseline and the model's schedule."""

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from conftest import make_small_kerama, solve_small_kerama
from evgrid.papers.kerama2025.case import DT_H
from evgrid.papers.kerama2025.evaluate import (
    baseline_schedule,
    distflow_vs_ac,
    evaluate,
    net_load_tables,
)
from evgrid.papers.kerama2025.model import schedule_from_model

_small = make_small_kerama


@pytest.fixture(scope="module")
def baseline():
    case = _small()
    schedule = baseline_schedule(case)
    return case, schedule, evaluate(case, schedule)


@pytest.fixture(scope="module")
def solved():
    # Any incumbent of the robust model satisfies its DistFlow limits, so a
    # 1 % gap is enough to test the AC check of its schedule.
    case = _small(n_scenarios=1)
    model, _info, result = solve_small_kerama(case, mip_gap=0.01)
    return case, model, result


def test_baseline_charges_every_ev_from_arrival_until_full():
    case = _small()
    for charge_to, target in (("full", "e_max_kwh"), ("required", "e_req_kwh")):
        schedule = baseline_schedule(case, charge_to=charge_to)
        assert (schedule["b_exp_kw"] == 0).all()
        assert np.allclose(schedule["throughput_kwh"], schedule["b_imp_kw"] * DT_H, atol=1e-12)
        for s in case.scenarios:
            fleet = case.fleets[s]
            for a in case.aggregators:
                evs = fleet[fleet["aggregator"] == a]
                rows = schedule[(schedule["scenario"] == s) & (schedule["aggregator"] == a)]
                b_imp = rows.set_index("t")["b_imp_kw"]
                # The energy stored is exactly what brings every EV to its target.
                stored = (b_imp * DT_H * evs["eta_ch"].iloc[0]).sum()
                assert stored == pytest.approx((evs[target] - evs["e_init_kwh"]).sum(), abs=1e-9)
                assert stored >= (evs["e_req_kwh"] - evs["e_init_kwh"]).sum() - 1e-9
                # Charging starts at the first arrival, at full power, and never exceeds
                # the chargers of the EVs plugged in.
                first = int(evs["arrival"].min())
                assert (b_imp.loc[: first - 1] == 0).all()
                assert b_imp.loc[first] == pytest.approx(
                    7.2 * int((evs["arrival"] == first).sum()), abs=1e-12
                )
                assert (b_imp <= 7.2 * len(evs) + 1e-9).all()


def test_baseline_peaks_in_the_evening(baseline):
    case, schedule, _metrics = baseline
    total = schedule.groupby("t")["b_imp_kw"].sum()
    assert 17 <= case.clock_hour[int(total.idxmax())] <= 23
    # Charging at full power from arrival, the EVs are done long before they leave:
    # over 80 % of the energy is drawn before midnight, none after 03:00.
    before_midnight = total[case.clock_hour[total.index] >= 12].sum()
    assert before_midnight > 0.8 * total.sum()
    assert (
        total[(case.clock_hour[total.index] >= 3) & (case.clock_hour[total.index] < 12)].sum() == 0
    )


def test_net_load_tables_add_the_bids_and_scale_the_realisations():
    case = _small()
    schedule = baseline_schedule(case)
    p_fc, q_fc = net_load_tables(case, schedule, 1, "forecast")
    ev = p_fc - (case.load_kw - case.pv_kw[1])
    for a, bus in case.aggregator_bus.items():
        rows = schedule[(schedule["scenario"] == 1) & (schedule["aggregator"] == a)]
        b_imp = rows.set_index("t")["b_imp_kw"]
        np.testing.assert_allclose(ev.loc[bus].to_numpy(), b_imp.to_numpy(), atol=1e-9)
    assert np.allclose(ev.drop(index=list(case.aggregator_bus.values())).to_numpy(), 0.0, atol=1e-9)
    assert q_fc.equals(case.load_kvar)
    g_load, g_pv = case.params.gamma_load, case.params.gamma_pv
    bus, t = 17, 0  # Baran & Wu 18 at 12:00: load, PV and no EV
    load, pv = case.load_kw.at[bus, t], case.pv_kw[1].at[bus, t]
    assert pv > 0 and ev.at[bus, t] == 0
    p_low, q_low = net_load_tables(case, schedule, 1, "low_voltage")
    p_high, q_high = net_load_tables(case, schedule, 1, "high_voltage")
    assert p_low.at[bus, t] == pytest.approx(load * (1 + g_load) - pv * (1 - g_pv), abs=1e-9)
    assert p_high.at[bus, t] == pytest.approx(load * (1 - g_load) - pv * (1 + g_pv), abs=1e-9)
    assert q_low.at[bus, t] == pytest.approx(case.load_kvar.at[bus, t] * (1 + g_load), abs=1e-9)
    assert q_high.at[bus, t] == pytest.approx(case.load_kvar.at[bus, t] * (1 - g_load), abs=1e-9)
    with pytest.raises(ValueError, match="realisation"):
        net_load_tables(case, schedule, 1, "worst")


def test_baseline_metrics(baseline):
    case, schedule, metrics = baseline
    table = metrics.as_table()
    assert list(table.columns) == ["metric", "value", "unit"]
    assert np.isfinite(table["value"].astype(float)).all()
    assert metrics.energy_cost_usd > 0 and metrics.losses_kwh > 0
    # It only buys: minus the price of its energy and the degradation of its throughput.
    price = case.price_usd_per_kwh[schedule["t"].to_numpy()]
    kappa = case.params.degradation_usd_per_kwh
    expected = -sum(
        case.probability[s] * ((price[rows.index] + kappa) * rows["b_imp_kw"] * DT_H).sum()
        for s, rows in [(s, schedule[schedule["scenario"] == s]) for s in case.scenarios]
    )
    assert metrics.aggregator_profit_usd == pytest.approx(expected, rel=1e-12)
    assert metrics.aggregator_profit_usd < 0
    for s in case.scenarios:
        fc = metrics.series[s, "forecast"]
        p_kw, _ = net_load_tables(case, schedule, s, "forecast")
        # AC energy balance: import = net load + losses, every hour.
        np.testing.assert_allclose(fc.import_kw, p_kw.sum() + fc.losses_kw, atol=1e-3)
        assert metrics.per_scenario.at[s, "peak_kw"] == pytest.approx(fc.import_kw.max(), abs=1e-9)
        assert metrics.per_scenario.at[s, "energy_cost_usd"] == pytest.approx(
            float((case.price_usd_per_kwh * fc.import_kw.to_numpy()).sum() * DT_H), rel=1e-12
        )
        # High loads and low PV pull every voltage down; the opposite corner lifts it.
        low, high = metrics.series[s, "low_voltage"].vm_pu, metrics.series[s, "high_voltage"].vm_pu
        assert (low.to_numpy() <= fc.vm_pu.to_numpy() + 1e-12).all()
        assert (high.to_numpy() >= fc.vm_pu.to_numpy() - 1e-12).all()
    assert metrics.peak_kw_max >= metrics.peak_kw_expected
    assert metrics.peak_kw_expected > case.load_kw.sum().max()  # base load plus EVs plus losses


def test_worst_case_violations_are_counted_per_scenario_corner_hour_and_bus():
    # At 1.00 pu at the substation (instead of 1.05) the evening feeder sags below 0.95.
    case = _small(v_source_pu=1.0)
    metrics = evaluate(case, baseline_schedule(case))
    v = metrics.violations
    assert set(v["kind"]) == {"under"} and (v["vm_pu"] < 0.95).all()
    n_worst = sum(
        int((metrics.series[s, r].vm_pu < 0.95 - 1e-6).sum().sum())
        for s in case.scenarios
        for r in ("low_voltage", "high_voltage")
    )
    assert metrics.voltage_violations_worst == n_worst > 0
    assert metrics.worst_case_violations == n_worst  # unrated lines: no thermal part
    assert metrics.thermal.empty and metrics.thermal_violations_worst == 0
    # The low-voltage corner is the worse one, and the forecast lies in between.
    counts = v.groupby("realisation").size()
    assert counts["low_voltage"] >= counts["forecast"] >= counts.get("high_voltage", 0)
    assert metrics.vm_min_pu_worst == pytest.approx(
        min(metrics.series[s, "low_voltage"].vm_pu.min().min() for s in case.scenarios)
    )


def test_the_models_schedule_holds_in_ac(solved, baseline):
    case, model, result = solved
    assert result.status in ("optimal", "time_limit_feasible")
    schedule = schedule_from_model(model, case)
    metrics = evaluate(case, schedule)
    # The robust DistFlow margins carry over to AC: no violation in either corner.
    assert metrics.worst_case_violations == 0 and metrics.voltage_violations_forecast == 0
    assert metrics.vm_min_pu_worst >= 0.95
    # Profit from the schedule is minus the aggregators' objective inside the model.
    inside = -sum(pyo.value(model.agg[a, 0].cost_usd) for a in case.aggregators)
    assert metrics.aggregator_profit_usd == pytest.approx(inside, rel=1e-9)
    # Against the uncontrolled baseline of the same scenario.
    base = evaluate(case, baseline_schedule(case))
    assert metrics.aggregator_profit_usd > base.aggregator_profit_usd + 10.0
    assert metrics.energy_cost_usd < base.energy_cost_usd
    assert metrics.peak_kw_expected < base.peak_kw_expected
    # The model's own cost, with its linearised losses, is within 0.5 % of the AC one.
    assert pyo.value(model.energy_cost_usd) == pytest.approx(metrics.energy_cost_usd, rel=5e-3)


def test_distflow_against_ac_on_the_models_schedule(solved):
    case, model, _result = solved
    frame = distflow_vs_ac(model, case, 0)
    assert len(frame) == len(case.network.buses) * 24
    assert not frame[["vm_pu_model", "vm_pu_ac"]].isna().any().any()
    slack = frame[frame["bus"] == 0]
    assert np.allclose(slack["vm_pu_model"], case.params.v_source_pu, atol=1e-9)
    assert np.allclose(slack["vm_pu_ac"], case.params.v_source_pu, atol=1e-9)
    # Measured 0.0003 pu (the issue expects "a few thousandths").
    assert frame.attrs["max_abs_error_pu"] < 5e-4
    # Losses l = (P^2 + Q^2) / V0^2 with V0 = v_source: understated, by 5.6 % measured.
    assert -8.0 < frame.attrs["losses_error_pct"] < -3.0
    assert frame.attrs["max_abs_import_error_kw"] < 15.0
    by_t = frame.attrs["losses_by_t"]
    assert math.isclose(frame.attrs["losses_kwh_ac"], by_t["losses_kw_ac"].sum() * DT_H)
