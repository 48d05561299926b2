"""IEEE 33-bus radial distribution feeder (Baran & Wu 1989)."""

from __future__ import annotations

import pandapower.networks as pn

from evgrid.core.config import check_voltage_limits
from evgrid.networks._pandapower import tables_from_pandapower
from evgrid.networks._tables import NetworkData

SOURCE_IEEE33 = (
    "M. E. Baran and F. F. Wu, 'Network reconfiguration in distribution systems for "
    "loss reduction and load balancing', IEEE Trans. Power Delivery 4(2):1401-1407, "
    "1989; data as shipped by pandapower.networks.case33bw (12.66 kV, 10 MVA base)."
)


def load_ieee33(
    *, load_scale: float = 1.0, vmin_pu: float = 0.95, vmax_pu: float = 1.05
) -> NetworkData:
    """Load the IEEE 33-bus feeder of Baran & Wu (1989).

    The feeder is 12.66 kV (some papers, e.g. Kerama 2025, state 4.16 kV; the
    published line impedances and the 202.7 kW base-case losses only hold at
    12.66 kV). The five tie lines of the reconfiguration study are open.

    Parameters
    ----------
    load_scale : float
        Multiplier on every spot load (0 < load_scale <= 5).
    vmin_pu, vmax_pu : float
        Voltage limits written into the bus table (0.8 <= vmin < vmax <= 1.2).

    Returns
    -------
    NetworkData
        ``net`` is the pandapower network; ``buses``/``branches`` are per unit
        on the 10 MVA base. Bus ``name`` is Baran & Wu's 1-33, the
        0-based ``bus`` index is pandapower's; bus 1 (index 0) is the substation.

    Raises
    ------
    ValueError
        If an option is out of range; the message names the option.
    """
    if not 0.0 < load_scale <= 5.0:
        raise ValueError(f"load_scale={load_scale!r} is out of range: allowed 0 < load_scale <= 5")
    check_voltage_limits(vmin_pu, vmax_pu)
    net = pn.case33bw()
    # Baran & Wu number the buses 1-33; pandapower's index stays 0-based.
    net.bus["name"] = [str(i + 1) for i in net.bus.index]
    net.load["scaling"] = load_scale
    buses, branches = tables_from_pandapower(net, vmin_pu=vmin_pu, vmax_pu=vmax_pu)
    return NetworkData(
        name="ieee33",
        net=net,
        buses=buses,
        branches=branches,
        base_mva=float(net.sn_mva),
        source=SOURCE_IEEE33,
        backend="pandapower",
    )
