"""Priolkar & Kunkolienkar (2025): the instance, the users' exact response and EHO's fitness."""

import numpy as np
import pytest

from evgrid.algorithms.eho import EHOOptions, eho_minimise
from evgrid.core.config import ConfigError, validate_section
from evgrid.papers.priolkar2025 import lower, upper
from evgrid.papers.priolkar2025.case import N_PERIODS, UnservableFleetError, make_instance
from evgrid.papers.priolkar2025.params import Priolkar2025Params


@pytest.fixture(scope="module")
def case():
    return make_instance(Priolkar2025Params())


def test_the_instance_follows_table_3(case):
    p = case.params
    clock = (p.horizon_start_h + case.arrival_h) % 24
    assert case.n_evs == 50 and np.all((clock >= 8) & (clock <= 19))
    assert np.all((case.energy_kwh >= 10) & (case.energy_kwh <= 50))
    assert case.bp.min() == pytest.approx(0.12) and case.bp.max() == pytest.approx(0.17)
    assert np.array_equal(np.bincount(case.station), np.full(10, 5))  # balanced assignment
    # every EV's window can deliver its energy at 7 kW (Eqs. 17-19), from ceil(arrival)
    assert np.all((case.last - case.first) * 7.0 >= case.energy_kwh)
    assert np.all(case.first >= case.arrival_h) and np.all(case.last <= N_PERIODS)
    again = make_instance(Priolkar2025Params())
    assert np.array_equal(again.energy_kwh, case.energy_kwh) and np.array_equal(again.last, case.last)


def test_the_users_knapsack_is_the_lp_optimum(case):
    # The lower level, re-solved alone as the coupled LP by HiGHS, has the same cost.
    rng = np.random.default_rng(0)
    dps = case.bp * rng.uniform(0.8, 2.0, size=(6, N_PERIODS))
    greedy = lower.respond(case, dps)
    assert greedy.shape == (6, case.n_evs, N_PERIODS)
    for dp, p in zip(dps, greedy, strict=True):
        c = np.where(case.window, lower.costs_per_kwh(case, dp), 0.0)
        lp = lower.respond_lp(case, dp)
        assert (c * p).sum() == pytest.approx((c * lp).sum(), rel=1e-9)
        np.testing.assert_allclose(p.sum(axis=1), case.energy_kwh, rtol=1e-12)
        assert p.max() <= 7.0 + 1e-12 and np.all(p[~case.window] == 0)


def test_uncontrolled_charging_starts_at_once_and_waits_nothing(case):
    asap = lower.asap_schedule(case)
    out = lower.outcome(case, case.bp, asap)
    np.testing.assert_allclose(asap.sum(axis=1), case.energy_kwh)
    assert out.mean_wait_h == pytest.approx(0.0, abs=1e-12)
    assert out.min_kw == 0.0 and out.peak_kw <= 50 * 7.0
    assert out.dr_benefit_usd == pytest.approx(0.0)  # DP = BP: no margin


def test_station_limits_cannot_bind_with_five_evs_per_station(case):
    # 5 EVs x 7 kW = 35 kW < 50 kW: the limits and priorities of Table 1 are inert levers
    rng = np.random.default_rng(1)
    p = lower.respond(case, case.bp * rng.uniform(0.8, 2.0, size=(200, N_PERIODS)))
    assert lower.station_loads(case, p).max() <= 35.0 + 1e-9


def test_the_fitness_is_minus_f4_of_the_exact_response(case):
    fit = upper.Fitness(case)
    lo, hi = upper.search_box(case)
    assert len(lo) == 24 + 10 + 50
    x = np.random.default_rng(2).uniform(lo, hi, size=(4, len(lo)))
    values = fit(x)
    for xi, v in zip(x, values, strict=True):
        dp, _caps, _prio = upper.decode(case, xi)
        out = lower.outcome(case, dp, lower.respond(case, dp))
        assert -v == pytest.approx(upper.f4(out, fit.norm, case.params.weights), rel=1e-12)
    assert fit.evaluations == 4 and fit.lp_fallbacks == 0


