"""Kerama (2025): the pessimistic solution over uniform off-peak caps."""

import pandas as pd
import pytest

from conftest import make_small_kerama
from evgrid.papers.kerama2025.pessimistic import (
    COLUMNS,
    evaluate_level,
    import_bound_schedule,
    off_peak_case,
    pessimistic_uniform_caps,
    uniform_caps,
)
from evgrid.papers.kerama2025.ties import followers_alone_schedule, worst_tie_schedule


@pytest.fixture(scope="module")
def case():
    return off_peak_case(make_small_kerama(cap_bits=2))


def test_the_lever_is_the_off_peak_block(case):
    assert case.params.cap_hours == [0, 1, 2, 3, 4, 5, 6, 22, 23]
    caps = uniform_caps(case, 1)
    capped = {t for _a, t in case.free_caps}
    for a in case.aggregators:
        for t in case.periods:
            expected = case.b_max_kw[a] / 3 if t in capped else case.b_max_kw[a]
            assert caps.loc[a, t] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"level=4 outside the cap grid 0-3"):
        uniform_caps(case, 4)


def test_the_import_bound_is_above_every_tie_in_every_capped_hour(case):
    caps = uniform_caps(case, 2)
    _, optimum = followers_alone_schedule(case, caps)
    tie = worst_tie_schedule(case, caps, optimum).schedule
    bound = import_bound_schedule(case, caps)
    key = ["scenario", "aggregator", "t"]
    both = tie.merge(bound, on=key, suffixes=("_tie", "_bound"))
    assert len(both) == len(tie)
    assert (both["b_imp_kw_tie"] <= both["b_imp_kw_bound"] + 1e-6).all()
    assert (both["b_imp_kw_bound"] <= pd.Series(case.b_max_kw).loc[both["aggregator"]].to_numpy() + 1e-9).all()


def test_an_unservable_level_is_recorded_not_dropped(case):
    row = evaluate_level(case, 0)  # no import at all off-peak: the night-only EVs cannot charge
    assert not row["servable"] and not row["guaranteed"]


@pytest.fixture(scope="module")
def serial_table(case):
    return pessimistic_uniform_caps(case, levels=[1, 2, 3])


def test_the_pessimistic_level_is_the_cheapest_guaranteed_one(serial_table):
    table = serial_table
    assert list(table.columns) == COLUMNS and list(table["level"]) == [1, 2, 3]
    ok = table[table["guaranteed"]]
    assert len(ok)  # the small feeder is never stressed
    best = table.attrs["best_level"]
    assert best == int(ok.loc[ok["worst_tie_objective_usd"].idxmin(), "level"])
    # a lower cap can only narrow what the worst tie does in the capped hours
    assert table["bound_low_voltage_violations"].is_monotonic_increasing


def test_levels_on_two_workers_give_the_serial_table(case, serial_table):
    serial = serial_table
    parallel = pessimistic_uniform_caps(case, levels=[1, 2, 3], parallel={"workers": 2})
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial.attrs == parallel.attrs
