"""Kerama (2025): the bounds that bracket the bi-level optimum, Benders' limits, the sweeps."""

import warnings

import numpy as np
import pytest

from conftest import make_small_kerama
from evgrid.core.config import ConfigError
from evgrid.core.solvers import SolverLimitWarning, solve
from evgrid.papers.kerama2025.case import one_scenario, time_of_use_prices
from evgrid.papers.kerama2025.decomposition import build_subproblem, solve_benders
from evgrid.papers.kerama2025.model import build_single_level, follower_optima
from evgrid.papers.kerama2025.params import Kerama2025Params, SweepPoint
from evgrid.papers.kerama2025.sweep import point_params, run_point


def test_value_function_lp_equals_the_strong_duality_subproblem_at_the_same_caps():
    # For fixed caps, strong duality and "cost <= the aggregator's optimum alone"
    # impose the same thing; the two LPs must agree, and the high-point
    # relaxation (no optimality at all) must not exceed them.
    case = make_small_kerama(n_scenarios=1, cap_bits=2)
    caps = {(a, t): case.b_max_kw[a] / 3 for a in case.aggregators for t in case.periods}
    model, bits = build_subproblem(case, 0)
    for bit in bits:  # grid level 1 of 0..3: cap = b_max / 3
        level = 1 if bit.index()[1] == 0 else 0
        bit.setlb(level)
        bit.setub(level)
    strong_duality = solve(model).objective
    one = one_scenario(case, 0)
    phi = follower_optima(one, caps)  # the aggregators alone at these caps; the builder solves nothing
    vf, _ = build_single_level(one, lower_level="value_function", caps_kw=caps, phi=phi)
    value_function = solve(vf).objective
    hpr, _ = build_single_level(one, lower_level="high_point")
    high_point = solve(hpr).objective
    assert value_function == pytest.approx(strong_duality, rel=1e-6)
    assert high_point <= value_function + 1e-6


def test_lower_level_options_are_checked():
    case = make_small_kerama(n_scenarios=1)
    with pytest.raises(ValueError, match="caps_kw is needed"):
        build_single_level(case, lower_level="value_function")
    with pytest.raises(ValueError, match="'reformulated', 'high_point' or 'value_function'"):
        build_single_level(case, lower_level="optimistic")


def test_a_benders_run_stopped_early_warns_with_its_gap():
    case = make_small_kerama(cap_bits=2)
    with pytest.warns(SolverLimitWarning, match=r"relative gap of .*%"):
        result = solve_benders(case, tol=0.0, max_iterations=1)
    assert not result.converged
    assert result.lower_bound <= result.objective
    assert result.relative_gap == pytest.approx(result.trace["gap"].iloc[-1])


def test_volatile_peak_prices_alternate_around_the_peak_price():
    params = Kerama2025Params(price_peak=0.25, price_peak_swing=0.1)
    prices = time_of_use_prices(params, np.arange(24))
    assert list(prices[17:21].round(2)) == [0.15, 0.35, 0.15, 0.35]
    with pytest.raises(ValueError, match="price_peak_swing"):
        Kerama2025Params(price_peak=0.1, price_peak_swing=0.2)


def test_a_sweep_point_merges_the_fleet_and_names_itself_when_invalid():
    base = Kerama2025Params()
    p = point_params(base, SweepPoint(label="60 EVs", fleet={"n_evs": 60}))
    assert p.fleet.n_evs == 60 and p.fleet.battery_kwh == base.fleet.battery_kwh
    with pytest.raises(ConfigError, match=r"(?s)sweep point .bad.*gamma_pv. = 3.0.*0 <= x <= 1"):
        point_params(base, SweepPoint(label="bad", gamma_pv=3.0))


def test_an_infeasible_sweep_point_is_recorded_not_dropped():
    params = make_small_kerama(gamma_load=0.3).params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = run_point(params, workers=1)
    assert row["status"] == "infeasible"
    assert "lower voltage limit (Eq. 6)" in row["message"]
    assert np.isnan(row["peak_kw_proposed"]) and row["peak_kw_baseline"] > 0


def test_the_spread_grid_point_is_the_flattest_cap_that_serves_every_fleet():
    from evgrid.formulations.fleet import densest_need
    from evgrid.papers.kerama2025.case import N_PERIODS
    from evgrid.papers.kerama2025.decomposition import _spread_grid_point

    case = make_small_kerama(cap_bits=4)
    hat = _spread_grid_point(case)
    top = 2**4 - 1
    for i, a in enumerate(case.aggregators):
        levels = {sum(2**k * hat[i * N_PERIODS + t, k] for k in range(4)) for t in case.periods}
        assert len(levels) == 1  # one cap for every hour
        level = levels.pop()
        # the densest need of the aggregator's EVs, over scenarios and windows
        rate = max(densest_need(case.fleet(a, s), N_PERIODS)["rate_kw"] for s in case.scenarios)
        step = case.b_max_kw[a] / top
        assert level * step >= rate - 1e-9
        assert level == top or (level - 2) * step < rate  # one level of slack, no more


def test_an_infeasible_high_point_relaxation_stops_benders_with_the_reason(monkeypatch):
    # A fleet the feeder cannot carry at all makes a scenario's high-point
    # relaxation infeasible (seen at 1000 EVs on the paper feeder, where that
    # LP alone takes minutes); Benders must then stop at once and say why.
    from evgrid.papers.kerama2025 import decomposition
    from evgrid.papers.kerama2025.model import NetworkInfeasibleError

    real = decomposition._high_point_bound
    monkeypatch.setattr(decomposition, "_high_point_bound",
                        lambda token, case, s: None if s == 1 else real(token, case, s))
    case = make_small_kerama()
    with pytest.raises(NetworkInfeasibleError, match=r"no schedule of the 4 EVs .*scenario\(s\) \[1\]"):
        solve_benders(case)


def test_the_fair_baseline_delivers_the_same_energy_as_the_proposed_schedule():
    # Table 2 compares schedules that deliver the same service: the baseline charges
    # every EV to its required energy, as the optimised schedule does (the old
    # baseline charged to soc_max, about 20% more energy at paper size).
    from evgrid.papers.kerama2025.evaluate import baseline_schedule

    case = make_small_kerama(cap_bits=2)
    eta_c = case.params.fleet.charge_efficiency
    eta_d = case.params.fleet.discharge_efficiency
    result = solve_benders(case, tol=1e-3)
    fair = baseline_schedule(case, charge_to="required")
    full = baseline_schedule(case, charge_to="full")
    for s in case.scenarios:
        need = float((case.fleets[s]["e_req_kwh"] - case.fleets[s]["e_init_kwh"]).clip(lower=0).sum())
        soc = result.scenarios[s].soc
        proposed = float((eta_c * soc["p_ch_kw"] - soc["p_dis_kw"] / eta_d).sum())  # dt = 1 h
        baseline = eta_c * float(fair.loc[fair["scenario"] == s, "b_imp_kw"].sum())
        to_full = eta_c * float(full.loc[full["scenario"] == s, "b_imp_kw"].sum())
        assert proposed == pytest.approx(need, rel=1e-6)
        assert baseline == pytest.approx(need, rel=1e-6)
        assert to_full > need * 1.05  # the old baseline delivered more
