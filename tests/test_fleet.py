"""The shared EV fleet component."""

import pandas as pd
import pyomo.environ as pyo
import pytest

from evgrid.core.solvers import solve
from evgrid.formulations.fleet import (
    FleetInfeasibleError,
    check_fleet,
    declare_ev_fleet,
    densest_need,
    energy_need_windows,
    fleet_schedule,
    interval_needs,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)


def _fleet(**changes):
    rows = {
        "ev": ["e1", "e2"], "aggregator": [0, 0], "bus": [5, 5], "arrival": [1, 2],
        "departure": [6, 5], "e_init_kwh": [20.0, 30.0], "e_req_kwh": [40.0, 40.0],
        "e_min_kwh": [10.0, 10.0], "e_max_kwh": [50.0, 50.0], "p_max_kw": [7.0, 7.0],
        "eta_ch": [0.9, 0.9], "eta_dis": [0.9, 0.9],
    }
    rows.update(changes)
    return pd.DataFrame(rows)


def test_check_fleet_names_every_ev_that_cannot_reach_its_energy():
    bad = _fleet(departure=[3, 4], e_init_kwh=[20.0, 20.0])  # 2 h x 6.3 kWh from 20 each
    with pytest.raises(FleetInfeasibleError) as err:
        check_fleet(bad, n_periods=8)
    message = str(err.value)
    assert "e1" in message and "e2" in message and "2 of 2 EVs" in message
    assert "needs 40.00 kWh by period 3 but can reach only 32.60 kWh" in message


def test_check_fleet_rejects_windows_outside_the_horizon_and_bad_energies():
    with pytest.raises(FleetInfeasibleError, match="e2: plug-in window"):
        check_fleet(_fleet(departure=[6, 9]), n_periods=8)
    with pytest.raises(FleetInfeasibleError, match="e1: required energy 60.00 kWh above"):
        check_fleet(_fleet(e_req_kwh=[60.0, 40.0]), n_periods=8)


def test_energy_need_windows_count_an_ev_only_where_its_whole_plug_in_window_lies():
    windows = energy_need_windows(_fleet(), n_periods=7).set_index(["t_start", "t_end"])
    need_e1, need_e2 = (40.0 - 20.0) / 0.9, (40.0 - 30.0) / 0.9  # e1 [1, 6), e2 [2, 5)
    assert windows.loc[(2, 5)].tolist() == pytest.approx([1, need_e2])
    assert windows.loc[(1, 6)].tolist() == pytest.approx([2, need_e1 + need_e2])
    assert windows.loc[(0, 7)].tolist() == pytest.approx([2, need_e1 + need_e2])
    assert (3, 6) not in windows.index and (1, 4) not in windows.index  # they cut a window
    assert len(windows) == 3 * 3  # [a, b) with a <= 2 and b >= 5 hold e2
    assert (windows["n_evs"] == 2).sum() == 2 * 2  # a <= 1 and b >= 6 hold e1 too
    # an EV that arrives with what it needs asks nothing of the grid
    assert energy_need_windows(_fleet(e_req_kwh=[20.0, 30.0]), 7)["need_kwh"].eq(0).all()


def test_the_densest_need_is_the_window_with_the_highest_rate():
    need_e1, need_e2 = (40.0 - 20.0) / 0.9, (40.0 - 30.0) / 0.9
    row = densest_need(_fleet(), n_periods=7)
    # [1, 6) holds both EVs over 5 h; [2, 5) holds e2 alone over 3 h
    assert (row["t_start"], row["t_end"]) == (1, 6)
    assert row["rate_kw"] == pytest.approx(max((need_e1 + need_e2) / 5, need_e2 / 3))
    assert densest_need(_fleet(), n_periods=7, dt_h=0.5)["rate_kw"] == pytest.approx(2 * row["rate_kw"])
    assert densest_need(_fleet(e_req_kwh=[20.0, 30.0]), 7) is None


def test_interval_needs_count_what_an_ev_cannot_draw_outside_the_interval():
    need, room = interval_needs(_fleet(), n_periods=7)
    need_e1, need_e2 = (40.0 - 20.0) / 0.9, (40.0 - 30.0) / 0.9  # e1 [1, 6), e2 [2, 5), 7 kW each
    assert need[1, 6] == pytest.approx(need_e1 + need_e2)  # both wholly inside
    assert need[2, 5] == pytest.approx(need_e2 + need_e1 - 2 * 7.0)  # e1 has periods 1 and 5 outside
    assert need[3, 4] == 0.0 and need[4, 2] == 0.0  # too short; not an interval
    assert room.tolist() == [0.0, 7.0, 14.0, 14.0, 14.0, 7.0, 0.0]
    # where the EVs lie wholly inside, it is energy_need_windows' need
    for row in energy_need_windows(_fleet(), 7).itertuples():
        assert need[row.t_start, row.t_end] >= row.need_kwh - 1e-9
    assert interval_needs(_fleet(), 7, dt_h=0.5)[0][2, 5] == pytest.approx(need_e2 + need_e1 - 7.0)


