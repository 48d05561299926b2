"""Linearised DistFlow against the AC power flow, on a network's base case.

:func:`distflow_vs_ac` solves the one-period DistFlow model of a network
(:func:`build_distflow_check_model`, the constraint family of
:func:`evgrid.formulations.distflow.declare_lindistflow`) and runs the full AC
power flow of the same loads (:func:`evgrid.analysis.powerflow.run_ac_power_flow`),
bus by bus: how far the linearisation and its losses approximation are from AC.
The formulation itself never imports the solver or the power flow; this check
does.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd
import pyomo.environ as pyo

from evgrid.analysis.powerflow import run_ac_power_flow
from evgrid.core.solvers import solve
from evgrid.formulations.distflow import declare_lindistflow
from evgrid.networks import NetworkData

__all__ = ["build_distflow_check_model", "distflow_vs_ac"]


def _base_loads(network: NetworkData, period: Hashable) -> tuple[dict, dict]:
    """Base-case net loads (load minus fixed generation) in kW / kvar."""
    kw_per_pu = network.base_mva * 1e3
    buses = network.buses
    p = (buses["p_load_pu"] - buses.get("p_fixed_gen_pu", 0.0)) * kw_per_pu
    q = (buses["q_load_pu"] - buses.get("q_fixed_gen_pu", 0.0)) * kw_per_pu
    return (
        {(bus, period): float(v) for bus, v in zip(buses["bus"], p, strict=True)},
        {(bus, period): float(v) for bus, v in zip(buses["bus"], q, strict=True)},
    )


def build_distflow_check_model(
    network: NetworkData,
    *,
    losses: str = "pwl_convex",
    n_segments: int = 8,
    flow_bound_kw: float | Mapping[Hashable, float] | None = None,
    v_source_pu: float = 1.0,
    v_loss_ref_pu: float | Mapping[Hashable, float] | None = None,
    enforce_voltage_limits: bool = False,
    voltage_margin_pu: Mapping[tuple[Hashable, Hashable], tuple[Any, Any]] | None = None,
    enforce_current_limits: bool = True,
) -> pyo.ConcreteModel:
    """Build the one-period DistFlow model of a network's base case.

    The loads are the bus table's base-case loads minus its fixed generation;
    the objective is ``min p_import_kw`` (with fixed loads, the same as min
    losses), which is what makes ``"pwl_convex"`` tight. Voltage limits are
    off by default because the base case of a stressed feeder (the IEEE
    33-bus one, 0.913 pu at bus 18) violates them.

    Returns
    -------
    pyomo.environ.ConcreteModel
        With the DistFlow block ``grid`` (period ``0``) and objective
        ``obj_p_import_kw``. Options are those of
        :func:`~evgrid.formulations.distflow.declare_lindistflow`.
    """
    model = pyo.ConcreteModel(name=f"distflow_check_{network.name}_{losses}")
    p_load, q_load = _base_loads(network, 0)
    model.grid = pyo.Block()
    declare_lindistflow(
        model.grid,
        network,
        [0],
        p_load,
        q_load,
        losses=losses,
        n_segments=n_segments,
        flow_bound_kw=flow_bound_kw,
        v_source_pu=v_source_pu,
        v_loss_ref_pu=v_loss_ref_pu,
        enforce_voltage_limits=enforce_voltage_limits,
        voltage_margin_pu=voltage_margin_pu,
        enforce_current_limits=enforce_current_limits,
    )
    model.obj_p_import_kw = pyo.Objective(
        expr=model.grid.p_import_kw[0], sense=pyo.minimize, doc="Substation import [kW]"
    )
    return model


def distflow_vs_ac(
    network: NetworkData,
    *,
    losses: str = "pwl_convex",
    n_segments: int = 8,
    solver: str = "highs",
) -> pd.DataFrame:
    """Solve the base-case DistFlow model and compare it with the AC power flow.

    The source voltage is the network's external-grid set point (1.0 pu if
    there is none). Runs pandapower's Newton-Raphson power flow through
    :func:`evgrid.analysis.powerflow.run_ac_power_flow` (which writes its results into
    ``network.net``).

    Returns
    -------
    pandas.DataFrame
        One row per bus: ``bus``, ``name``, ``vm_pu`` (DistFlow,
        ``sqrt(v_sq_pu)``), ``vm_pu_ac``, ``error_pu = vm_pu - vm_pu_ac``.
        ``attrs`` holds the summary: ``losses_kw`` (DistFlow), ``losses_kw_ac``,
        ``losses_error_pct``, ``max_abs_error_pu``, ``losses``, ``n_segments``
        and ``solve`` (the :class:`~evgrid.core.solvers.SolveResult`).
    """
    v_source = 1.0
    ext_grid = getattr(network.net, "ext_grid", None)
    if ext_grid is not None and len(ext_grid) == 1:
        v_source = float(ext_grid["vm_pu"].iloc[0])
    model = build_distflow_check_model(
        network, losses=losses, n_segments=n_segments, v_source_pu=v_source
    )
    result = solve(model, solver=solver)
    grid = model.grid
    ac = run_ac_power_flow(network)
    vm_ac = ac.buses.set_index("bus")["vm_pu"]
    frame = pd.DataFrame(
        {
            "bus": network.buses["bus"].to_numpy(),
            "name": network.buses["name"].astype(str).to_numpy(),
            "vm_pu": [math.sqrt(pyo.value(grid.v_sq_pu[b, 0])) for b in network.buses["bus"]],
        }
    )
    frame["vm_pu_ac"] = vm_ac.reindex(frame["bus"]).to_numpy()
    frame["error_pu"] = frame["vm_pu"] - frame["vm_pu_ac"]
    losses_kw = float(sum(pyo.value(grid.p_loss_kw[line, 0]) for line in grid.lines))
    frame.attrs.update(
        {
            "losses": losses,
            "n_segments": n_segments,
            "losses_kw": losses_kw,
            "losses_kw_ac": ac.losses_kw,
            "losses_error_pct": 100.0 * (losses_kw - ac.losses_kw) / ac.losses_kw,
            "max_abs_error_pu": float(frame["error_pu"].abs().max()),
            "solve": result,
        }
    )
    return frame

