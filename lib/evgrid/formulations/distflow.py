"""Linearised DistFlow: a radial, balanced branch-flow constraint family for Pyomo.

The branch-flow (DistFlow) equations of Baran & Wu (1989) for a radial
feeder, with every bus fed by exactly one line :math:`(i, j)`, are (as
Eqs. (2)–(7) of Kerama 2025 write them, :math:`v = |V|^2`)::

    P_ij = sum_k P_jk + p_j + r_ij l_ij                    (2)
    Q_ij = sum_k Q_jk + q_j + x_ij l_ij                    (3)
    v_j  = v_i - 2 (r_ij P_ij + x_ij Q_ij) + (r_ij^2 + x_ij^2) l_ij   (4)
    l_ij v_i >= P_ij^2 + Q_ij^2                            (5)
    vmin^2 <= v_i <= vmax^2,   l_ij <= Imax_ij^2           (6)
    P_0 = sum_k P_0k                                       (7)

:func:`declare_lindistflow` adds a linear version of them to a Pyomo block.
Everything nonlinear sits in the squared current ``l = (P^2 + Q^2) / v_i``,
which is replaced by ``(P^2 + Q^2) / V0^2`` with ``V0`` a fixed reference
voltage (the source voltage unless ``v_loss_ref_pu`` says otherwise), and
the squares by one of three ``losses`` options:

``"none"``
    LinDistFlow: ``l = 0``, so no losses and no ``(r^2 + x^2) l`` term. An LP.
``"pwl_convex"``
    ``P^2`` and ``Q^2`` are bounded below by ``n_segments`` tangent lines
    each (an outer approximation of the convex parabola). No binaries, an LP.
    It is a relaxation: the squares are tight only where something pushes
    them down, i.e. when the objective penalises losses (any positive cost of
    import does) and nothing else gains from larger losses. Larger losses
    lower the voltages downstream, so a binding *upper* voltage limit (or
    a zero or negative cost of import) can be "met" by fictitious losses;
    where that may happen (reverse flows from PV), use ``"pwl_binary"`` or
    check ``p_loss_kw`` against the tangent value.
``"pwl_binary"``
    Eqs. (17)–(19) of Kerama 2025: ``P^2`` (and ``Q^2``) are interpolated on
    ``n_segments`` equal segments of ``[-P̄, P̄]``, one binary per segment
    selects the segment that holds the flow. The value is then fixed by the
    flow, neither under- nor over-estimated by the objective (the chord lies
    above the parabola by at most
    :func:`~evgrid.formulations.pwl.linearisation_error`). A MILP, and
    ``|P|, |Q| <= P̄`` becomes a hard limit.

The ``(r^2 + x^2) l`` term of Eq. (4) follows the losses: dropped with
``"none"`` (LinDistFlow sets ``l = 0``; the term is second order, smaller
than ``2 (r P + x Q)`` by about the line's relative voltage drop), kept with
the same approximation of ``l`` otherwise, since it then costs nothing and,
for the exact ``l``, makes Eq. (4) exact. With it, over-stating ``l`` still
lowers the voltage at ``j``: the ``+(r^2 + x^2) dl`` there is outweighed by
the ``-2 (r^2 + x^2) dl`` that the added losses cost through ``P_ij, Q_ij``.

Line charging (``b_pu``) is neglected, as DistFlow does; transformers with an
off-nominal tap are rejected. The voltage error of ``"none"`` on the IEEE
33-bus base case is 0.0028 pu (it over-states every voltage, since dropping
the losses understates every flow); with losses it is 0.0003 pu, and the
losses are 7 % low, mostly because of ``V0 = 1`` (see ``v_loss_ref_pu``).

References
----------
M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems
for loss reduction and load balancing", IEEE Trans. Power Delivery 4(2),
1989 (the DistFlow equations). Kerama 2025, "A Bi-Level Stochastic-Robust
MILP Framework for Coordinated EV Charging/Discharging ...", Eqs. (2)–(7)
and (17)–(19).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.formulations.pwl import (
    breakpoints,
    check_n_segments,
    declare_square_segments,
    declare_square_tangents,
)
from evgrid.networks import NetworkData

__all__ = [
    "CURRENT_LIMIT_POLYGON_SIDES",
    "DEFAULT_FLOW_BOUND_FACTOR",
    "LOSSES_OPTIONS",
    "declare_lindistflow",
    "default_flow_bounds_kw",
    "radial_lines",
]

#: The losses approximations :func:`declare_lindistflow` accepts.
LOSSES_OPTIONS = ("none", "pwl_convex", "pwl_binary")
#: Default flow bound of a line, as a multiple of the base-case load it feeds.
DEFAULT_FLOW_BOUND_FACTOR = 1.5
#: Sides of the regular polygon inscribed in the circle ``|S| <= S_max``.
CURRENT_LIMIT_POLYGON_SIDES = 8
#: Smallest default flow bound, as a share of the feeder's total base-case load,
#: so that a line feeding no load still gets segments of non-zero width.
_MIN_FLOW_BOUND_SHARE = 0.05


class _Quantity(NamedTuple):
    """Active or reactive power: the names and symbols of its twin components."""

    name: str  # "p": p_flow_kw, p_loss_kw, eq_p_balance_bus, ...
    unit: str  # in component names
    unit_label: str  # in docs
    kind: str
    symbol: str  # P_ij, Q_ij
    impedance: str  # r_ij or x_ij, the losses' coefficient
    balance_eq: int  # its balance is Eq. (2) or (3) of Kerama 2025
    counterpart: str  # how Eq. (7), written for P, reads for it


#: The two quantities of the branch-flow equations, Eqs. (2)-(3) and (7) written once for both.
_QUANTITIES = (
    _Quantity("p", "kw", "kW", "Active", "P", "r", 2, ""),
    _Quantity("q", "kvar", "kvar", "Reactive", "Q", "x", 3, ", reactive counterpart"),
)


# --------------------------------------------------------------------------
# Network topology
# --------------------------------------------------------------------------


def radial_lines(network: NetworkData) -> pd.DataFrame:
    """Orient a radial network's branches away from its slack bus.

    Parameters
    ----------
    network : NetworkData
        A balanced network with one slack bus whose branches form a tree.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``branch``: ``sending_bus`` (nearer the slack),
        ``receiving_bus``, ``r_pu``, ``x_pu``, ``i_max_pu``, and
        ``downstream_load_kw`` / ``downstream_load_kvar``: the sum of
        ``|load| + |fixed generation|`` over the buses the line feeds, in the
        base case.

    Raises
    ------
    ValueError
        If the network is unbalanced (per-phase rows), has not exactly one
        slack bus, is not a tree, or has an off-nominal transformer tap.
    """
    buses, branches = network.buses, network.branches
    if "phase" in buses.columns:
        raise ValueError(
            f"network {network.name!r} has per-phase bus rows; DistFlow here is balanced only"
        )
    slack = buses.loc[buses["is_slack"].astype(bool), "bus"].tolist()
    if len(slack) != 1:
        raise ValueError(f"network {network.name!r} has {len(slack)} slack buses, needs exactly 1")
    if "tap_ratio" in branches.columns and not np.allclose(branches["tap_ratio"].fillna(1.0), 1.0):
        raise ValueError(
            f"network {network.name!r} has branches with tap_ratio != 1; off-nominal "
            f"transformer taps are not modelled by this DistFlow"
        )
    bus_ids = buses["bus"].tolist()
    if len(branches) != len(bus_ids) - 1:
        raise ValueError(
            f"network {network.name!r} is not radial: {len(branches)} branches for "
            f"{len(bus_ids)} buses (a tree has n - 1)"
        )

    neighbours: dict[Hashable, list[tuple[Hashable, Hashable]]] = {b: [] for b in bus_ids}
    for row in branches.itertuples(index=False):
        neighbours[row.from_bus].append((row.branch, row.to_bus))
        neighbours[row.to_bus].append((row.branch, row.from_bus))
    # Breadth-first from the slack: a branch is oriented parent -> child.
    parent_line: dict[Hashable, tuple[Hashable, Hashable]] = {}
    order = [slack[0]]
    seen = {slack[0]}
    for bus in order:
        for line, other in neighbours[bus]:
            if other not in seen:
                seen.add(other)
                parent_line[other] = (line, bus)
                order.append(other)
    if len(seen) != len(bus_ids):
        raise ValueError(
            f"network {network.name!r} is not connected: {len(bus_ids) - len(seen)} buses "
            f"cannot be reached from the slack bus"
        )

    kw_per_pu = network.base_mva * 1e3
    own_p = (buses["p_load_pu"].abs() + _column(buses, "p_fixed_gen_pu").abs()) * kw_per_pu
    own_q = (buses["q_load_pu"].abs() + _column(buses, "q_fixed_gen_pu").abs()) * kw_per_pu
    sub_p = dict(zip(bus_ids, own_p, strict=True))
    sub_q = dict(zip(bus_ids, own_q, strict=True))
    for bus in reversed(order[1:]):  # children before parents
        _, up = parent_line[bus]
        sub_p[up] += sub_p[bus]
        sub_q[up] += sub_q[bus]

    table = branches.set_index("branch")
    rows = []
    for bus in order[1:]:
        line, up = parent_line[bus]
        rows.append(
            {
                "branch": line,
                "sending_bus": up,
                "receiving_bus": bus,
                "r_pu": float(table.at[line, "r_pu"]),
                "x_pu": float(table.at[line, "x_pu"]),
                "i_max_pu": float(table.at[line, "i_max_pu"]),
                "downstream_load_kw": float(sub_p[bus]),
                "downstream_load_kvar": float(sub_q[bus]),
            }
        )
    return pd.DataFrame(rows).set_index("branch").sort_index()


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(0.0, index=frame.index)


def default_flow_bounds_kw(
    network: NetworkData, *, factor: float = DEFAULT_FLOW_BOUND_FACTOR
) -> pd.DataFrame:
    """Default flow bounds ``P̄`` (kW) and ``Q̄`` (kvar) of each line.

    ``P̄ = factor * max(downstream_load_kw, 5 % of the feeder's total)``, and
    the same for ``Q̄`` from the reactive loads. A bound per line rather than
    one feeder-wide bound keeps the segments of a lightly loaded lateral
    narrow: with one bound of ``1.5 x 3715 kW`` on the 33-bus feeder, eight
    segments would be 1393 kW wide, wider than the flow on most laterals,
    and the approximation of their ``P^2`` would be mostly error.

    The bounds come from the network's base-case loads only; a caller that
    adds load (EVs) or generation beyond ``factor`` times that must pass its
    own ``flow_bound_kw`` to :func:`declare_lindistflow`, since with
    ``losses="pwl_binary"`` the bound is a hard limit on the flow.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``branch``: ``p_bar_kw``, ``q_bar_kvar``.
    """
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor={factor!r} must be a finite number > 0")
    lines = radial_lines(network)
    kw_per_pu = network.base_mva * 1e3
    floor_p = _MIN_FLOW_BOUND_SHARE * max(
        float((network.buses["p_load_pu"].abs().sum()) * kw_per_pu), 1.0
    )
    floor_q = _MIN_FLOW_BOUND_SHARE * max(
        float((network.buses["q_load_pu"].abs().sum()) * kw_per_pu), 1.0
    )
    return pd.DataFrame(
        {
            "p_bar_kw": factor * np.maximum(lines["downstream_load_kw"], floor_p),
            "q_bar_kvar": factor * np.maximum(lines["downstream_load_kvar"], floor_q),
        },
        index=lines.index,
    )


# --------------------------------------------------------------------------
# The constraint family
# --------------------------------------------------------------------------


def declare_lindistflow(
    block: pyo.Block,
    network: NetworkData,
    periods: Sequence[Hashable],
    p_load_kw: Mapping[tuple[Hashable, Hashable], Any],
    q_load_kvar: Mapping[tuple[Hashable, Hashable], Any],
    *,
    losses: str = "pwl_convex",
    n_segments: int = 8,
    flow_bound_kw: float | Mapping[Hashable, float] | None = None,
    v_source_pu: float = 1.0,
    v_loss_ref_pu: float | Mapping[Hashable, float] | None = None,
    enforce_voltage_limits: bool = True,
    voltage_margin_pu: Mapping[tuple[Hashable, Hashable], tuple[Any, Any]] | None = None,
    enforce_current_limits: bool = True,
) -> None:
    """Add linearised DistFlow (Eqs. (2)–(7), (17)–(19) of Kerama 2025) to ``block``.

    Call it on a fresh (sub-)block, e.g. ``m.grid = pyo.Block()``, since it
    adds components with fixed names. Flows are positive away from the slack
    bus, on the orientation :func:`radial_lines` gives; lines are indexed by
    the ``branch`` id of ``network.branches``.

    The block receives the sets ``buses``, ``non_slack_buses``, ``lines`` and
    ``periods``; the params ``kw_per_pu`` (``1000 * base_mva``), ``slack_bus``,
    ``line_sending_bus``, ``line_receiving_bus``, ``v_loss_ref_sq_pu``,
    ``p_bar_kw`` and ``q_bar_kvar``; the variables

    * ``p_flow_kw[line, t]``, ``q_flow_kvar[line, t]``: sending-end flows
      ``P_ij``, ``Q_ij`` (kW, kvar);
    * ``v_sq_pu[bus, t]``: squared voltage magnitude ``V_i`` (pu^2), fixed to
      ``v_source_pu**2`` at the slack bus;
    * ``p_loss_kw[line, t]``, ``q_loss_kvar[line, t]``: ``r l`` and ``x l``
      (kW, kvar), fixed to 0 with ``"none"``;
    * ``p_import_kw[t]``, ``q_import_kvar[t]``: substation import (kW, kvar;
      negative is export);
    * with losses, ``p_flow_sq_pu[line, t]``, ``q_flow_sq_pu[line, t]``: the
      approximations of ``(P / S_base)^2`` and ``(Q / S_base)^2`` (pu^2); with
      ``"pwl_binary"`` also ``u_p_segment``/``u_q_segment[line, t, l]``
      (binaries) and ``p_segment_kw``/``q_segment_kvar[line, t, l]``;

    and the constraints ``eq_p_balance_bus``, ``eq_q_balance_bus``
    (Eqs. (2)–(3)), ``eq_v_drop_line`` (Eq. (4)), ``eq_p_loss_line``,
    ``eq_q_loss_line`` and the approximation of the squares (Eq. (5); for
    ``"pwl_binary"`` Eqs. (17)–(18)), ``ineq_v_sq_bus_lb``/``ineq_v_sq_bus_ub``
    and ``ineq_s_flow_line_ub`` (Eq. (6)), ``eq_p_import_slack`` and
    ``eq_q_import_slack`` (Eq. (7)).

    Parameters
    ----------
    block : pyomo.environ.Block
        Where the components go.
    network : NetworkData
        A radial, balanced network (see :func:`radial_lines`).
    periods : sequence
        Period labels; every indexed component gets them as last index.
    p_load_kw, q_load_kvar : mapping of (bus, period) to float or expression
        The NET load of each bus (load minus generation plus EV charging), in
        kW / kvar; values may be Pyomo expressions in other blocks' variables.
        A missing key is zero load; an unknown bus or period raises. The base
        loads of ``network.buses`` are NOT added: the caller composes them.
        A load at the slack bus is added to the substation import.
    losses : {"none", "pwl_convex", "pwl_binary"}
        How ``r l`` is approximated; see the module docstring.
    n_segments : int
        Segments (tangents) of the piecewise-linear approximation, >= 1.
    flow_bound_kw : float or mapping of line to float, optional
        ``P̄`` and ``Q̄`` of every line (one number for both, in kW and kvar)
        for the approximation; default :func:`default_flow_bounds_kw`. With
        ``"pwl_convex"`` it only places the tangents (flows beyond it stay
        feasible, with a larger error); with ``"pwl_binary"`` it also bounds
        ``|P|`` and ``|Q|``. Unused with ``"none"``.
    v_source_pu : float
        Slack-bus voltage; ``v_sq_pu`` there is fixed to its square.
    v_loss_ref_pu : float or mapping of bus to float, optional
        The voltage ``V0`` of the sending bus ``i`` in
        ``l_ij = (P^2 + Q^2) / V0^2``; default ``v_source_pu``. Eq. (5) divides
        by the actual ``V_i``, which is lower down the feeder, so ``V0 = 1``
        understates the losses (by 5 % on the IEEE 33-bus base case, whose
        AC flows give 191.9 kW instead of 202.7 kW); a per-bus profile from a
        previous AC power flow removes that part of the error.
    enforce_voltage_limits : bool
        Add Eq. (6), ``vmin^2 <= v_sq <= vmax^2`` from the bus table, at every
        non-slack bus.
    voltage_margin_pu : mapping of (bus, period) to (lower, upper), optional
        Tightens the limits to ``v_sq - lower >= vmin^2`` and
        ``v_sq + upper <= vmax^2`` (in pu^2, floats or expressions), e.g. for
        worst-case offsets of a robust counterpart. Missing keys: no margin.
    enforce_current_limits : bool
        For each line with a finite ``i_max_pu``, keep ``(P, Q)`` inside the
        regular polygon of :data:`CURRENT_LIMIT_POLYGON_SIDES` sides inscribed
        in ``|S| <= vmin_i * i_max`` (``vmin_i`` of the sending bus). Since
        ``|S| = V |I|`` and ``V >= vmin``, this is an inner approximation of
        ``l <= I_max^2``: it never admits a current above the rating.

    Raises
    ------
    ValueError
        On a bad option (the message names it), a non-radial network, or a
        load or margin keyed by an unknown bus or period.
    """
    _check_losses(losses)
    check_n_segments(n_segments)
    if not (math.isfinite(v_source_pu) and 0.5 <= v_source_pu <= 1.5):
        raise ValueError(f"v_source_pu={v_source_pu!r} is out of range: allowed 0.5 <= v <= 1.5")
    if voltage_margin_pu and not enforce_voltage_limits:
        raise ValueError(
            "voltage_margin_pu is given but enforce_voltage_limits=False; the margins "
            "tighten the voltage limits, so enable them or drop the margins"
        )
    periods = list(periods)
    if not periods or len(set(periods)) != len(periods):
        raise ValueError(f"periods={periods!r} must be a non-empty sequence of distinct labels")

    lines = radial_lines(network)
    buses = network.buses.set_index("bus")
    bus_ids = buses.index.tolist()
    slack = buses.index[buses["is_slack"].astype(bool)][0]
    kw_per_pu = network.base_mva * 1e3
    bars = dict(zip("pq", _flow_bounds(network, lines, flow_bound_kw), strict=True))
    loads = {
        "p": _keyed(p_load_kw, "p_load_kw", bus_ids, periods),
        "q": _keyed(q_load_kvar, "q_load_kvar", bus_ids, periods),
    }
    margins = _keyed(voltage_margin_pu or {}, "voltage_margin_pu", bus_ids, periods)
    v0_sq = v_source_pu**2
    v_ref_sq = _loss_reference_sq(v_loss_ref_pu, v_source_pu, lines, bus_ids)
    line_into = {row.receiving_bus: line for line, row in lines.iterrows()}
    lines_out: dict[Hashable, list[Hashable]] = {b: [] for b in bus_ids}
    for line, row in lines.iterrows():
        lines_out[row.sending_bus].append(line)

    b = block
    b.buses = pyo.Set(initialize=bus_ids, ordered=True, doc="Buses of the feeder")
    b.non_slack_buses = pyo.Set(
        initialize=[j for j in bus_ids if j != slack], ordered=True, doc="Buses fed by a line"
    )
    b.lines = pyo.Set(
        initialize=lines.index.tolist(), ordered=True, doc="Lines (branch ids), a tree"
    )
    b.periods = pyo.Set(initialize=periods, ordered=True, doc="Periods")
    b.kw_per_pu = pyo.Param(initialize=kw_per_pu, doc="kW per unit of power (1000 base_mva)")
    b.slack_bus = pyo.Param(initialize=slack, within=pyo.Any, doc="Substation (slack) bus")
    b.line_sending_bus = pyo.Param(
        b.lines,
        initialize=lines["sending_bus"].to_dict(),
        within=pyo.Any,
        doc="Bus i of line (i, j), nearer the substation",
    )
    b.line_receiving_bus = pyo.Param(
        b.lines,
        initialize=lines["receiving_bus"].to_dict(),
        within=pyo.Any,
        doc="Bus j of line (i, j)",
    )
    b.v_loss_ref_sq_pu = pyo.Param(
        b.lines, initialize=v_ref_sq, doc="V0^2 of the sending bus in l = (P^2 + Q^2) / V0^2"
    )
    for q in _QUANTITIES:
        bar_doc = f"Flow bound {q.symbol}̄ of the PWL range [{q.unit_label}]"
        b.add_component(
            f"{q.name}_bar_{q.unit}", pyo.Param(b.lines, initialize=bars[q.name], doc=bar_doc)
        )

    # Variables in the order P, Q per family (flows, then V, losses, import): the
    # order the solver sees them in.
    flow, loss, imp = {}, {}, {}
    for q in _QUANTITIES:
        flow[q.name] = pyo.Var(
            b.lines, b.periods, doc=f"{q.kind} sending-end flow {q.symbol}_ij [{q.unit_label}]"
        )
        b.add_component(f"{q.name}_flow_{q.unit}", flow[q.name])
    b.v_sq_pu = pyo.Var(
        b.buses,
        b.periods,
        within=pyo.NonNegativeReals,
        initialize=v0_sq,
        doc="Squared voltage magnitude V_i [pu^2]",
    )
    for q in _QUANTITIES:
        loss[q.name] = pyo.Var(
            b.lines,
            b.periods,
            within=pyo.NonNegativeReals,
            doc=f"{q.kind} losses {q.impedance}_ij l_ij [{q.unit_label}]",
        )
        b.add_component(f"{q.name}_loss_{q.unit}", loss[q.name])
    for q in _QUANTITIES:
        imp[q.name] = pyo.Var(
            b.periods,
            doc=f"Substation {q.kind.lower()} import {q.symbol}_0 (negative: export) "
            f"[{q.unit_label}]",
        )
        b.add_component(f"{q.name}_import_{q.unit}", imp[q.name])
    for t in periods:
        b.v_sq_pu[slack, t].fix(v0_sq)

    impedance = {"p": lines["r_pu"].to_dict(), "q": lines["x_pu"].to_dict()}
    r, x = impedance["p"], impedance["q"]

    def _l_pu(line: Hashable, t: Hashable) -> Any:
        """Squared current l_ij ~ (P^2 + Q^2) / V0^2 in pu^2 (0 for LinDistFlow)."""
        if losses == "none":
            return 0.0
        return (b.p_flow_sq_pu[line, t] + b.q_flow_sq_pu[line, t]) / v_ref_sq[line]

    def _loss_rule(name: str) -> Any:
        def rule(_m: pyo.Block, line: Hashable, t: Hashable) -> Any:
            return loss[name][line, t] == impedance[name][line] * _l_pu(line, t) * kw_per_pu

        return rule

    def _balance_rule(name: str) -> Any:
        def rule(_m: pyo.Block, j: Hashable, t: Hashable) -> Any:
            line = line_into[j]
            return flow[name][line, t] == (
                sum(flow[name][k, t] for k in lines_out[j])
                + loads[name].get((j, t), 0.0)
                + loss[name][line, t]
            )

        return rule

    def _import_rule(name: str) -> Any:
        def rule(_m: pyo.Block, t: Hashable) -> Any:
            out = sum(flow[name][k, t] for k in lines_out[slack])
            return imp[name][t] == out + loads[name].get((slack, t), 0.0)

        return rule

    if losses == "none":
        for q in _QUANTITIES:
            loss[q.name].fix(0.0)
    else:
        _declare_squares(b, losses, n_segments)
        _declare_per_quantity(
            b,
            "loss_line",
            (b.lines, b.periods),
            _loss_rule,
            lambda q: f"{q.kind} losses {q.impedance}_ij l_ij of Eq. ({q.balance_eq}), "
            "l_ij ~ (P^2 + Q^2) / V0^2 (Eq. (5) at V0)",
        )
    _declare_per_quantity(
        b,
        "balance_bus",
        (b.non_slack_buses, b.periods),
        _balance_rule,
        lambda q: f"Eq. ({q.balance_eq}): {q.symbol}_ij = sum_k {q.symbol}_jk + {q.name}_j + "
        f"{q.impedance}_ij l_ij at the bus j that line (i, j) feeds",
    )

    def _v_drop(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
        i, j = lines.at[line, "sending_bus"], lines.at[line, "receiving_bus"]
        drop = 2.0 * (r[line] * m.p_flow_kw[line, t] + x[line] * m.q_flow_kvar[line, t])
        return m.v_sq_pu[j, t] == (
            m.v_sq_pu[i, t] - drop / kw_per_pu + (r[line] ** 2 + x[line] ** 2) * _l_pu(line, t)
        )

    b.eq_v_drop_line = pyo.Constraint(
        b.lines,
        b.periods,
        rule=_v_drop,
        doc="Eq. (4): V_j = V_i - 2 (r P_ij + x Q_ij) + (r^2 + x^2) l_ij, "
        "the last term with the same approximation of l as the losses (0 for 'none')",
    )

    _declare_per_quantity(
        b,
        "import_slack",
        (b.periods,),
        _import_rule,
        lambda q: f"Eq. (7){q.counterpart}: {q.symbol}_0 = sum_k {q.symbol}_0k "
        "(plus any load at the slack bus)",
    )

    if enforce_voltage_limits:
        vmin_sq = (buses["vmin_pu"] ** 2).to_dict()
        vmax_sq = (buses["vmax_pu"] ** 2).to_dict()

        def _v_lb(m: pyo.Block, j: Hashable, t: Hashable) -> Any:
            lower, _ = margins.get((j, t), (0.0, 0.0))
            return m.v_sq_pu[j, t] - lower >= vmin_sq[j]

        def _v_ub(m: pyo.Block, j: Hashable, t: Hashable) -> Any:
            _, upper = margins.get((j, t), (0.0, 0.0))
            return m.v_sq_pu[j, t] + upper <= vmax_sq[j]

        b.ineq_v_sq_bus_lb = pyo.Constraint(
            b.non_slack_buses,
            b.periods,
            rule=_v_lb,
            doc="Eq. (6): V_j - lower margin >= vmin^2",
        )
        b.ineq_v_sq_bus_ub = pyo.Constraint(
            b.non_slack_buses,
            b.periods,
            rule=_v_ub,
            doc="Eq. (6): V_j + upper margin <= vmax^2",
        )

    rated = lines.index[np.isfinite(lines["i_max_pu"])].tolist()
    if enforce_current_limits and rated:
        n_sides = CURRENT_LIMIT_POLYGON_SIDES
        s_max_kva = {
            line: float(buses.at[lines.at[line, "sending_bus"], "vmin_pu"])
            * lines.at[line, "i_max_pu"]
            * kw_per_pu
            for line in rated
        }
        b.rated_lines = pyo.Set(initialize=rated, ordered=True, doc="Lines with a current rating")
        b.polygon_sides = pyo.RangeSet(0, n_sides - 1)

        def _s_ub(m: pyo.Block, line: Hashable, t: Hashable, k: int) -> Any:
            angle = 2.0 * math.pi * k / n_sides
            projection = (
                math.cos(angle) * m.p_flow_kw[line, t] + math.sin(angle) * m.q_flow_kvar[line, t]
            )
            return projection <= s_max_kva[line] * math.cos(math.pi / n_sides)

        b.ineq_s_flow_line_ub = pyo.Constraint(
            b.rated_lines,
            b.periods,
            b.polygon_sides,
            rule=_s_ub,
            doc="Eq. (6), l_ij <= I_max^2, as (P, Q) in a polygon inscribed in "
            "|S| <= vmin_i I_max (an inner approximation)",
        )


def _declare_per_quantity(
    b: pyo.Block,
    family: str,
    over: tuple[pyo.Set, ...],
    rule_of: Callable[[str], Callable[..., Any]],
    doc_of: Callable[[_Quantity], str],
) -> None:
    """Constraint ``eq_<p|q>_<family>`` for active, then reactive power: one equation, both twins."""
    for q in _QUANTITIES:
        b.add_component(
            f"eq_{q.name}_{family}", pyo.Constraint(*over, rule=rule_of(q.name), doc=doc_of(q))
        )


def _declare_squares(b: pyo.Block, losses: str, n_segments: int) -> None:
    """Approximate ``(P / S_base)^2`` and ``(Q / S_base)^2`` of every line and period.

    The squares are kept in pu^2 (``O(1)`` numbers) while the flows stay in
    kW / kvar; the breakpoints are therefore in pu. ``"pwl_convex"``: the
    tangents of :func:`evgrid.formulations.pwl.declare_square_tangents`;
    ``"pwl_binary"``: the chords of Eqs. (17)-(19),
    :func:`evgrid.formulations.pwl.declare_square_segments`.
    """
    b.segments = pyo.RangeSet(1, n_segments, doc="Segments l of the PWL approximation")
    kw_per_pu = pyo.value(b.kw_per_pu)
    for q in _QUANTITIES:
        flow = b.component(f"{q.name}_flow_{q.unit}")
        bar = b.component(f"{q.name}_bar_{q.unit}")
        sq = pyo.Var(
            b.lines,
            b.periods,
            within=pyo.NonNegativeReals,
            doc=f"Approximation of ({q.symbol}_ij / S_base)^2 [pu^2]",
        )
        b.add_component(f"{q.name}_flow_sq_pu", sq)
        points = {
            line: breakpoints(n_segments, pyo.value(bar[line]) / pyo.value(b.kw_per_pu))
            for line in b.lines
        }
        family = (flow, sq, (b.lines, b.periods), b.segments, points)
        if losses == "pwl_convex":
            doc = (f"({q.symbol}_ij / S_base)^2 >= its tangent at the midpoint of segment l: "
                   "outer PWL approximation of the square in Eq. (5)")
            name = f"ineq_{q.name}_flow_sq_line_tangent"
            declare_square_tangents(b, name, *family, scale=kw_per_pu, doc=doc)
        else:
            naming = (q.name, "line", q.unit_label)
            declare_square_segments(b, *naming, *family, scale=kw_per_pu, symbol=f"{q.symbol}_ij")


def _check_losses(losses: str) -> None:
    if losses not in LOSSES_OPTIONS:
        raise ValueError(
            f"losses={losses!r} is not supported; allowed: {', '.join(map(repr, LOSSES_OPTIONS))}"
        )


def _keyed(
    values: Mapping, option: str, bus_ids: Sequence[Hashable], periods: Sequence[Hashable]
) -> dict:
    """``values`` as a dict keyed by (bus, period), rejecting unknown keys."""
    out = dict(values)
    known_buses, known_periods = set(bus_ids), set(periods)
    bad = [
        k
        for k in out
        if not (isinstance(k, tuple) and len(k) == 2)
        or k[0] not in known_buses
        or k[1] not in known_periods
    ]
    if bad:
        raise ValueError(
            f"{option} has keys that are not (bus, period) of this network and these "
            f"periods: {bad[:5]}{' ...' if len(bad) > 5 else ''}"
        )
    return out


def _loss_reference_sq(
    v_loss_ref_pu: float | Mapping[Hashable, float] | None,
    v_source_pu: float,
    lines: pd.DataFrame,
    bus_ids: Sequence[Hashable],
) -> dict:
    """``V0^2`` per line, from its sending bus's reference voltage."""
    if v_loss_ref_pu is None:
        v_loss_ref_pu = v_source_pu
    if isinstance(v_loss_ref_pu, Mapping):
        missing = set(lines["sending_bus"]) - set(v_loss_ref_pu)
        unknown = set(v_loss_ref_pu) - set(bus_ids)
        if missing or unknown:
            raise ValueError(
                f"v_loss_ref_pu must map every sending bus to a voltage; missing "
                f"{sorted(missing, key=str)[:5]}, unknown {sorted(unknown, key=str)[:5]}"
            )
        ref = {line: float(v_loss_ref_pu[i]) for line, i in lines["sending_bus"].items()}
    else:
        ref = dict.fromkeys(lines.index, float(v_loss_ref_pu))
    bad = {line: v for line, v in ref.items() if not (math.isfinite(v) and 0.5 <= v <= 1.5)}
    if bad:
        raise ValueError(f"v_loss_ref_pu out of range 0.5 <= v <= 1.5 for lines {bad}")
    return {line: v**2 for line, v in ref.items()}


def _flow_bounds(
    network: NetworkData,
    lines: pd.DataFrame,
    flow_bound_kw: float | Mapping[Hashable, float] | None,
) -> tuple[dict, dict]:
    """``(P̄, Q̄)`` per line in kW / kvar, from the option or the defaults."""
    if flow_bound_kw is None:
        bounds = default_flow_bounds_kw(network)
        return bounds["p_bar_kw"].to_dict(), bounds["q_bar_kvar"].to_dict()
    if isinstance(flow_bound_kw, Mapping):
        unknown = set(flow_bound_kw) - set(lines.index)
        missing = set(lines.index) - set(flow_bound_kw)
        if unknown or missing:
            raise ValueError(
                f"flow_bound_kw must have one entry per line (branch id); unknown "
                f"{sorted(unknown, key=str)[:5]}, missing {sorted(missing, key=str)[:5]}"
            )
        bound = {line: float(flow_bound_kw[line]) for line in lines.index}
    else:
        bound = dict.fromkeys(lines.index, float(flow_bound_kw))
    bad = {k: v for k, v in bound.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise ValueError(f"flow_bound_kw must be finite and > 0 kW; got {bad}")
    return bound, dict(bound)
