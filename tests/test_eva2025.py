"""The EV-aggregator market scheduling model (paper 2) on tiny synthetic days."""

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

import evgrid.eva2025 as eva
from evgrid.config import ConfigError, Eva2025Params, validate_section
from evgrid.eva2025 import (
    STRATEGIES,
    EvaDay,
    GridLimitError,
    build_aggregator_schedule,
    check_grid_capacity,
    day_ahead_only,
    exclusion_hours,
    market_prices,
    rolling_horizon,
    run_strategy,
    sessions_to_fleet,
)
from evgrid.fleet import (
    FleetInfeasibleError,
    declare_ev_fleet,
    fleet_schedule,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)
from evgrid.solvers import solve

TZ = "America/Los_Angeles"


def _sessions(rows, date="2019-06-04"):
    # rows: (session_id, "HH:MM" arrival, "HH:MM" departure, delivered kWh), one local day
    return pd.DataFrame(
        {
            "session_id": [r[0] for r in rows],
            "arrival": pd.to_datetime([f"{date} {r[1]}" for r in rows]).tz_localize(TZ),
            "departure": pd.to_datetime([f"{date} {r[2]}" for r in rows]).tz_localize(TZ),
            "delivered_kwh": [float(r[3]) for r in rows],
        }
    )


def _day(prices_mwh, rows, *, site=None, grid_kw=100.0, wear=0.02, markup=10.0, fee=10.0,
         tariff=0.30, phi=0.2, dr_cost_kwh=0.005, **fleet_kw):
    prices_mwh = np.asarray(prices_mwh, dtype=float)
    n = len(prices_mwh)
    buy, sell = market_prices(prices_mwh, markup, fee)
    return EvaDay(
        day=pd.Timestamp("2024-06-04"),
        price_eur_per_kwh=prices_mwh / 1e3,
        buy_eur_per_kwh=buy,
        sell_eur_per_kwh=sell,
        fleet=sessions_to_fleet(_sessions(rows), n_periods=n, **fleet_kw),
        site_load_kw=np.zeros(n) if site is None else np.asarray(site, dtype=float),
        grid_limit_kw=grid_kw,
        degradation_eur_per_kwh=wear,
        owner_tariff_eur_per_kwh=tariff,
        dr_shift_fraction=phi,
        dr_cost_eur_per_kwh=dr_cost_kwh,
        capped=pd.DataFrame(),
    )


# A feasible 6-hour day with cheap early and dear late hours; the site load is
# low enough that V2G at the end exports.
PRICES = [60.0, 40.0, 20.0, 30.0, 90.0, 120.0]
SITE = [5.0, 8.0, 10.0, 10.0, 6.0, 4.0]
ROWS = [("s1", "00:15", "05:40", 10.0), ("s2", "01:30", "04:10", 8.0), ("s3", "02:00", "06:00", 5.0)]


def _typical_day(**changes):
    return _day(PRICES, ROWS, site=SITE, **changes)


# ---------------------------------------------------------------- sessions_to_fleet


def test_sessions_to_fleet_windows_and_required_energy():
    fleet = sessions_to_fleet(_sessions(ROWS), n_periods=6, battery_kwh=60.0, soc_arrival=0.5,
                              eta_ch=0.9)
    # [floor(arrival hour), ceil(departure hour)); an exact hour is not rounded up
    assert fleet["arrival"].tolist() == [0, 1, 2]
    assert fleet["departure"].tolist() == [6, 5, 6]
    assert fleet["session_id"].tolist() == ["s1", "s2", "s3"]
    np.testing.assert_allclose(fleet["e_req_kwh"], 30.0 + 0.9 * np.array([10.0, 8.0, 5.0]), atol=1e-12)
    assert fleet.attrs["capped"].empty