def test_interval_needs_are_the_least_any_schedule_draws_in_each_interval():
    # The EVs share no limit, so the least draw in an interval is exactly its need.
    evs = _fleet()
    need, _room = interval_needs(evs, n_periods=7)
    m = pyo.ConcreteModel()
    declare_ev_fleet(m, evs)
    for t1 in range(7):
        for t2 in range(t1 + 1, 8):
            m.del_component("objective")
            m.objective = pyo.Objective(expr=sum(m.p_ch_kw[e, t] for e, t in m.ev_t if t1 <= t < t2))
            assert solve(m).objective == pytest.approx(need[t1, t2], abs=1e-6), (t1, t2)


def test_net_interval_needs_let_an_ev_feed_the_others_and_bound_the_net_draw():
    evs = _fleet()
    net, _room = interval_needs(evs, n_periods=7, net=True)
    gross, _room = interval_needs(evs, n_periods=7)
    # in [3, 4) e1 (4 periods outside) can gain 20 - 0.9 * 7 * 4 = -5.2 kWh: it may give 0.9 * 5.2 back
    assert net[3, 4] == pytest.approx(0.9 * (20 - 0.9 * 7 * 4) + 0.9 * (10 - 0.9 * 7 * 2))
    assert net[1, 6] == pytest.approx(gross[1, 6])  # both wholly inside: nothing to give
    m = pyo.ConcreteModel()
    declare_ev_fleet(m, evs)
    for t1 in range(7):
        for t2 in range(t1 + 1, 8):
            m.del_component("objective")
            m.objective = pyo.Objective(
                expr=sum(m.p_ch_kw[e, t] - m.p_dis_kw[e, t] for e, t in m.ev_t if t1 <= t < t2))
            assert solve(m).objective >= net[t1, t2] - 1e-6, (t1, t2)


def _cost_model(evs, prices, exclusive):
    m = pyo.ConcreteModel()
    declare_ev_fleet(m, evs, exclusive_binaries=exclusive)
    m.obj = pyo.Objective(
        expr=sum(prices[t] * (m.p_ch_kw[e, t] - m.p_dis_kw[e, t]) for e, t in m.ev_t)
    )
    return m


def test_dropping_the_exclusion_binaries_is_exact_for_non_negative_prices():
    prices = [0.3, 0.1, 0.2, 0.4, 0.1, 0.3, 0.2, 0.2]
    lp, milp = _cost_model(_fleet(), prices, False), _cost_model(_fleet(), prices, True)
    assert solve(lp).ok and solve(milp).ok
    assert pyo.value(lp.obj) == pytest.approx(pyo.value(milp.obj), abs=1e-6)
    assert simultaneous_charge_discharge(fleet_schedule(lp)).empty


def test_with_a_negative_price_the_lp_charges_and_discharges_at_once():
    # At a negative price an almost full battery imports more than it can store
    # by burning energy in round-trip losses: the LP relaxation does it, the
    # binaries of Eq. (15) forbid it.
    prices = [0.3, 0.1, -0.5, 0.4, 0.1, 0.3, 0.2, 0.2]
    full = _fleet(e_init_kwh=[48.0, 30.0], arrival=[2, 2])
    lp, milp = _cost_model(full, prices, False), _cost_model(full, prices, True)
    assert solve(lp).ok and solve(milp).ok
    assert not simultaneous_charge_discharge(fleet_schedule(lp)).empty
    assert simultaneous_charge_discharge(fleet_schedule(milp)).empty
    assert pyo.value(lp.obj) < pyo.value(milp.obj) - 1e-6


def test_uncontrolled_charging_charges_at_full_power_until_full():
    schedule = uncontrolled_charging(_fleet(), n_periods=8)
    e1 = schedule[schedule["ev"] == "e1"].set_index("t")
    assert e1.loc[1, "p_ch_kw"] == pytest.approx(7.0)
    assert e1["e_kwh"].max() == pytest.approx(50.0)  # full, never beyond
    assert (schedule["p_dis_kw"] == 0).all()
    assert e1.loc[5, "p_ch_kw"] < 7.0  # the last step only tops up
