"""The per-bus DEVCM MILP of Villanueva-Machado et al. (2025) on small constructed instances.

Every check here solves to optimality in well under a second: the full-size runs are the
pipeline's (and the benchmark's) business.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyomo.environ as pyo
import pytest

from evgrid.core.solvers import solve
from evgrid.papers.villanueva2025.devcm import (
    DevcmOptions,
    build_devcm,
    energy_balance,
    market_cost_usd,
    merge_identical_vehicles,
    solution_arrays,
    solve_devcm,
)
from evgrid.papers.villanueva2025.instance import DevcmInstance, InstanceError

T = 8


def tiny(*, psys=None, prices=(0.0, 0.01, 0.02, 0.03), n_scenarios=2, cap=230.0, capped=False,
         road_kwh=5.0, weights=(10.0, 10.0)) -> DevcmInstance:
    """Two representative vehicles, eight half-hour periods, two RT scenarios, three real price steps.

    Vehicle 1 is plugged in at t = 1-4 and 7-8 and drives in t = 5-6; vehicle 2 drives in t = 3-4
    (scenario 1) or t = 4-5 (scenario 2). Steps: [0, 201), [201, 208), [208, inf) MW.
    """
    n, v = n_scenarios, 2
    plugged = np.ones((n, v, T), bool)
    on_road = np.zeros((n, v, T), bool)
    plugged[:, 0, 4:6] = False
    on_road[:, 0, 4:6] = True
    for k in range(n):
        s = 2 + (k % 2)
        plugged[k, 1, s:s + 2] = False
        on_road[k, 1, s:s + 2] = True
    road = np.where(on_road, road_kwh, 0.0)
    arrival = np.zeros_like(plugged)
    departure = np.zeros_like(plugged)
    for k in range(n):
        for j in range(v):
            off = np.flatnonzero(~plugged[k, j])
            departure[k, j, off[0] - 1] = True
            arrival[k, j, off[-1] + 1] = True
    psys = np.array([200, 199, 204, 206, 207, 206, 203, 199.5]) if psys is None else np.asarray(psys, float)
    return DevcmInstance(
        name="tiny", bus=2, weight_evs=np.asarray(weights, float), plugged=plugged, on_road=on_road,
        road_kwh=road, arrival=arrival, departure=departure, soc_init_kwh=np.full((n, v), 40.0),
        battery_cost_usd_per_kwh=np.array([120.0, 110.0]), degradation_slope=np.array([0.0011, 0.0009]),
        pi=np.full(n, 1.0 / n), psys_mw=psys, cap_mw=np.full(T, cap), cap_includes_system_load=not capped,
        price_per_kwh=np.asarray(prices, float), step_lower_mw=np.array([0.0, 0.0, 201.0, 208.0]),
        step_upper_mw=np.array([0.0, 201.0, 208.0, 230.0]), currency_per_usd=4.08, dt_h=0.5,
    )


def solved(inst, method="direct", **opt):
    """Solve to optimality; the authors' pricing with two scenarios is a money pump (buy at lambda_1 = 0 in one
    scenario, sell at the step price in another) whose optimum HiGHS closes slowly, so it gets 10 s and a
    1e-3 gap, and callers use its bound where they need one."""
    pump = opt.get("pricing") == "authors" and inst.n_scenarios > 1
    res, model = solve_devcm(inst, DevcmOptions(**opt), time_limit_s=10 if pump else 60,
                             mip_gap=1e-3 if pump else 0.0, method=method)
    assert res.status == "optimal" or method == "bounds" or (pump and res.objective_usd is not None), res
    return res, model


@pytest.mark.parametrize("pricing", ["corrected", "authors"])
def test_optimum_is_unchanged_when_its_binaries_are_fixed(pricing):
    res, model = solved(tiny(), pricing=pricing)
    for var in model.component_data_objects(pyo.Var):
        if var.is_binary():
            var.fix(round(var.value))
    again = solve(model, "highs")
    assert again.status == "optimal"
    # an LP with the incumbent's binaries can only keep or improve its continuous part, never pass the bound
    assert res.bound_usd - 1e-6 <= again.objective <= res.objective_usd + 1e-6
    if res.status == "optimal" and res.rel_gap == 0:
        assert again.objective == pytest.approx(res.objective_usd, abs=1e-6)


def test_corrected_market_cost_equals_the_step_prices_recomputed_from_the_trades():
    res, model = solved(tiny())
    a = solution_arrays(model)
    low, high = market_cost_usd(model.instance, a["p_em"], a["f"])
    assert low - 1e-6 <= pyo.value(model.market_cost) <= high + 1e-6


def test_every_solved_run_balances_its_energy():
    for pricing in ("corrected", "authors"):
        _, model = solved(tiny(), pricing=pricing)
        bal = energy_balance(model)
        for key in ("soc", "cycle", "fleet", "balance"):
            assert bal[key] < 1e-6, (pricing, key, bal)
        assert bal["degradation"] > -1e-6, bal  # the model's degradation is never below the SoC drops
        a = solution_arrays(model)
        inst = model.instance
        # the battery delivers this bus's share of every trip: SoC falls by exactly that while driving
        drive = inst.on_road & ~inst.plugged
        drop = (a["soc"][..., :-1] - a["soc"][..., 1:])[drive]
        assert np.allclose(drop, model.options.road_share * inst.road_kwh[drive], atol=1e-6)


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_each_bus_recovers_its_share_of_the_road_energy(share):
    """road_share scales Eq. (13): the SoC falls by share x R while driving, and over the cyclic day the fleet
    draws at least share x (weighted road energy) / eta_chg (no charging without its losses)."""
    inst = tiny(psys=np.full(T, 200.0))
    _, model = solved(inst, road_share=share)
    a = solution_arrays(model)
    drive = inst.on_road & ~inst.plugged
    drop = (a["soc"][..., :-1] - a["soc"][..., 1:])[drive]
    assert np.allclose(drop, share * inst.road_kwh[drive], atol=1e-6)
    need_mwh = share * (inst.weight_evs[None, :, None] * inst.road_kwh).sum(axis=(1, 2)) / 0.9 / 1000.0
    drawn_mwh = a["f"].sum(axis=1) * inst.dt_h
    assert (drawn_mwh >= need_mwh - 1e-9).all()


def test_a_day_the_caps_cannot_charge_is_refused_with_its_shortfall():
    """Every period's cap is above what the fleet must draw then, but over the day the caps admit less energy
    than the road takes: refused before building, with both energies and the shortfall."""
    inst = replace(tiny(capped=True), cap_mw=np.full(T, 0.02))  # 0.07 MWh over the 7 periods with a vehicle plugged in
    need = 0.5 * 200.0 / 0.9 / 1000.0  # half of 2 x 10 EVs x 10 kWh, after charging losses
    with pytest.raises(InstanceError, match=rf"at least {need:.3f} MWh .*at most 0.070 MWh .*MWh short"):
        build_devcm(inst, DevcmOptions())
    build_devcm(replace(inst, cap_mw=np.full(T, 0.04)), DevcmOptions())  # 0.14 MWh: room enough


@pytest.mark.parametrize("psys", [None, np.full(T, 204.0), np.array([200, 207.5, 201, 199, 208, 206, 203, 200.9])])
def test_the_relaxation_and_the_restriction_bracket_the_model(psys):
    inst = tiny(psys=psys)
    full, _ = solved(inst)
    low, _ = solved(inst, rt_steps="relaxed")
    high, model = solved(inst, rt_steps="same_as_da")
    assert low.objective_usd <= full.objective_usd + 1e-6 <= high.objective_usd + 2e-6
    # the restriction's schedule costs the same in the model: its RT settlement is zero
    a = solution_arrays(model)
    lo, hi = market_cost_usd(inst, a["p_em"], a["f"])
    assert lo - 1e-6 <= pyo.value(model.market_cost) <= hi + 1e-6
    bounded, kept = solved(inst, method="bounds")
    assert bounded.bound_usd <= full.objective_usd + 1e-6 <= bounded.objective_usd + 2e-6
    assert bounded.rel_gap == pytest.approx((bounded.objective_usd - bounded.bound_usd) / abs(bounded.objective_usd))
    # the kept schedule is the cheaper of the two, and its cost is the model's, recomputed from its trades
    assert bounded.schedule in ("restriction", "relaxation")
    assert bounded.objective_usd <= high.objective_usd + 1e-6
    b = solution_arrays(kept)
    lo, _ = market_cost_usd(kept.instance, b["p_em"], b["f"])
    assert bounded.market_usd == pytest.approx(lo, abs=1e-9)
    assert bounded.objective_usd == pytest.approx(lo + pyo.value(kept.bat_cost), abs=1e-9)


def test_the_relaxations_schedule_priced_exactly_is_a_schedule_of_the_model():
    # Loads that straddle a breakpoint across scenarios: the relaxation's schedule, with its binaries
    # (DA steps) and trades fixed in the model itself, must cost what market_cost_usd says.
    inst = tiny(psys=np.array([200, 207.5, 201, 199, 208, 206, 203, 200.9]))
    low, relaxed = solved(inst, rt_steps="relaxed")
    a = solution_arrays(relaxed)
    lo, _ = market_cost_usd(inst, a["p_em"], a["f"])
    model = build_devcm(inst, DevcmOptions())
    for t in range(T):
        model.p_em[t].fix(float(a["p_em"][t]))
        for n in range(inst.n_scenarios):
            model.f[n, t].fix(float(a["f"][n, t]))
    res = solve(model, "highs")
    assert res.status == "optimal"
    assert pyo.value(model.market_cost) == pytest.approx(lo, abs=1e-6)
    assert low.objective_usd <= lo + pyo.value(relaxed.bat_cost) + 1e-6  # the relaxation's own cost is a bound


def test_the_two_pricings_agree_when_every_load_stays_in_the_first_step():
    # System load far below the first breakpoint: one price for every load, so no arbitrage
    # between steps, and the one-sided indicators can hide nothing.
    low = tiny(psys=np.full(T, 150.0), prices=(0.01, 0.02, 0.03, 0.04))
    low = replace(low, step_lower_mw=np.array([0.0, 201.0, 208.0, 215.0]),
                  step_upper_mw=np.array([201.0, 208.0, 215.0, 230.0]))
    a, _ = solved(low, pricing="corrected")
    b, _ = solved(low, pricing="authors")
    assert a.objective_usd == pytest.approx(b.objective_usd, abs=1e-6)


def test_the_authors_one_sided_steps_buy_below_the_price_of_the_load():
    # The loophole: with the load in step 3 the authors' indicators may stay off, so buying costs
    # lambda_1 = 0 and the authors' optimum is strictly cheaper than the corrected one.
    inst = tiny(psys=np.full(T, 210.0))
    corrected, _ = solved(inst, pricing="corrected")
    authors, model = solved(inst, pricing="authors")
    assert authors.objective_usd < corrected.objective_usd - 0.01
    assert authors.bound_usd < corrected.bound_usd - 0.01
    # buying is free under the loophole: the DA purchase costs nothing, whatever the load
    da = sum(pyo.value(model.da_q[t, b]) * model.instance.price_per_kwh[b] for (t, b) in model.da_q if
             pyo.value(model.da_q[t, b]) > 1e-9)
    assert da <= 1e-9


@pytest.mark.parametrize("psys", [np.full(T, 210.0), np.array([200, 207.5, 201, 199, 208, 206, 203, 200.9])])
def test_the_authors_choice_form_equals_their_cumulative_big_m_form(psys):
    inst = tiny(psys=psys, n_scenarios=1)
    literal, _ = solve_devcm(inst, DevcmOptions(pricing="authors_literal"), mip_gap=1e-6, time_limit_s=120)
    choice, _ = solved(inst, pricing="authors")
    assert literal.status == "optimal"
    assert choice.objective_usd == pytest.approx(literal.objective_usd, abs=1e-5)


def test_merging_identical_vehicles_changes_nothing():
    inst = tiny(weights=(10.0, 10.0))
    twin = replace(inst, weight_evs=np.array([4.0, 10.0, 6.0]),
                   **{k: np.concatenate([getattr(inst, k)[:, :1], getattr(inst, k)[:, 1:], getattr(inst, k)[:, :1]],
                                        axis=1)
                      for k in ("plugged", "on_road", "road_kwh", "arrival", "departure", "soc_init_kwh")},
                   battery_cost_usd_per_kwh=np.array([120.0, 110.0, 120.0]),
                   degradation_slope=np.array([0.0011, 0.0009, 0.0011]))
    merged = merge_identical_vehicles(twin)
    assert merged.n_vehicles == 2 and merged.weight_evs.tolist() == [10.0, 10.0]
    a, _ = solved(inst)
    b, _ = solved(twin, merge_identical=False)
    assert a.objective_usd == pytest.approx(b.objective_usd, abs=1e-6)


def test_the_cap_binds_the_trade():
    free, _ = solved(tiny(psys=np.full(T, 200.0)))
    tight = tiny(psys=np.full(T, 200.0), cap=200.5)
    res, model = solved(tight)
    assert (res.p_em_mw <= 0.5 + 1e-7).all()
    assert res.objective_usd >= free.objective_usd - 1e-9


def test_a_vehicle_whose_trip_exceeds_its_soc_window_is_named():
    with pytest.raises(InstanceError, match=r"vehicle 1 .*drives 70.00 kWh"):
        build_devcm(tiny(road_kwh=35.0), DevcmOptions(road_share=1.0))
    with pytest.raises(InstanceError, match=r"vehicle 1 .*drives 70.00 kWh"):  # half of 140 kWh
        build_devcm(tiny(road_kwh=70.0), DevcmOptions())


def test_a_trip_period_above_the_charger_power_is_named():
    with pytest.raises(InstanceError, match=r"vehicle 1 .*period t=5"):
        build_devcm(tiny(road_kwh=80.0), DevcmOptions(battery_kwh=400, road_share=1.0))


def test_caps_below_what_the_fleet_must_draw_name_the_period():
    inst = replace(tiny(capped=True), cap_mw=np.array([1.0, 1.0, -5.0, 1.0, 1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(InstanceError, match=r"t=3"):
        build_devcm(inst, DevcmOptions())


def test_bad_instances_are_refused_before_building():
    inst = tiny()
    with pytest.raises(InstanceError, match="must increase"):
        build_devcm(replace(inst, price_per_kwh=np.array([0.0, 0.02, 0.01, 0.03])), DevcmOptions())
    with pytest.raises(InstanceError, match="scenario count N is 0"):
        empty = replace(inst, plugged=inst.plugged[:0], on_road=inst.on_road[:0], road_kwh=inst.road_kwh[:0],
                        arrival=inst.arrival[:0], departure=inst.departure[:0], soc_init_kwh=inst.soc_init_kwh[:0],
                        pi=inst.pi[:0])
        build_devcm(empty, DevcmOptions())
    with pytest.raises(InstanceError, match="no vehicles"):
        none = replace(inst, **{k: getattr(inst, k)[:, :0] for k in
                                ("plugged", "on_road", "road_kwh", "arrival", "departure", "soc_init_kwh")},
                       weight_evs=inst.weight_evs[:0], battery_cost_usd_per_kwh=inst.battery_cost_usd_per_kwh[:0],
                       degradation_slope=inst.degradation_slope[:0])
        build_devcm(none, DevcmOptions())


def test_bad_options_name_the_field():
    with pytest.raises(ValueError, match="soc_min"):
        DevcmOptions(soc_min=0.96)
    with pytest.raises(ValueError, match="soc_departure_min_kwh"):
        DevcmOptions(soc_departure_min_kwh=79.0)


def test_the_corrected_schedule_starts_the_authors_pricing():
    inst = tiny(psys=np.full(T, 210.0))
    corrected, model = solved(inst)
    res, _ = solve_devcm(inst, DevcmOptions(pricing="authors"), time_limit_s=5, mip_gap=1e-3,
                         start=solution_arrays(model))
    # the corrected schedule is feasible in the one-sided pricing and costs no more there
    assert res.objective_usd <= corrected.objective_usd + 1e-6


def test_the_settlement_ramps_use_the_price_curves_own_breakpoints():
    # Steps [0, 201), [201, 208), [208, inf) MW; Psys = 204 at t = 3, so the DA load's step (index 2)
    # spans trades [-3, 4] MW: one breakpoint above (+4 MW, jump 0.01) and one below (-3 MW, jump 0.01),
    # whatever the DA trade's own bounds are.
    from evgrid.papers.villanueva2025.devcm import _settlement_ramps

    inst = tiny()
    assert _settlement_ramps(inst, 2, 2, -10.0, 10.0) == [(4.0, pytest.approx(0.01), 1), (-3.0, pytest.approx(0.01), -1)]
    assert _settlement_ramps(inst, 2, 2, -1.0, 1.0) == []  # the draw cannot leave the step
    # from the first real step (index 1: the empty step 0 is skipped) both breakpoints above count
    ramps = _settlement_ramps(inst, 1, 2, -10.0, 10.0)
    assert [(bp, sign) for bp, _, sign in ramps] == [(-3.0, 1), (4.0, 1)]
    assert [round(j, 6) for _, j, _ in ramps] == [0.01, 0.01]


def test_a_relaxation_without_a_schedule_still_proves_its_bound(monkeypatch):
    # In the pipeline (two runs sharing two cores) a large relaxation can reach its time limit
    # before any schedule; its dual bound is still a lower bound on the model and must be kept.
    import evgrid.papers.villanueva2025.devcm as devcm_module
    from evgrid.core.solvers import NoIncumbentError

    inst = tiny(psys=np.array([200, 207.5, 201, 199, 208, 206, 203, 200.9]))
    exact, _ = solved(inst, method="bounds")
    real_one = devcm_module._one

    def one(inst_, opt, *args, **kwargs):
        res, model, build_s = real_one(inst_, opt, *args, **kwargs)
        if opt.rt_steps == "relaxed":  # what HiGHS says when the limit comes first: no schedule, a bound
            raise NoIncumbentError("time limit, no schedule", best_bound=res.best_bound - 1.0)
        return res, model, build_s

    monkeypatch.setattr(devcm_module, "_one", one)
    res, _ = solve_devcm(inst, DevcmOptions(), method="bounds")
    assert res.schedule == "restriction" and res.relaxation_usd is None
    assert res.bound_usd == pytest.approx(exact.bound_usd - 1.0, abs=1e-9)
    assert res.rel_gap == pytest.approx((res.objective_usd - res.bound_usd) / abs(res.objective_usd))


def test_soft_caps_price_the_excess_and_change_nothing_where_the_caps_hold():
    """cap_excess_cost_usd_per_mwh makes Eqs. (56)-(57) soft (the authors' capped bus-12 max run): where the hard
    caps are feasible the optimum is the same with no excess; where they are not, the excess covers the day's
    shortfall at least and is priced in the objective."""
    roomy = replace(tiny(capped=True), cap_mw=np.full(T, 0.5))
    hard, _ = solved(roomy)
    soft, _ = solved(roomy, cap_excess_cost_usd_per_mwh=20000.0)
    assert soft.cap_excess_mwh == pytest.approx(0.0, abs=1e-9)
    assert soft.objective_usd == pytest.approx(hard.objective_usd, abs=1e-6)
    tight = replace(tiny(capped=True), cap_mw=np.full(T, 0.02))  # 0.041 MWh short (the test above)
    with pytest.raises(InstanceError, match="MWh short"):
        solved(tight)
    res, model = solved(tight, cap_excess_cost_usd_per_mwh=20000.0)
    assert res.cap_excess_mwh >= 0.041 - 1e-3
    assert pyo.value(model.cap_excess_cost) == pytest.approx(20000.0 * res.cap_excess_mwh, rel=1e-9)
    assert res.objective_usd == pytest.approx(res.market_usd + res.battery_usd + 20000.0 * res.cap_excess_mwh,
                                              abs=1e-6)
    a = solution_arrays(model)
    s = np.array([pyo.value(model.cap_excess[t]) for t in range(T)])
    assert (a["p_em"] <= 0.02 + s + 1e-7).all() and (a["f"] <= 0.02 + s[None, :] + 1e-7).all()
    assert energy_balance(model)["soc"] < 1e-6
    # the bracket of the pipeline prices the excess too: its bound and its schedule enclose the optimum
    bounded, _ = solved(tight, method="bounds", cap_excess_cost_usd_per_mwh=20000.0)
    assert bounded.bound_usd - 1e-6 <= res.objective_usd <= bounded.objective_usd + 1e-6
    assert bounded.cap_excess_mwh >= 0.041 - 1e-3
