"""AC verification of a time series against pandapower's own power flows."""

import copy

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from evgrid.analysis.acverify import ac_time_series
from evgrid.networks import load_ieee33


@pytest.fixture(scope="module")
def ieee33():
    return load_ieee33()


def _base_loads(data, factors, labels=None):
    """Base loads of the feeder times each factor, one period per factor (kW, kvar)."""
    kw = data.buses["p_load_pu"].to_numpy() * data.base_mva * 1e3
    kvar = data.buses["q_load_pu"].to_numpy() * data.base_mva * 1e3
    labels = list(range(len(factors))) if labels is None else labels
    index = pd.Index(data.buses["bus"], name="bus")
    return (
        pd.DataFrame(np.outer(kw, factors), index=index, columns=labels),
        pd.DataFrame(np.outer(kvar, factors), index=index, columns=labels),
    )


def _pandapower_alone(data, factor, v_source_pu):
    """The reference: pandapower's power flow of the feeder with its loads scaled."""
    net = copy.deepcopy(data.net)
    net.load["scaling"] = factor
    net.ext_grid["vm_pu"] = v_source_pu
    pp.runpp(net, numba=False)
    return net


def test_one_period_reproduces_the_published_base_case_and_leaves_the_input_alone(ieee33):
    loads_before = ieee33.net.load.copy()
    ext_grid_before = ieee33.net.ext_grid.copy()
    p_kw, q_kvar = _base_loads(ieee33, [1.0], labels=["base"])
    ac = ac_time_series(ieee33, p_kw, q_kvar, v_source_pu=1.0)
    # Baran & Wu (1989): 202.7 kW losses, lowest voltage 0.913 pu at bus 18.
    assert ac.losses_kw["base"] == pytest.approx(202.68, abs=0.5)
    assert ac.vm_pu["base"].min() == pytest.approx(0.9131, abs=0.0005)
    assert ac.bus_name[ac.vm_pu["base"].idxmin()] == "18"
    # The substation supplies the 3715 kW of load plus the losses.
    assert ac.import_kw["base"] == pytest.approx(3715.0 + ac.losses_kw["base"], abs=1e-3)
    pd.testing.assert_frame_equal(ieee33.net.load, loads_before)
    pd.testing.assert_frame_equal(ieee33.net.ext_grid, ext_grid_before)


def test_every_period_matches_an_independent_power_flow(ieee33):
    factors = [0.4, 1.0, 1.3, 0.7]
    p_kw, q_kvar = _base_loads(ieee33, factors)
    ac = ac_time_series(ieee33, p_kw, q_kvar, v_source_pu=1.03)
    for k, factor in enumerate(factors):
        ref = _pandapower_alone(ieee33, factor, 1.03)
        np.testing.assert_allclose(ac.vm_pu[k].to_numpy(), ref.res_bus["vm_pu"], atol=1e-8)
        i_ref = ref.res_line.loc[ac.line_i_ka.index, "i_ka"]  # the 32 closed lines
        np.testing.assert_allclose(ac.line_i_ka[k].to_numpy(), i_ref, atol=1e-8)
        # Both stop at pandapower's mismatch tolerance (1e-8 MVA per bus) from different starts.
        assert ac.losses_kw[k] == pytest.approx(ref.res_line["pl_mw"].sum() * 1e3, abs=1e-3)
        assert ac.import_kw[k] == pytest.approx(ref.res_ext_grid["p_mw"].sum() * 1e3, abs=1e-3)


def test_under_voltages_are_found_bus_by_bus(ieee33):
    p_kw, q_kvar = _base_loads(ieee33, [0.5, 1.0, 1.2])
    ac = ac_time_series(ieee33, p_kw, q_kvar, v_source_pu=1.0)
    found = ac.voltage_violations(0.95, 1.05)
    assert set(found["kind"]) == {"under"} and (found["vm_pu"] < 0.95).all()
    assert (found["limit"] == 0.95).all()
    # Base case: Baran & Wu buses 6-18 and 26-33 lie below 0.95 pu; at half load none does.
    at_base = found[found["period"] == 1]
    assert sorted(at_base["name"].astype(int)) == [*range(6, 19), *range(26, 34)]
    assert not (found["period"] == 0).any()
    for k, factor in enumerate([0.5, 1.0, 1.2]):
        ref = _pandapower_alone(ieee33, factor, 1.0)
        assert (found["period"] == k).sum() == int((ref.res_bus["vm_pu"] < 0.95).sum())
    # A tolerance of 0.03 pu forgives everything above 0.92 pu.
    assert len(ac.voltage_violations(0.95, 1.05, tol=0.03)) == int((ac.vm_pu < 0.92).sum().sum())


def test_over_voltages_from_reverse_flow(ieee33):
    p_kw, q_kvar = _base_loads(ieee33, [0.3])
    p_kw.loc[17, 0] -= 3000.0  # 3 MW of generation at bus 18, the far end
    ac = ac_time_series(ieee33, p_kw, q_kvar, v_source_pu=1.05)
    found = ac.voltage_violations(0.95, 1.05)
    assert len(found) > 0 and set(found["kind"]) == {"over"}
    assert "18" in set(found["name"]) and (found["vm_pu"] > 1.05).all()
    assert ac.import_kw[0] < 0  # the feeder exports
    assert ac.vm_pu[0].max() == pytest.approx(found["vm_pu"].max())


def test_thermal_limits_need_ratings(ieee33):
    p_kw, q_kvar = _base_loads(ieee33, [0.5, 1.0])
    ac = ac_time_series(ieee33, p_kw, q_kvar)
    assert ac.line_max_i_ka.isna().all()  # case33bw's 99999 kA: unrated
    assert ac.thermal_violations().empty
    rating = pd.Series(0.15, index=ac.line_i_ka.index)
    over = ac.thermal_violations(rating)
    assert len(over) == int((ac.line_i_ka > 0.15).sum().sum()) > 0
    first = over[(over["period"] == 1) & (over["line"] == 0)].iloc[0]
    assert (first["from_bus"], first["to_bus"]) == (0, 1)
    assert first["loading"] == pytest.approx(ac.line_i_ka.at[0, 1] / 0.15, rel=1e-12)


def test_a_diverging_period_is_named(ieee33):
    p_kw, q_kvar = _base_loads(ieee33, [1.0, 30.0], labels=["ok", "overload"])
    with pytest.raises(RuntimeError, match="'overload'"):
        ac_time_series(ieee33, p_kw, q_kvar)


def test_bad_tables_are_rejected(ieee33):
    p_kw, q_kvar = _base_loads(ieee33, [1.0])
    with pytest.raises(ValueError, match="buses \\[99\\]"):
        ac_time_series(ieee33, pd.concat([p_kw, pd.DataFrame({0: [1.0]}, index=[99])]), q_kvar)
    with pytest.raises(ValueError, match="same periods"):
        ac_time_series(ieee33, p_kw, q_kvar.rename(columns={0: 1}))
