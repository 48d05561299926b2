"""Balanced network loaders against their published reference solutions."""

import pandas as pd
import pytest

from evgrid.analysis.powerflow import run_ac_opf, run_ac_power_flow
from evgrid.networks import load_ieee14, load_ieee33


def test_ieee33_matches_baran_wu_losses_and_minimum_voltage():
    # Baran & Wu (1989): 202.7 kW losses, 0.9131 pu at bus 18 (index 17).
    flow = run_ac_power_flow(load_ieee33())
    assert flow.losses_kw == pytest.approx(202.7, abs=0.5)
    assert flow.min_vm["vm_pu"] == pytest.approx(0.9131, abs=0.0005)
    assert flow.min_vm["bus"] + 1 == 18


def test_ieee33_tables_are_per_unit_on_the_12_66_kv_base():
    data = load_ieee33()
    assert len(data.buses) == 33 and len(data.branches) == 32  # tie lines open
    assert (data.buses["vn_kv"] == 12.66).all()
    # Branch 1-2 of Baran & Wu: 0.0922 + j0.0470 ohm; z_base = 12.66^2 / 10 MVA.
    z_base = 12.66**2 / data.base_mva
    first = data.branches.iloc[0]
    assert first["r_pu"] * z_base == pytest.approx(0.0922, abs=1e-4)
    assert first["x_pu"] * z_base == pytest.approx(0.0470, abs=1e-4)
    # Total load 3715 kW + 2300 kvar.
    assert data.buses["p_load_pu"].sum() * data.base_mva == pytest.approx(3.715, abs=1e-6)
    assert data.buses["q_load_pu"].sum() * data.base_mva == pytest.approx(2.300, abs=1e-6)
    assert data.buses["is_slack"].sum() == 1 and bool(data.buses.loc[0, "is_slack"])


def test_ieee33_load_scale_scales_the_power_flow():
    heavy = run_ac_power_flow(load_ieee33(load_scale=1.2))
    assert heavy.losses_kw > 202.7 * 1.2  # losses grow faster than load


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"load_scale": -1.0}, "load_scale"), ({"vmin_pu": 1.06, "vmax_pu": 1.05}, "vmin_pu")],
)
def test_ieee33_rejects_bad_options(kwargs, field):
    with pytest.raises(ValueError, match=field):
        load_ieee33(**kwargs)


def test_ieee14_opf_reproduces_matpower_optimum():
    result = run_ac_opf(load_ieee14())
    assert result.cost_per_h == pytest.approx(8081.53, abs=0.5)


def test_ieee14_villanueva_variant_adds_11_mw_at_bus_14_only():
    standard, variant = load_ieee14(), load_ieee14(variant="villanueva2025")
    extra = variant.buses["p_fixed_gen_pu"] - standard.buses["p_fixed_gen_pu"]
    assert extra.loc[13] * variant.base_mva == pytest.approx(11.0)
    assert (extra.drop(13) == 0).all()
    pd.testing.assert_frame_equal(standard.branches, variant.branches)
    pd.testing.assert_series_equal(standard.buses["p_load_pu"], variant.buses["p_load_pu"])
    # The injection displaces generation: the OPF optimum must fall.
    assert run_ac_opf(variant).cost_per_h < 8081.53 - 100


def test_ieee14_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        load_ieee14(variant="ieee15")