def test_sessions_to_fleet_raises_or_caps_an_unreachable_session():
    # s_big: 2 h at 6.6 kW x 0.95 = 12.54 kWh into the battery, but 20 x 0.95 = 19 asked
    rows = [("ok", "01:00", "05:00", 5.0), ("s_big", "02:10", "03:50", 20.0)]
    with pytest.raises(FleetInfeasibleError) as err:
        sessions_to_fleet(_sessions(rows), n_periods=6)
    message = str(err.value)
    assert "session s_big" in message and "session ok" not in message
    assert "1 of 2 sessions" in message

    fleet = sessions_to_fleet(_sessions(rows), n_periods=6, on_unreachable="cap")
    big = fleet.set_index("session_id").loc["s_big"]
    assert big["e_req_kwh"] == pytest.approx(30.0 + 0.95 * 6.6 * 2, abs=1e-9)
    assert fleet.set_index("session_id").at["ok", "e_req_kwh"] == pytest.approx(30.0 + 0.95 * 5.0)
    capped = fleet.attrs["capped"]
    assert capped["session_id"].tolist() == ["s_big"]
    assert capped["reachable_kwh"].iloc[0] == pytest.approx(6.6 * 2, abs=1e-9)


def test_sessions_to_fleet_caps_at_the_battery_maximum():
    # a long window, but 0.5 -> 0.9 of 60 kWh leaves only 24 kWh of room
    fleet = sessions_to_fleet(_sessions([("s", "00:00", "08:00", 40.0)]), n_periods=8,
                              on_unreachable="cap")
    assert fleet["e_req_kwh"].iloc[0] == pytest.approx(54.0)


def test_sessions_to_fleet_uses_local_clock_hours_on_a_clock_change_day():
    sessions = _sessions([("s", "10:00", "14:00", 5.0)], date="2019-11-03")
    fleet = sessions_to_fleet(sessions, n_periods=24)
    assert (fleet["arrival"].iloc[0], fleet["departure"].iloc[0]) == (10, 14)


# ---------------------------------------------------------------- fleet block


def test_uncontrolled_charging_stops_at_required_or_max_energy():
    fleet = sessions_to_fleet(_sessions(ROWS), n_periods=6)
    last = {}
    for target in ("required", "max"):
        schedule = uncontrolled_charging(fleet, 6, target=target)
        last[target] = schedule.sort_values("t").groupby("ev")["e_kwh"].last()
        assert (schedule["p_dis_kw"] == 0).all()
    f = fleet.set_index("ev")
    np.testing.assert_allclose(last["required"][f.index], f["e_req_kwh"], atol=1e-9)
    # s1 has 6 h x 6.27 kWh of window, enough to fill up to e_max = 54 kWh
    assert last["max"]["ev0000"] == pytest.approx(54.0, abs=1e-9)
    assert (last["max"][f.index] > f["e_req_kwh"] + 1.0).all()
    with pytest.raises(ValueError, match="target"):
        uncontrolled_charging(fleet, 6, target="full")


@pytest.mark.parametrize(
    ("exclusive", "expected"),
    [([2, 3], "hours_2_3"), (True, "all"), (False, "none")],
)
def test_declare_ev_fleet_exclusion_binaries_only_where_asked(exclusive, expected):
    fleet = sessions_to_fleet(_sessions(ROWS), n_periods=6)
    m = pyo.ConcreteModel()
    declare_ev_fleet(m, fleet[eva.FLEET_COLUMNS], exclusive_binaries=exclusive)
    plugged = set(m.ev_t)
    have = set(m.is_charging) if hasattr(m, "is_charging") else set()
    want = {
        "hours_2_3": {(e, t) for e, t in plugged if t in (2, 3)},
        "all": plugged,
        "none": set(),
    }[expected]
    assert have == want
    if want:
        assert all(m.is_charging[k].is_binary() for k in have)
        assert len(m.ineq_p_ch_ev_ub) == len(m.ineq_p_dis_ev_ub) == len(want)


# ---------------------------------------------------------------- exclusion binaries


def test_exclusion_hours_only_at_negative_prices_without_wear():
    assert exclusion_hours(_typical_day()) == []  # positive prices, wear 0.02
    prices = [30.0, -5.0, 10.0, -40.0, 0.5, 60.0]
    day = _day(prices, ROWS, wear=0.0, markup=0.0, fee=0.0)
    assert exclusion_hours(day) == [1, 3]


def _negative_day():
    # Hour 0 has a negative price; the EV arrives almost full (51 of 54 kWh), so
    # the LP can import more than the battery takes by charging and discharging at once.
    return _day([-50.0, 40.0, 60.0, 30.0], [("s", "00:00", "04:00", 0.0)], wear=0.0, markup=0.0,
                fee=0.0, soc_arrival=0.85)