def test_a_binding_station_limit_is_solved_as_the_coupled_lp():
    case = make_instance(Priolkar2025Params(n_evs=20, n_stations=1, station_assignment="uniform",
                                            departure="overnight"))
    fit = upper.Fitness(case)
    lo, hi = upper.search_box(case)
    x = lo.copy()  # every DP at 0.8 BP, the one station at 50 kW
    p = fit.schedules(x[None])[0]
    assert fit.lp_fallbacks == 1
    assert lower.station_loads(case, p).max() <= 50.0 + 1e-6
    np.testing.assert_allclose(p.sum(axis=1), case.energy_kwh, rtol=1e-7)


def test_one_eho_run_at_the_papers_size_is_fast_and_seeded(case):
    fit = upper.Fitness(case)
    lo, hi = upper.search_box(case)
    a = eho_minimise(fit, lo, hi, EHOOptions(), seed=11)
    b = eho_minimise(fit, lo, hi, EHOOptions(), seed=11)
    assert a.fitness == b.fitness and a.evaluations == 2550
    # the published operator throws every DP and station-limit matriarch onto its lower bound
    # (34 of the 84 coordinates; a priority matriarch only when its clan centre is below 1/3)
    assert 34 / 84 <= a.matriarch_clipped < 40 / 84


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"weights": [0.3, 0.3, 0.3]}, ["weights", "sum to 0.9", "allow_unnormalised_weights"]),
        ({"dr_price_factor": [2.0, 0.8]}, ["dr_price_factor", "low <= high"]),
        ({"eho": {"n_elephants": 50, "n_clans": 7}}, ["n_clans = 7", "1, 2, 5, 10, 25, 50"]),
        ({"energy_kwh": [10, 200]}, ["energy_kwh", "more than the 24 h horizon"]),
    ],
)
def test_bad_parameters_are_named_before_anything_is_built(change, fragments):
    values = {**Priolkar2025Params().model_dump(), **change}
    with pytest.raises(ConfigError) as err:
        validate_section("priolkar2025", values)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_weights_as_printed_are_accepted_when_asked():
    p = Priolkar2025Params(weights=(0.5, 0.2, 0.4), allow_unnormalised_weights=True)
    assert sum(p.weights) == pytest.approx(1.1)


def test_an_unservable_fleet_names_the_ev_or_the_station():
    with pytest.raises(UnservableFleetError, match=r"station 0: its 50 EVs need .* kWh but at its lowest"):
        make_instance(Priolkar2025Params(n_stations=1, station_cap_kw=(5.0, 150.0), departure="overnight"))


@pytest.mark.parametrize(("n_evs", "weights"), [(5, (0.9, 0.0, 0.1)), (2, (0.6, 0.3, 0.1))])
def test_the_exact_bilevel_milp_on_a_small_instance(n_evs, weights):
    # The KKT single-level MILP: its users' schedules are optimal for them at its prices
    # (the lower level re-solved alone), its bounds meet, and no EHO run beats it.
    import warnings

    from evgrid.papers.priolkar2025.exact import solve_exact

    case = make_instance(Priolkar2025Params(n_evs=n_evs, n_stations=1, weights=weights))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = solve_exact(case)  # no time limit: the same verdict on a busy machine
    assert res.upper_bound - res.f4 <= 1e-4 * abs(res.f4) + 1e-9
    c = np.where(case.window, lower.costs_per_kwh(case, res.dp), 0.0)
    alone = lower.respond_lp(case, res.dp)
    np.testing.assert_allclose((c * res.schedule).sum(axis=1), (c * alone).sum(axis=1), atol=1e-7)
    np.testing.assert_allclose(res.schedule.sum(axis=1), case.energy_kwh, rtol=1e-7)
    assert res.f4_greedy <= res.f4 + 1e-9  # the optimistic tie choice is at least as good
    fit = upper.Fitness(case)
    lo, hi = upper.search_box(case)
    best_eho = max(-eho_minimise(fit, lo, hi, seed=s).fitness for s in range(5))
    assert best_eho <= res.f4 + 1e-9


