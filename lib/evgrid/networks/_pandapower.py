"""Tidy per-unit tables from a pandapower network (shared by the balanced loaders)."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.converter.pypower import to_ppc

from evgrid.networks._tables import BRANCH_COLUMNS, BUS_COLUMNS

# Column positions in a PYPOWER branch / bus matrix (pypower.idx_brch / idx_bus).
_F_BUS, _T_BUS, _BR_R, _BR_X, _BR_B, _RATE_A, _TAP = 0, 1, 2, 3, 4, 5, 8
_BUS_TYPE = 1
_REF = 3
#: pandapower writes 99999 kA for "no rating"; anything above this is treated as unrated.
_UNRATED_KA = 9_999.0


def tables_from_pandapower(
    net: pp.pandapowerNet, *, vmin_pu: float, vmax_pu: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(buses, branches)`` per unit on ``net.sn_mva``.

    The branch data come from pandapower's own PYPOWER conversion, so lines and
    transformers (with their off-nominal taps) are treated alike; out-of-service
    branches (e.g. the 33-bus tie switches) are dropped by that conversion.
    """
    ppc = to_ppc(net, init="flat")
    if len(ppc["bus"]) != len(net.bus) or not np.array_equal(
        ppc["bus"][:, 0].real.astype(int), np.arange(len(net.bus))
    ):
        raise ValueError("tables_from_pandapower expects buses indexed 0..n-1 in order")

    base_mva = float(ppc["baseMVA"])
    bus = ppc["bus"].real
    # Loads and fixed (non-dispatched) generation are kept apart: PYPOWER's bus
    # matrix nets static generators into the demand.
    on = net.load[net.load["in_service"]]
    p_load = (on["p_mw"] * on["scaling"]).groupby(on["bus"]).sum()
    q_load = (on["q_mvar"] * on["scaling"]).groupby(on["bus"]).sum()
    sg = net.sgen[net.sgen["in_service"]]
    p_sgen = (sg["p_mw"] * sg["scaling"]).groupby(sg["bus"]).sum()
    q_sgen = (sg["q_mvar"] * sg["scaling"]).groupby(sg["bus"]).sum()
    idx = net.bus.index
    buses = pd.DataFrame(
        {
            "bus": net.bus.index.to_numpy(),
            "name": net.bus["name"].astype(str).to_numpy(),
            "vn_kv": net.bus["vn_kv"].to_numpy(dtype=float),
            "p_load_pu": p_load.reindex(idx, fill_value=0.0).to_numpy() / base_mva,
            "q_load_pu": q_load.reindex(idx, fill_value=0.0).to_numpy() / base_mva,
            "p_fixed_gen_pu": p_sgen.reindex(idx, fill_value=0.0).to_numpy() / base_mva,
            "q_fixed_gen_pu": q_sgen.reindex(idx, fill_value=0.0).to_numpy() / base_mva,
            "vmin_pu": vmin_pu,
            "vmax_pu": vmax_pu,
            "is_slack": bus[:, _BUS_TYPE] == _REF,
        }
    )[[*BUS_COLUMNS, "p_fixed_gen_pu", "q_fixed_gen_pu"]]

    br = ppc["branch"].real
    from_bus = br[:, _F_BUS].astype(int)
    tap = np.where(br[:, _TAP] == 0.0, 1.0, br[:, _TAP])
    rate_mva = br[:, _RATE_A]
    # A MVA rating at the from-bus's nominal voltage is a current limit in per unit.
    i_max_pu = np.where(rate_mva >= _UNRATED_KA, np.nan, rate_mva / base_mva)
    n_lines = int(net.line["in_service"].sum())
    branches = pd.DataFrame(
        {
            "branch": np.arange(len(br)),
            "from_bus": from_bus,
            "to_bus": br[:, _T_BUS].astype(int),
            "r_pu": br[:, _BR_R],
            "x_pu": br[:, _BR_X],
            "b_pu": br[:, _BR_B],
            "i_max_pu": i_max_pu,
        }
    )[BRANCH_COLUMNS]
    branches["tap_ratio"] = tap
    branches["kind"] = ["line"] * n_lines + ["transformer"] * (len(br) - n_lines)
    return buses, branches