def test_without_the_exclusion_binaries_a_negative_price_makes_the_lp_burn_energy():
    day = _negative_day()
    assert exclusion_hours(day) == [0]
    objective, both = {}, {}
    for exclusion in ("none", "auto"):
        m = build_aggregator_schedule(day, v2g=True, exclusion=exclusion)
        assert solve(m).ok
        objective[exclusion] = pyo.value(m.objective)
        both[exclusion] = simultaneous_charge_discharge(fleet_schedule(m.fleet))
    assert not both["none"].empty and both["none"]["t"].tolist() == [0]
    assert both["auto"].empty
    assert objective["none"] >= objective["auto"] - 1e-9
    assert objective["none"] > objective["auto"] + 1e-4  # burning pays here


def test_exclusion_binaries_are_redundant_at_positive_prices():
    day = _typical_day()
    objective = {}
    for exclusion in ("none", "all"):
        m = build_aggregator_schedule(day, v2g=True, exclusion=exclusion)
        assert solve(m, mip_gap=0.0).ok
        objective[exclusion] = pyo.value(m.objective)
    assert objective["none"] == pytest.approx(objective["all"], rel=1e-6)
    with pytest.raises(ValueError):
        build_aggregator_schedule(day, exclusion="some")


# ---------------------------------------------------------------- strategies


def test_every_strategy_serves_every_ev_and_profits_are_ordered():
    day = _typical_day()
    results = {s: run_strategy(day, s) for s in STRATEGIES}
    for s, r in results.items():
        assert r.metrics["min_energy_ratio"] >= 1 - 1e-6, s
        assert r.metrics["hours_over_limit"] == 0, s
    profit = {s: r.metrics["net_profit_eur"] for s, r in results.items()}
    assert profit["v2g_dr"] >= profit["v2g"] - 1e-6
    assert profit["v2g"] >= profit["smart"] - 1e-6
    assert profit["v2g"] > profit["smart"] + 1e-3  # the late price peak makes V2G pay
    assert results["smart"].metrics["discharged_kwh"] == 0.0
    assert (results["smart"].schedule["p_dis_kw"] <= 1e-9).all()
    assert results["uncontrolled"].metrics["discharged_kwh"] == 0.0
    assert results["v2g"].metrics["discharged_kwh"] > 1.0


def test_v2g_objective_matches_the_evaluated_metrics():
    day = _typical_day()
    metrics = run_strategy(day, "v2g").metrics
    m = build_aggregator_schedule(day, v2g=True)
    assert solve(m).ok
    objective = pyo.value(m.objective)
    assert metrics["market_sales_eur"] > 0.1  # the check covers exports too
    market = metrics["market_sales_eur"] - metrics["energy_cost_eur"] - metrics["degradation_eur"]
    assert objective == pytest.approx(market, rel=1e-6)
    # the owners pay a fixed amount for the energy they asked for
    f = day.fleet
    billed = float((f["e_req_kwh"] - f["e_init_kwh"]).sum())
    assert objective == pytest.approx(
        metrics["net_profit_eur"] - day.owner_tariff_eur_per_kwh * billed, rel=1e-6
    )


def test_demand_response_keeps_the_daily_energy_and_the_shift_limit():
    day = _typical_day()
    r = run_strategy(day, "v2g_dr")
    moved = r.site_kw - day.site_load_kw
    assert np.abs(moved).max() > 0.1  # it does shift load at these prices
    assert r.site_kw.sum() == pytest.approx(day.site_load_kw.sum(), abs=1e-6)
    assert (np.abs(moved) <= day.dr_shift_fraction * day.site_load_kw + 1e-6).all()
    assert r.metrics["dr_cost_eur"] == pytest.approx(
        day.dr_cost_eur_per_kwh * np.abs(moved).sum() / 2, abs=1e-9
    )


# ---------------------------------------------------------------- grid limit


def test_check_grid_capacity_names_hours_over_the_site_load():
    day = _day([50.0] * 4, [("s", "00:00", "04:00", 2.0)], site=[20.0, 50.0, 60.0, 20.0],
               grid_kw=40.0)
    with pytest.raises(GridLimitError, match=r"in hours \[1, 2\]"):
        check_grid_capacity(day)


