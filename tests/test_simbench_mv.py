"""SimBench MV grids: radial after their switches, and DistFlow against the AC power flow on them."""

import pandas as pd
import pytest

from evgrid.analysis.distflow_check import distflow_vs_ac
from evgrid.formulations.distflow import radial_lines
from evgrid.networks.simbench_mv import NotRadialError, load_simbench_mv, radialise

simbench = pytest.importorskip("simbench")


@pytest.fixture(scope="module")
def semiurb():
    return load_simbench_mv("1-MV-semiurb--0-sw")


def test_the_semi_urban_grid_is_one_tree_rooted_at_its_external_grid(semiurb):
    buses, branches = semiurb.buses, semiurb.branches
    assert len(buses) == 115 and len(branches) == 114  # 117 buses less two fused busbar sections
    assert buses["bus"].tolist() == list(range(115))
    assert buses.loc[buses["is_slack"], "bus"].tolist() == [0]
    assert buses.at[0, "vn_kv"] == 110.0 and set(buses["vn_kv"].iloc[1:]) == {20.0}
    lines = radial_lines(semiurb)  # orients every branch away from the root; raises if not a tree
    assert len(lines) == 114
    # the two 40 MVA HV/MV units run in parallel: one branch, parallel = 2
    trafo = semiurb.net.trafo
    assert len(trafo) == 1 and int(trafo["parallel"].iloc[0]) == 2
    assert (branches["kind"] == "transformer").sum() == 1
    switching = semiurb.extra["switching"]
    opened = switching[switching["action"].str.contains("out of service")]
    assert len(opened) == 8 and not opened["closed"].any()  # the normally open points
    assert semiurb.net.load["profile"].notna().all()  # SimBench profiles stay attached


def test_linear_distflow_matches_the_ac_power_flow_on_the_semi_urban_grid(semiurb):
    lossless = distflow_vs_ac(semiurb, losses="none")
    with_losses = distflow_vs_ac(semiurb, losses="pwl_convex")
    # the MV grid is short and stiff: LinDistFlow is within 0.003 pu of AC at every bus
    assert lossless.attrs["max_abs_error_pu"] < 0.003
    assert with_losses.attrs["max_abs_error_pu"] < 0.003
    # the PWL losses (lines and transformer copper) against AC's, which add the iron losses
    assert 100 < with_losses.attrs["losses_kw"] < with_losses.attrs["losses_kw_ac"]
    assert abs(with_losses.attrs["losses_error_pct"]) < 30


def test_a_grid_with_chained_busbar_switches_and_its_root_elsewhere_loads_radially():
    comm = load_simbench_mv("1-MV-comm--0-sw")  # external grid at bus 1, busbar switches in a chain
    assert len(comm.branches) == len(comm.buses) - 1
    assert comm.buses.loc[comm.buses["is_slack"], "bus"].tolist() == [0]
    assert len(radial_lines(comm)) == len(comm.branches)


def test_a_loop_left_by_the_switches_is_named():
    net = simbench.get_simbench_net("1-MV-rural--0-sw")
    net.switch["closed"] = True  # close the normally open points: the rings close
    with pytest.raises(NotRadialError, match=r"not radial after its switches: \d+ loop\(s\), e\.g\. through buses .*MV1"):
        radialise(net)


def test_an_unknown_grid_code_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"code='1-LV-rural1--0-sw' is not a SimBench MV grid here: allowed 1-MV-rural"):
        load_simbench_mv("1-LV-rural1--0-sw")
    with pytest.raises(ValueError, match="vmin"):
        load_simbench_mv(vmin_pu=1.1, vmax_pu=1.0)


def test_radialise_reports_every_switch():
    net = simbench.get_simbench_net("1-MV-semiurb--0-sw")
    n_switches = len(net.switch)
    table = radialise(net)
    assert isinstance(table, pd.DataFrame) and len(table) == n_switches
    assert net.switch.empty


def test_hourly_bus_profiles_keep_the_energy_of_the_quarter_hours(semiurb):
    from evgrid.data.simbench import YEAR_START, bus_profiles, evening_peak_day, residential_kw

    day = evening_peak_day(semiurb)
    assert day == pd.Timestamp("2016-01-27") and day.dayofweek < 5  # a Wednesday in January
    start = day + pd.Timedelta(hours=12)
    profiles = bus_profiles(semiurb, start)
    assert profiles.load_kw.shape == (115, 24) and profiles.gen_kw.shape == (115, 24)
    raw = simbench.get_absolute_values(semiurb.net, profiles_instead_of_study_cases=True)
    first = int((start - YEAR_START) / pd.Timedelta(minutes=15))
    for key, table in [(("load", "p_mw"), profiles.load_kw), (("sgen", "p_mw"), profiles.gen_kw)]:
        quarter_hours_kwh = raw[key].iloc[first : first + 96].to_numpy().sum() * 1e3 / 4
        assert table.to_numpy().sum() == pytest.approx(quarter_hours_kwh, rel=1e-9)
    homes = residential_kw(semiurb)
    assert homes.index.tolist() == list(range(115)) and homes.iloc[0] == 0  # none at the 110 kV root
    assert 0 < homes.sum() < 1e3 * semiurb.net.load["p_mw"].sum()
    with pytest.raises(ValueError, match=r"start=2016-12-31 13:00:00 is not a whole hour with 24 h"):
        bus_profiles(semiurb, "2016-12-31 13:00")
    with pytest.raises(ValueError, match="not a whole hour"):
        bus_profiles(semiurb, "2016-01-27 12:30")
