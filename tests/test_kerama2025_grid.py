"""Kerama (2025) on a SimBench MV grid: the case builder, the aggregators' buses, one small solve."""

import warnings

import pandas as pd
import pytest

pytest.importorskip("simbench")

from evgrid.core.solvers import SolverLimitWarning  # noqa: E402
from evgrid.networks import load_simbench_mv  # noqa: E402
from evgrid.papers.kerama2025.decomposition import solve_benders  # noqa: E402
from evgrid.papers.kerama2025.grid_case import evs_by_residential_load, make_grid_instance  # noqa: E402
from evgrid.papers.kerama2025.model import shared_path_impedance  # noqa: E402
from evgrid.papers.kerama2025.params import Kerama2025Params  # noqa: E402

DAY = "2016-01-27"  # evgrid.data.simbench.evening_peak_day of the semi-urban grid (tests/test_simbench_mv.py)


@pytest.fixture(scope="module")
def semiurb():
    return load_simbench_mv("1-MV-semiurb--0-sw")


def test_evs_go_to_the_most_residential_buses_in_proportion(semiurb):
    from evgrid.data.simbench import residential_kw

    counts = evs_by_residential_load(semiurb, 500, 20)
    assert sum(counts.values()) == 500 and len(counts) == 20
    homes = residential_kw(semiurb)
    assert min(homes[list(counts)]) >= homes.drop(list(counts)).max()  # the top 20 buses
    per_kw = pd.Series({b: n / homes[b] for b, n in counts.items()})
    assert per_kw.max() - per_kw.min() <= 1.0 / homes[list(counts)].min() + 1e-12  # rounding only
    with pytest.raises(ValueError, match=r"n_aggregators=500 is out of range: .* has 110 buses"):
        evs_by_residential_load(semiurb, 1000, 500)
    with pytest.raises(ValueError, match="total_evs=3 is below n_aggregators=5"):
        evs_by_residential_load(semiurb, 3, 5)


def test_the_grid_case_takes_its_load_and_generation_from_simbench(semiurb):
    params = Kerama2025Params(n_scenarios=2)
    case = make_grid_instance(params, semiurb, DAY, {2: 10, 11: 5})
    assert case.aggregator_bus == {0: 2, 1: 11} and case.b_max_kw == {0: 72.0, 1: 36.0}
    assert case.load_kw.shape == (115, 24) and case.clock_hour[0] == 12
    assert case.load_kw.to_numpy().max() > 100  # kW, SimBench's own profile of the day
    assert [len(case.fleet(a, 0)) for a in case.aggregators] == [10, 5]
    ratio = (case.pv_kw[1].sum().sum()) / (case.pv_kw[0].sum().sum())
    assert 0.6 <= ratio <= 1 / 0.6  # one generation factor per scenario
    with pytest.raises(ValueError, match=r"aggregator buses \[0, 999\] are not load buses"):
        make_grid_instance(params, semiurb, DAY, {0: 3, 999: 3})


def test_shared_path_impedance_follows_the_tree_whatever_the_branch_direction(semiurb):
    r, _x = shared_path_impedance(semiurb)
    assert r[0, 0] == 0 and (r.diagonal()[1:] > 0).all()  # every bus but the root lies behind a branch
    assert (r <= r.diagonal()[:, None] + 1e-15).all()  # a shared path is no longer than either path


def test_benders_solves_a_small_fleet_on_the_mv_grid_and_ac_agrees(semiurb):
    params = Kerama2025Params(n_scenarios=2, cap_bits=2)
    case = make_grid_instance(params, semiurb, DAY, evs_by_residential_load(semiurb, 12, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverLimitWarning)
        result = solve_benders(case, tol=0.005, max_iterations=5)
    assert result.lower_bound <= result.objective * (1 + 1e-9)
    for sol in result.scenarios.values():
        assert sol.distflow_vs_ac.attrs["max_abs_error_pu"] < 0.005
