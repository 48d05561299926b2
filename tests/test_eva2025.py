"""The EV-aggregator market scheduling model (paper 2) on tiny synthetic days."""

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

import evgrid.papers.eva2025 as eva
from evgrid.core.config import ConfigError, validate_section
from evgrid.core.solvers import solve
from evgrid.formulations.fleet import (
    FLEET_COLUMNS,
    FleetInfeasibleError,
    declare_ev_fleet,
    fleet_schedule,
    simultaneous_charge_discharge,
    uncontrolled_charging,
)
from evgrid.papers.eva2025 import (
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
from evgrid.papers.eva2025.params import Eva2025Params

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
    plugged_h = 100 / 60  # 02:10-03:50: the charger can run 1 h 40 min, not two whole hours
    assert big["e_req_kwh"] == pytest.approx(30.0 + 0.95 * 6.6 * plugged_h, abs=1e-9)
    assert fleet.set_index("session_id").at["ok", "e_req_kwh"] == pytest.approx(30.0 + 0.95 * 5.0)
    capped = fleet.attrs["capped"]
    assert capped["session_id"].tolist() == ["s_big"]
    assert capped["reachable_kwh"].iloc[0] == pytest.approx(6.6 * plugged_h, abs=1e-9)
    assert not capped["by_battery"].iloc[0]


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
    declare_ev_fleet(m, fleet[FLEET_COLUMNS], exclusive_binaries=exclusive)
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

    monkeypatch.setattr(eva.strategies, "solve", no_solve)
    with pytest.raises(GridLimitError, match="within hours 0-2"):
        run_strategy(day, "smart")
    # the baseline is not checked: it charges at full power and overloads the grid
    r = run_strategy(day, "uncontrolled")
    assert r.metrics["hours_over_limit"] > 0
    assert r.metrics["peak_kw"] == pytest.approx(10.0 + 6.6)


def test_check_grid_capacity_passes_a_feasible_day():
    day = _typical_day()
    assert check_grid_capacity(day) is None
    # passing means what it promises: smart charging then solves within the limit
    r = run_strategy(day, "smart")
    assert r.metrics["min_energy_ratio"] >= 1 - 1e-6 and r.metrics["hours_over_limit"] == 0
    # and it is tight: the EVs take 23 kWh from the grid within hours 0-6, where an 11 kW
    # limit leaves exactly 66 - 43 = 23 kWh above the site load and 10.5 kW only 20 kWh
    assert check_grid_capacity(_typical_day(grid_kw=11.0)) is None
    with pytest.raises(GridLimitError, match="within hours 0-6 need 23 kWh.*leaves 20 kWh"):
        check_grid_capacity(_typical_day(grid_kw=10.5))


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

    rolling = rolling_horizon(day, params, price_forecast_eur_per_mwh=forecast)
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
        # 2030 shares 2019's weekdays, but there are no prices: name the range that exists
        ({"month": "2030-05"}, ["month = 2030-05", "outside the price data", "2015-01 to 2024-12"]),
        ({"typical_day": "2030-05-07"}, ["typical_day = 2030-05-07", "2015-01-02 to 2024-12-30"]),
        ({"soc_min": 0.5, "soc_max": 0.5, "soc_arrival": 0.5},
         ["soc_min = 0.5, soc_max = 0.5", "SOC band is empty", "soc_min < soc_max"]),
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


# ---------------------------------------------------------------- sub-hourly plug-in, fair comparison


def test_uncontrolled_charging_starts_at_arrival_not_at_the_top_of_the_hour():
    fleet = sessions_to_fleet(_sessions(ROWS), n_periods=6)
    schedule = eva.uncontrolled_schedule(fleet, 6).set_index(["ev", "t"])
    # s1 arrives 00:15: three quarters of hour 0 at 6.6 kW
    assert schedule.at[("ev0000", 0), "p_ch_kw"] == pytest.approx(0.75 * 6.6)
    # s2 (01:30) needs 8 kWh: half an hour, then the rest
    assert schedule.at[("ev0001", 1), "p_ch_kw"] == pytest.approx(3.3)
    assert schedule.at[("ev0001", 2), "p_ch_kw"] == pytest.approx(8.0 - 3.3)
    assert eva.hour_fractions(fleet) == pytest.approx(
        {("ev0000", 0): 0.75, ("ev0000", 5): 40 / 60, ("ev0001", 1): 0.5, ("ev0001", 4): 10 / 60})


def test_every_strategy_delivers_what_the_uncontrolled_baseline_delivers():
    # a tight grid and a price spike, so the optimisers move energy around
    day = _day([60.0, 20.0, 15.0, 200.0, 30.0, 250.0], ROWS, site=SITE, grid_kw=16.0)
    base = run_strategy(day, "uncontrolled")
    got_base = eva.delivered_by_ev(day, base.schedule)
    need = (day.fleet.set_index("ev")["e_req_kwh"] - day.fleet.set_index("ev")["e_init_kwh"])
    met = got_base >= need - 1e-6
    assert met.all()  # the baseline meets every need here, so every EV is compared
    results = {s: run_strategy(day, s) for s in STRATEGIES[1:]}
    params = Eva2025Params()
    results["rolling_horizon"] = rolling_horizon(day, params)
    for name, r in results.items():
        got = eva.delivered_by_ev(day, r.schedule)
        # the same energy as the baseline, up to what is billed (no EV short, none billed more)
        np.testing.assert_allclose(np.minimum(got[met], need[met]), got_base[met], atol=1e-5,
                                   err_msg=name)
        assert r.metrics["billed_kwh"] == pytest.approx(base.metrics["billed_kwh"], abs=1e-5), name
        # and never faster than the charger in a partly plugged hour
        s = r.schedule.set_index(["ev", "t"])
        for (e, t), share in eva.hour_fractions(day.fleet).items():
            assert s.at[(e, t), "p_ch_kw"] <= 6.6 * share + 1e-6, (name, e, t)
    assert results["v2g"].metrics["discharged_kwh"] > 1.0  # V2G is used, yet the EVs get their energy


# ---------------------------------------------------------------- revenue, cost, metrics


def test_metrics_split_the_bill_into_site_ev_charging_and_v2g():
    day = _typical_day()
    for s in STRATEGIES:
        m = run_strategy(day, s).metrics
        net_cost = m["energy_cost_eur"] - m["market_sales_eur"]
        assert net_cost == pytest.approx(
            m["site_energy_cost_eur"] + m["ev_charging_cost_eur"] - m["revenue_eur"], abs=1e-9)
        assert m["ev_operating_cost_eur"] == pytest.approx(m["ev_charging_cost_eur"] + m["degradation_eur"])
        assert m["net_profit_eur"] == pytest.approx(
            m["owner_payments_eur"] + m["revenue_eur"] - m["site_energy_cost_eur"]
            - m["ev_charging_cost_eur"] - m["degradation_eur"] - m["dr_cost_eur"], abs=1e-9)
        if s in ("uncontrolled", "smart"):
            assert m["revenue_eur"] == 0.0


def _month_table(days, variant="base"):
    rows = []
    for k, day in enumerate(days):
        results = {s: run_strategy(day, s) for s in STRATEGIES}
        results["rolling_horizon"] = rolling_horizon(day, Eva2025Params())
        results["rolling_horizon_price_forecast"] = rolling_horizon(
            day, Eva2025Params(), price_forecast_eur_per_mwh=day.price_eur_per_kwh[::-1] * 1e3)
        results["day_ahead_price_forecast"] = day_ahead_only(day, day.price_eur_per_kwh * 1e3,
                                                             Eva2025Params())
        for name, r in results.items():
            rows.append({"day": f"2024-06-{k + 1:02d}", "variant": variant, "strategy": name,
                         **r.metrics, **eva.capped_summary(day)})
    return pd.DataFrame(rows)


def test_the_metrics_the_notebook_writes_hold_no_nan(tmp_path):
    import json
    import math

    from evgrid.core.outputs import write_json

    # an ordinary day, and degenerate ones: no owner tariff and no V2G (a zero base),
    # flat prices (V2G never pays), an EV-less day (nothing charged at all)
    days = [
        _typical_day(),
        _day([50.0] * 6, ROWS, site=SITE, tariff=0.0),
        _day([50.0] * 6, [], site=SITE, tariff=0.0),
    ]
    table = pd.concat([_month_table(days), _month_table(days[1:], variant="window_cap")])
    months = eva.month_overview(table)
    for featured in (table, table[table["day"] != "2024-06-01"]):
        summary = eva.metrics_summary(featured, months)
        write_json(summary, tmp_path / "metrics.json")  # refuses NaN and inf
        text = (tmp_path / "metrics.json").read_text()
        assert "NaN" not in text and "Infinity" not in text

        def numbers(obj):
            if isinstance(obj, dict):
                for v in obj.values():
                    yield from numbers(v)
            elif isinstance(obj, float):
                yield obj

        assert all(math.isfinite(x) for x in numbers(json.loads(text)))
    # the zero base gives None (null), not NaN
    degenerate = eva.headline_figures(table[table["day"] == "2024-06-02"])
    assert degenerate["revenue_increase_v2g"] is None
    sens = eva.tariff_sensitivity(table, [0.0, 0.126, 0.3])
    assert np.isfinite(sens["v2g_net_gain_eur"]).all()


def test_tariff_sensitivity_rebills_the_same_schedules():
    table = _month_table([_typical_day()])
    hf = eva.headline_figures(table)
    sens = eva.tariff_sensitivity(table, [0.30]).iloc[0]
    assert sens["revenue_increase_v2g"] == pytest.approx(hf["revenue_increase_v2g"], rel=1e-9)
    assert sens["v2g_net_gain_eur"] == pytest.approx(hf["v2g_net_gain_eur"])
    tariff = eva.tariff_for_revenue_increase(table, 0.15)
    assert tariff is not None
    again = eva.tariff_sensitivity(table, [tariff]).iloc[0]
    assert again["revenue_increase_v2g"] == pytest.approx(0.15, rel=1e-9)


# ---------------------------------------------------------------- rolling horizon: causality


def test_rolling_horizon_decisions_do_not_depend_on_later_sessions_or_prices():
    params = Eva2025Params()
    day = _typical_day()
    forecast = eva.forecast_fleet(params, _sessions(ROWS[:2]), 2, n_periods=6)
    first = rolling_horizon(day, params, session_forecast=forecast).schedule

    # s3 arrives at 02:00: change what it needs and when it leaves
    rows = [*ROWS[:2], ("s3", "02:00", "05:00", 9.0)]
    changed = rolling_horizon(_day(PRICES, rows, site=SITE), params, session_forecast=forecast).schedule
    before = first["t"] < 2
    pd.testing.assert_frame_equal(first[before].reset_index(drop=True),
                                  changed[changed["t"] < 2].reset_index(drop=True))
    assert not first[~before].reset_index(drop=True).equals(changed[changed["t"] >= 2].reset_index(drop=True))

    # with prices revealed hour by hour, a later real price changes nothing before it
    fc = np.array(PRICES) * 0.9
    one = rolling_horizon(day, params, price_forecast_eur_per_mwh=fc).schedule
    spiked = list(PRICES)
    spiked[4] = 400.0
    two = rolling_horizon(_day(spiked, ROWS, site=SITE), params, price_forecast_eur_per_mwh=fc).schedule
    pd.testing.assert_frame_equal(one[one["t"] < 4].reset_index(drop=True),
                                  two[two["t"] < 4].reset_index(drop=True))
    assert not one[one["t"] >= 4].reset_index(drop=True).equals(two[two["t"] >= 4].reset_index(drop=True))


def test_session_forecast_pools_only_earlier_same_weekdays():
    days = ["2019-05-07", "2019-05-14", "2019-05-21", "2019-05-28", "2019-06-04", "2019-06-11"]
    sessions = pd.concat([_sessions([(f"s{d}", "08:00", "12:00", 5.0)], date=d) for d in days],
                         ignore_index=True)
    pooled, n = eva.past_same_weekday(sessions, pd.Timestamp("2019-06-04"))
    assert n == 4 and sorted(pooled["session_id"]) == [f"s{d}" for d in days[:4]]
    assert (pooled["arrival"].dt.strftime("%Y-%m-%d %H:%M") == "2019-06-04 08:00").all()
    # the first week of the data has no history
    assert eva.past_same_weekday(sessions, pd.Timestamp("2019-05-07"))[1] == 0
    fc = eva.forecast_fleet(Eva2025Params(), pooled, n, n_periods=24)
    assert len(fc) == 1 and fc["p_max_kw"].iloc[0] == pytest.approx(6.6)  # 4 EVs / 4 days


# ---------------------------------------------------------------- clock changes


def _utc_prices(first_local_day, days=9, tz="Europe/Amsterdam"):
    # price = 100 + the UTC hour of day, so every hour can be recognised
    start = pd.Timestamp(first_local_day).tz_localize(tz).tz_convert("UTC") - pd.Timedelta(days=8)
    index = pd.date_range(start, periods=24 * (days + 9), freq="h", name="time_utc")
    return pd.Series(100.0 + index.hour, index=index, name="price_eur_per_mwh")


def _clock_inputs(price_day, acn_day, rows):
    from evgrid.data.market import load_bdew_profile

    sessions = pd.concat([
        _sessions(rows, date=acn_day),
        _sessions([("past", "08:00", "17:00", 12.0)],
                  date=str((pd.Timestamp(acn_day) - pd.Timedelta(days=7)).date())),
    ], ignore_index=True)
    return eva.EvaInputs(_utc_prices(price_day), sessions, load_bdew_profile("g1"))


@pytest.mark.parametrize(("price_day", "n_hours", "eight_am"), [
    ("2024-03-31", 23, 7),   # Amsterdam springs forward at 02:00
    ("2024-10-27", 25, 9),   # Amsterdam falls back at 03:00
])
def test_amsterdam_clock_change_days_keep_each_hour_on_its_price(price_day, n_hours, eight_am):
    params = Eva2025Params()
    rows = [("work", "08:00", "17:00", 20.0), ("early", "00:30", "06:15", 10.0)]
    inputs = _clock_inputs(price_day, price_day.replace("2024", "2019"), rows)
    day, results = eva.run_day(params, inputs, price_day)
    assert day.n_periods == n_hours
    work = day.fleet.set_index("session_id").loc["work"]
    assert (work["arrival"], work["departure"]) == (eight_am, eight_am + 9)
    # the period of 08:00 local carries the price of 08:00 local, in UTC
    periods = inputs.prices_on(price_day).index
    assert periods[eight_am].hour == 8
    assert day.price_eur_per_kwh[eight_am] * 1e3 == 100.0 + periods[eight_am].tz_convert("UTC").hour
    # the site load follows the clock too: the same load at 08:00 as on an ordinary Sunday
    assert day.site_load_kw[eight_am] == pytest.approx(
        eva.site_load_kw(inputs.profile, pd.Timestamp(price_day), params.site_peak_kw)[8])
    # the previous week's forecast is aligned by clock hour, not by position
    fc = eva.forecast_previous(inputs.prices_eur_per_mwh, pd.Timestamp(price_day))
    assert len(fc) == n_hours
    week_before = inputs.prices_on(pd.Timestamp(price_day) - pd.Timedelta(days=7))
    assert fc[eight_am] == week_before[week_before.index.hour == 8].iloc[0]
    for name, r in results.items():
        assert r.metrics["min_energy_ratio"] >= 1 - 1e-6, name
        assert len(eva.net_load_kw(day, r)) == n_hours
    assert results["rolling_horizon"].metrics["forecast_days"] == 1


@pytest.mark.parametrize(("price_day", "rows", "windows"), [
    # Los Angeles springs forward at 02:00: 01:30 PST to 04:00 PDT is 1.5 h, not 2.5
    ("2024-03-10", [("across", "01:30", "04:00", 5.0), ("work", "08:00", "17:00", 20.0)],
     {"across": (1.5, 3.0), "work": (8.0, 17.0)}),
    # Los Angeles falls back at 02:00: 00:30 PDT to 08:00 PST is 8.5 h
    ("2024-11-03", [("across", "00:30", "08:00", 15.0), ("work", "08:00", "17:00", 20.0)],
     {"across": (0.5, 9.0), "work": (8.0, 17.0)}),
])
def test_us_clock_change_days_keep_each_session_its_real_length(price_day, rows, windows):
    params = Eva2025Params()
    acn_day = price_day.replace("2024", "2019")  # the US changed clocks on the same dates in 2019
    inputs = _clock_inputs(price_day, acn_day, rows)
    assert len(eva.day_periods(acn_day, TZ)) != 24  # the sessions' own day changes clocks
    day, results = eva.run_day(params, inputs, price_day)
    assert day.n_periods == 24  # Amsterdam keeps its clocks that day
    fleet = day.fleet.set_index("session_id")
    for sid, (a, d) in windows.items():
        assert (fleet.at[sid, "arrival_h"], fleet.at[sid, "departure_h"]) == pytest.approx((a, d))
    for name, r in results.items():
        assert r.metrics["min_energy_ratio"] >= 1 - 1e-6, name


def test_month_command_rejects_a_month_without_prices_before_running(capsys):
    assert eva.main(["month", "2030-05"]) == 2
    err = capsys.readouterr().err
    assert "month = 2030-05" in err and "2015-01 to 2024-12" in err


def test_month_days_on_two_dask_workers_give_the_serial_tables():
    # Two synthetic days (prices for the week before too: the price forecasts read it)
    # run serially and on a 2-worker local Dask cluster: the same rows in the same order.
    from evgrid.data.market import load_bdew_profile

    rows = [("work", "08:00", "17:00", 20.0), ("early", "00:30", "06:15", 10.0)]
    sessions = pd.concat(
        [_sessions([(f"{sid}{d}", *rest) for sid, *rest in rows], date=d)
         for d in ("2019-06-21", "2019-06-22", "2019-06-28", "2019-06-29")],
        ignore_index=True)
    inputs = eva.EvaInputs(_utc_prices("2024-06-29", days=2), sessions, load_bdew_profile("g1"))
    params = Eva2025Params(month="2024-06")
    days = pd.to_datetime(["2024-06-28", "2024-06-29"])
    serial = eva.run_month(params, inputs, progress=False, days=days)
    dask = eva.run_month(params, inputs, progress=False, days=days, parallel={"workers": 2})
    assert list(serial[0]["day"].unique()) == [d.date() for d in days] and not serial[2]
    pd.testing.assert_frame_equal(serial[0].drop(columns="solve_s"), dask[0].drop(columns="solve_s"))
    pd.testing.assert_frame_equal(serial[1], dask[1])
    assert dask[2] == []