def test_the_papers_own_numbers_are_checked_against_each_other():
    from evgrid.core.compare import load_paper_values
    from evgrid.papers.priolkar2025.checks import min_variance_kw2, paper_consistency

    table = paper_consistency(load_paper_values("priolkar2025")).set_index("check")
    ok = table["consistent"]
    assert ok["Table 4 Waiting time (Mean): improvement (%)"]
    assert not ok["Table 4 Waiting time (Median): improvement (%)"]  # -0.69% printed, -69.7% true
    assert not ok["Peak demand within what the fleet can draw (kW)"]  # 413 kW > 50 x 7 kW
    assert table.loc["Daily energy, uncontrolled: 24 h x LF x peak (kWh)", "claimed"] == pytest.approx(6245, abs=1)
    assert not ok["Variance of load, uncontrolled (kW^2) at least the bound"]
    assert table.loc["Variance of load, uncontrolled (kW^2) at least the bound", "recomputed"] == pytest.approx(3816, abs=2)
    assert not ok["Max. deviation, unoptimized (kW) at least the bound"]
    assert not ok["Table 9 weights 0.3:0.3:0.3 sum to 1"] and not ok["Table 9 weights 0.5:0.2:0.4 sum to 1"]
    assert ok["Table 9 weights 0.6:0.3:0.1 sum to 1"]
    for name in ("DR benefit - grid stress", "DR benefit - wait", "grid stress - wait"):
        assert not ok[f"Table 9 correlation {name}"]
    assert table.loc["Table 9 correlation DR benefit - grid stress", "recomputed"] == pytest.approx(0.73, abs=0.01)
    assert not ok["Share of EVs waiting under 1.5 h (%) at most the share under 2 h (Fig. 3)"]
    assert not ok["Mean load in 18-21 h that the peak-hour DR revenue needs (kW), at most the optimised peak"]
    # the variance bound: one hour at the peak, one at the minimum, the rest equal
    loads = np.array([413.0, 0.0] + [(24 * 260.19 - 413.0) / 22] * 22)
    assert min_variance_kw2(413.0, 0.0, 260.19) == pytest.approx(loads.var())


def test_the_centralised_schedule_bounds_every_price_induced_one(case):
    from evgrid.papers.priolkar2025.central import central_schedule

    var_sched = central_schedule(case, "variance")
    peak_sched = central_schedule(case, "peak")
    for p in (var_sched, peak_sched):
        np.testing.assert_allclose(p.sum(axis=1), case.energy_kwh, rtol=1e-6)
        assert np.all(p[~case.window] == 0) and p.max() <= 7.0
    best_var = lower.outcome(case, case.bp, var_sched).grid_stress_kw2
    best_peak = lower.outcome(case, case.bp, peak_sched).peak_kw
    assert best_var <= lower.outcome(case, case.bp, peak_sched).grid_stress_kw2 + 1e-3
    rng = np.random.default_rng(5)
    induced = lower.respond(case, case.bp * rng.uniform(0.8, 2.0, size=(300, N_PERIODS)))
    for p in (*induced, lower.asap_schedule(case)):
        out = lower.outcome(case, case.bp, p)
        assert out.grid_stress_kw2 >= best_var - 1e-3 and out.peak_kw >= best_peak - 1e-6


def test_the_start_time_variant_is_the_best_uninterrupted_block(case):
    rng = np.random.default_rng(3)
    dps = case.bp * rng.uniform(0.8, 2.0, size=(3, N_PERIODS))
    blocks = lower.respond_start_time(case, dps)
    eps = case.params.wait_value_usd_per_h
    for dp, p in zip(dps, blocks, strict=True):
        np.testing.assert_allclose(p.sum(axis=1), case.energy_kwh, rtol=1e-12)
        for i in range(8):  # against every feasible start, enumerated one by one
            on = np.flatnonzero(p[i] > 0)
            assert np.all(np.diff(on) == 1) and on[0] >= case.first[i] and on[-1] < case.last[i]
            chosen = (dp * p[i]).sum() + eps * (on[0] - case.first[i])
            for s in range(case.first[i], case.last[i] - len(on) + 1):
                q = np.zeros(N_PERIODS)
                q[s:s + len(on)] = p[i, on]
                assert chosen <= (dp * q).sum() + eps * (s - case.first[i]) + 1e-12
        # the wait of a block is its start delay
        np.testing.assert_allclose(lower.wait_hours(case, p)[:8],
                                   [np.flatnonzero(p[i])[0] - case.first[i] for i in range(8)])
    variant = make_instance(Priolkar2025Params(lower_level="start_time"))
    fit = upper.Fitness(variant)
    lo, hi = upper.search_box(variant)
    assert np.isfinite(fit(np.random.default_rng(0).uniform(lo, hi, size=(5, len(lo))))).all()
