"""Kerama (2025): the followers alone, the ties among their optima, and a cap that binds."""

import numpy as np
import pandas as pd
import pytest

from conftest import make_small_kerama
from evgrid.papers.kerama2025.evaluate import aggregator_profit_usd
from evgrid.papers.kerama2025.model import follower_optimum
from evgrid.papers.kerama2025.ties import (
    base_net_load_kw,
    followers_alone_schedule,
    worst_tie_schedule,
)


def _linear_peak(case, schedule, scenario):
    rows = schedule[schedule["scenario"] == scenario]
    ev = (rows["b_imp_kw"] - rows["b_exp_kw"]).groupby(rows["t"]).sum().reindex(case.periods)
    return float((base_net_load_kw(case, scenario) + ev.to_numpy()).max())


@pytest.fixture(scope="module")
def case():
    return make_small_kerama(cap_bits=2)


def test_followers_alone_reach_each_aggregators_own_optimum(case):
    schedule, optimum = followers_alone_schedule(case)
    for (a, s), value in optimum.items():
        assert value == pytest.approx(follower_optimum(case, a, s), rel=1e-9, abs=1e-9)
    profit = aggregator_profit_usd(case, schedule)
    for s in case.scenarios:
        assert profit[s] == pytest.approx(-sum(optimum[a, s] for a in case.aggregators), abs=1e-5)


def test_the_worst_tie_is_optimal_for_every_aggregator_and_loads_the_feeder_at_least_as_much(case):
    alone, optimum = followers_alone_schedule(case)
    worst = worst_tie_schedule(case)
    profit = aggregator_profit_usd(case, worst.schedule)
    for s in case.scenarios:
        # a tie: every aggregator still at its optimum (to the tie tolerance)
        assert profit[s] == pytest.approx(-sum(optimum[a, s] for a in case.aggregators), abs=1e-4)
        assert worst.peak_kw_linear[s] == pytest.approx(_linear_peak(case, worst.schedule, s), abs=1e-4)
        assert worst.peak_kw_linear[s] >= _linear_peak(case, alone, s) - 1e-6


def test_a_cap_below_the_bid_bound_binds_and_changes_the_followers_schedule(case):
    alone, optimum = followers_alone_schedule(case)
    a, s = case.aggregators[0], case.scenarios[0]
    imports = alone[(alone["aggregator"] == a) & (alone["scenario"] == s)].set_index("t")["b_imp_kw"]
    busy = imports.idxmax()
    assert imports[busy] > 1.0, "the test needs an hour in which the aggregator imports"
    caps = pd.DataFrame(
        {t: [case.b_max_kw[x] for x in case.aggregators] for t in case.periods}, index=case.aggregators
    )
    caps.loc[a, busy] = imports[busy] / 2  # half of what it imports there
    capped, capped_optimum = followers_alone_schedule(case, caps)
    row = capped[(capped["aggregator"] == a) & (capped["scenario"] == s)].set_index("t")
    assert row.loc[busy, "b_imp_kw"] <= imports[busy] / 2 + 1e-6  # the cap binds ...
    assert not np.allclose(row["b_imp_kw"].to_numpy(), imports.to_numpy())  # ... and moves energy
    assert capped_optimum[a, s] >= optimum[a, s] - 1e-9  # and cannot make the aggregator better off