def test_check_grid_capacity_names_the_window_and_energy(monkeypatch):
    # 10 kWh needed in hours 0-2, the limit leaves 2 kW x 2 h above the site load
    day = _day([50.0] * 4, [("s", "00:00", "02:00", 10.0)], site=[10.0] * 4, grid_kw=12.0)
    with pytest.raises(GridLimitError, match="within hours 0-2 need 10 kWh.*leaves 4 kWh"):
        check_grid_capacity(day)

    def no_solve(*_args, **_kwargs):
        raise AssertionError("solved despite the grid limit")

    monkeypatch.setattr(eva, "solve", no_solve)
    with pytest.raises(GridLimitError, match="within hours 0-2"):
        run_strategy(day, "smart")
    # the baseline is not checked: it charges at full power and overloads the grid
    r = run_strategy(day, "uncontrolled")
    assert r.metrics["hours_over_limit"] > 0
    assert r.metrics["peak_kw"] == pytest.approx(10.0 + 6.6)


def test_check_grid_capacity_passes_a_feasible_day():
    check_grid_capacity(_typical_day())


def test_v2g_is_not_refused_when_discharging_meets_the_grid_limit():
    # Hour 0 needs 12 kW on a 10 kW limit; the EV (30 kWh, needs 30 kWh) can give 2 kW and recharge.
    day = _day([50.0, 30.0, 30.0, 30.0], [("s", "00:00", "04:00", 0.0)], site=[12.0, 0, 0, 0],
               grid_kw=10.0)
    m = build_aggregator_schedule(day, v2g=True)
    assert solve(m).ok  # a schedule exists
    r = run_strategy(day, "v2g")
    assert r.metrics["hours_over_limit"] == 0


# ---------------------------------------------------------------- real-time adjustment


def test_rolling_horizon_with_a_perfect_forecast_is_bounded_by_perfect_foresight():
    markup, fee = 12.0, 7.0
    day = _typical_day(markup=markup, fee=fee)
    params = Eva2025Params(buy_markup_eur_per_mwh=markup, sell_fee_eur_per_mwh=fee)
    forecast = day.price_eur_per_kwh * 1e3
    foresight = run_strategy(day, "v2g").metrics["net_profit_eur"]

    rolling = rolling_horizon(day, forecast, params)
    assert rolling.metrics["min_energy_ratio"] >= 1 - 1e-6
    assert rolling.metrics["net_profit_eur"] <= foresight + 1e-6
    # every plugged hour is executed exactly once
    assert len(rolling.schedule) == int((day.fleet["departure"] - day.fleet["arrival"]).sum())

    ahead = day_ahead_only(day, forecast, params)
    assert ahead.metrics["min_energy_ratio"] >= 1 - 1e-6
    assert ahead.metrics["net_profit_eur"] == pytest.approx(foresight, rel=1e-6)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"typical_day": "2024-02-06"}, ["typical_day", "2024-02-06", "May-December"]),
        ({"negative_day": "2023-06-06"}, ["negative_day", "2023-06-06", "same weekday"]),
        ({"soc_arrival": 0.1}, ["soc_arrival", "0.1", "[soc_min, soc_max]"]),
        ({"soc_arrival": 0.95}, ["soc_arrival", "0.95"]),
        ({"month": "2024-8"}, ["'month'", "2024-8", "pattern"]),
        ({"month": "2024-02"}, ["month = 2024-02", "May-December"]),
    ],
)
def test_eva2025_params_reject_bad_values(change, fragments):
    with pytest.raises(ConfigError) as err:
        validate_section("eva2025", change)
    message = str(err.value)
    assert "[eva2025]" in message
    for fragment in fragments:
        assert fragment in message, message


def test_eva2025_params_defaults_and_a_good_day_validate():
    params = validate_section("eva2025", {"typical_day": "2024-06-04", "month": "2024-11"})
    assert isinstance(params, Eva2025Params)
    assert str(params.typical_day) == "2024-06-04"


def test_eva2025_params_month_out_of_range_names_the_value():
    with pytest.raises(ConfigError) as err:
        validate_section("eva2025", {"month": "2024-13"})
    assert "2024-13" in str(err.value)
