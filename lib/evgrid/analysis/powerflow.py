"""AC power flow and AC OPF on a loaded network, returning plain tables.

The network's ``backend`` decides the engine: ``"pandapower"`` networks run
pandapower (Newton-Raphson power flow, PIPS interior-point OPF),
``"opendss"`` ones (the unbalanced IEEE 13-node feeder) OpenDSS
(:mod:`evgrid.networks.opendss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandapower as pp
import pandas as pd

from evgrid.networks import NetworkData, opendss


@dataclass(frozen=True)
class PowerFlowResult:
    """Solved AC power flow.

    Attributes
    ----------
    buses : pandas.DataFrame
        ``bus``, ``name``, ``phase`` (``"abc"`` for balanced networks),
        ``vm_pu``, ``va_degree``.
    losses_kw : float
        Total active losses of lines and transformers.
    """

    network: str
    buses: pd.DataFrame
    losses_kw: float

    @property
    def min_vm(self) -> pd.Series:
        """The row of the lowest voltage magnitude."""
        return self.buses.loc[self.buses["vm_pu"].idxmin()]


@dataclass(frozen=True)
class OpfResult:
    """Solved AC optimal power flow: total generation cost and bus voltages."""

    network: str
    cost_per_h: float
    buses: pd.DataFrame
    p_gen_mw: pd.Series


def run_ac_power_flow(data: NetworkData) -> PowerFlowResult:
    """Run a full AC power flow on ``data`` and collect voltages and losses.

    Raises
    ------
    RuntimeError
        If the power flow does not converge.
    """
    if data.backend == "opendss":
        buses = opendss.solve_power_flow(data)
        buses = buses.assign(name=buses["bus"].astype(str))
        # losses_kw solves once more (as it always did): the reported losses
        # belong to that second, equally converged solution
        return PowerFlowResult(data.name, buses, float(opendss.losses_kw(data)))

    net = data.net
    try:
        pp.runpp(net, numba=False)
    except pp.LoadflowNotConverged as err:
        raise RuntimeError(f"AC power flow of {data.name} did not converge") from err
    losses_mw = net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum()
    buses = pd.DataFrame(
        {
            "bus": net.bus.index,
            "name": net.bus["name"].astype(str),
            "phase": "abc",
            "vm_pu": net.res_bus["vm_pu"].to_numpy(),
            "va_degree": net.res_bus["va_degree"].to_numpy(),
        }
    )
    return PowerFlowResult(data.name, buses.reset_index(drop=True), float(losses_mw * 1e3))


def run_ac_opf(data: NetworkData) -> OpfResult:
    """Solve pandapower's AC OPF (PIPS) with the network's polynomial costs.

    Raises
    ------
    RuntimeError
        If the OPF does not converge, or the network is not a pandapower one.
    """
    if data.backend != "pandapower":
        raise RuntimeError(
            f"AC OPF is available for the pandapower networks only ({data.name} is {data.backend})"
        )
    net = data.net
    try:
        pp.runopp(net, numba=False, verbose=False)
    except pp.OPFNotConverged as err:
        raise RuntimeError(f"AC OPF of {data.name} did not converge") from err
    buses = pd.DataFrame(
        {
            "bus": net.bus.index,
            "name": net.bus["name"].astype(str),
            "vm_pu": net.res_bus["vm_pu"].to_numpy(),
            "va_degree": net.res_bus["va_degree"].to_numpy(),
        }
    )
    p_gen = pd.concat(
        [
            pd.Series(net.res_ext_grid["p_mw"].to_numpy(), index=net.ext_grid["bus"].to_numpy()),
            pd.Series(net.res_gen["p_mw"].to_numpy(), index=net.gen["bus"].to_numpy()),
        ]
    )
    return OpfResult(data.name, float(net.res_cost), buses, p_gen)
