"""Priolkar & Kunkolienkar (2025): the exact bilevel MILP against enumeration, the users' LPs and EHO."""

import warnings

import numpy as np
import pytest

from evgrid.algorithms.eho import eho_minimise
from evgrid.papers.priolkar2025 import lower, upper
from evgrid.papers.priolkar2025.case import make_instance
from evgrid.papers.priolkar2025.exact import (
    BlockPrices,
    enumerate_block_prices,
    load_range_kw,
    solve_exact,
)
from evgrid.papers.priolkar2025.params import Priolkar2025Params


def small(n_evs, weights=(0.6, 0.3, 0.1), seed=2025):
    return make_instance(Priolkar2025Params(n_evs=n_evs, n_stations=1, weights=weights, seed=seed))


def exact_quietly(case, **kwargs):
    # dense tangents: the bounds meet in one round instead of several MILPs from scratch
    kwargs.setdefault("tangents_per_hour", 200)
    kwargs.setdefault("polish_share", 0.0)  # the box MILPs only speed up large instances
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return solve_exact(case, **kwargs)


def test_the_load_range_holds_every_feasible_schedule():
    case = small(8)
    low, top = load_range_kw(case)
    for sched in (lower.asap_schedule(case), lower.respond(case, 2 * case.bp), lower.respond(case, 0.8 * case.bp)):
        load = sched.sum(axis=0) + case.base_kw
        assert np.all(load >= low - 1e-9) and np.all(load <= top + 1e-9)
    assert low.sum() > 0  # some EV has a window so short that it must charge in every hour of it


@pytest.mark.parametrize("weights", [(0.6, 0.3, 0.1), (0.4, 0.2, 0.4)])
def test_the_milp_restricted_to_block_prices_is_the_enumeration(weights):
    # the notes' enumeration alternative (Sec. 5, item 5) as an independent check of the MILP:
    # 3 blocks x 4 levels = 64 price vectors, each with its exact lower level
    case = small(4, weights)
    prices = BlockPrices.equal(3, (0.8, 1.2, 1.6, 2.0))
    dp_enum, f4_enum, sched_enum = enumerate_block_prices(case, weights, prices)
    fac = dp_enum / case.bp
    assert np.all(np.min(np.abs(fac[:, None] - np.array(prices.levels)[None, :]), axis=1) < 1e-12)
    assert all(np.ptp(fac[prices.blocks == b]) < 1e-12 for b in range(prices.n_blocks))
    res = exact_quietly(case, weights=weights, dp_blocks=prices, start_dp=2.0 * case.bp)
    assert res.status == "optimal"
    # the MILP is optimistic (ties for the aggregator), the enumeration breaks ties to the earlier
    # period; with distinct costs per hour there are no ties, and the two must agree
    slack = 1e-4 * abs(f4_enum) + 1e-9  # the MILP stops within its tolerance
    assert f4_enum - slack <= res.f4 <= f4_enum + 1e-7
    assert res.upper_bound >= f4_enum - 1e-7
    # and the unrestricted MILP can only do better: a relaxation of the restricted upper level
    free = exact_quietly(case, weights=weights)
    assert free.upper_bound >= f4_enum - 1e-7 and free.f4 >= f4_enum - slack


def test_the_enumeration_finds_the_best_of_every_combination():
    case = small(5)
    prices = BlockPrices.equal(2, (1.0, 2.0))
    _, best, _ = enumerate_block_prices(case, case.params.weights, prices)
    norm = upper.normalisation(case)
    values = []
    for f in [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]:
        dp = np.asarray(f)[prices.blocks] * case.bp
        values.append(upper.f4(lower.outcome(case, dp, lower.respond(case, dp)), norm, case.params.weights))
    assert best == pytest.approx(max(values), abs=1e-12)


@pytest.mark.parametrize(("n_evs", "weights"), [(4, (0.6, 0.3, 0.1)), (4, (0.4, 0.4, 0.2)), (5, (0.8, 0.1, 0.1))])
def test_the_exact_milp_on_small_instances(n_evs, weights):
    case = small(n_evs, weights)
    res = exact_quietly(case, weights=weights)
    assert res.status == "optimal" and res.proven
    assert res.upper_bound - res.f4 <= 1e-4 * abs(res.f4) + 1e-9  # the bounds meet
    # every user's schedule is its own LP optimum at the MILP's prices (re-solved alone)
    c = np.where(case.window, lower.costs_per_kwh(case, res.dp), 0.0)
    alone = lower.respond(case, res.dp)
    np.testing.assert_allclose((c * res.schedule).sum(axis=1), (c * alone).sum(axis=1), atol=1e-7)
    np.testing.assert_allclose(res.schedule.sum(axis=1), case.energy_kwh, rtol=1e-7)
    assert np.all(res.schedule <= case.p_max_kw + 1e-7) and np.all(res.schedule[~case.window] == 0)
    lo, hi = case.params.dr_price_factor
    assert np.all(res.dp >= lo * case.bp - 1e-9) and np.all(res.dp <= hi * case.bp + 1e-9)
    # the reported F4 is the exact F4 of the returned point, and the search that started it is no better
    out = lower.outcome(case, res.dp, res.schedule)
    assert res.f4 == pytest.approx(upper.f4(out, upper.normalisation(case), weights), abs=1e-12)
    assert res.f4_search <= res.upper_bound + 1e-9
    assert res.f4_greedy <= res.f4 + 1e-9  # the optimistic tie choice is at least as good
    # no EHO run beats the upper bound
    fit = upper.Fitness(case, weights)
    lo_x, hi_x = upper.search_box(case)
    best_eho = max(-eho_minimise(fit, lo_x, hi_x, seed=s).fitness for s in range(3))
    assert best_eho <= res.upper_bound + 1e-9


def test_the_milp_with_the_enumerations_prices_fixed_gives_its_value():
    # DP fixed to the enumeration's best: the MILP has only the users' LPs left, and its
    # response must be theirs (no ties here), with the same exact F4
    import pyomo.environ as pyo

    from evgrid.core.solvers import solve
    from evgrid.papers.priolkar2025.exact import build_bilevel_milp

    case = small(5)
    weights = case.params.weights
    dp, f4_enum, sched_enum = enumerate_block_prices(case, weights, BlockPrices.equal(4, (0.8, 1.4, 2.0)))
    m = build_bilevel_milp(case, upper.normalisation(case), weights, tangents_per_hour=200)
    for t in range(24):
        m.dp[t].fix(float(dp[t]))
    res = solve(m, "highs", mip_gap=1e-9, threads=1)
    assert res.status == "optimal"
    sched = np.zeros_like(sched_enum)
    for i, t in m.cells:
        sched[i, t] = pyo.value(m.p[i, t])
    np.testing.assert_allclose(sched, sched_enum, atol=1e-6)
    value = upper.f4(lower.outcome(case, dp, sched), upper.normalisation(case), weights)
    assert value == pytest.approx(f4_enum, abs=1e-6)
    assert f4_enum - 1e-9 <= res.objective <= f4_enum + 1e-3  # tangents under-estimate F2 only slightly


def test_the_time_limit_is_one_budget_for_every_round():
    case = make_instance(Priolkar2025Params(n_evs=30))
    res = exact_quietly(case, time_limit_s=8.0, search_s=2.0, polish_share=0.2)
    assert res.seconds <= 8.0 + 4.0  # the model's translation into HiGHS is not counted by HiGHS
    assert res.upper_bound >= res.f4 - 1e-9 and res.f4 >= res.f4_search - 1e-12
    if not res.proven:
        assert res.status == "time_limit" and res.gap > 0
