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
    above the parabola by at most :func:`linearisation_error`). A MILP, and
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
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.networks._tables import NetworkData
from evgrid.powerflow import run_ac_power_flow
from evgrid.core.solvers import solve

__all__ = [
    "CURRENT_LIMIT_POLYGON_SIDES",
    "DEFAULT_FLOW_BOUND_FACTOR",
    "LOSSES_OPTIONS",
    "build_distflow_check_model",
    "declare_lindistflow",
    "default_flow_bounds_kw",
    "distflow_vs_ac",
    "linearisation_error",
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


# --------------------------------------------------------------------------
# Piecewise-linear approximation of x^2
# --------------------------------------------------------------------------


def linearisation_error(n_segments: int, p_bar: float) -> float:
    """Largest error of the piecewise-linear approximations of ``x**2`` on ``[-p_bar, p_bar]``.

    Both approximations the module uses split ``[-p_bar, p_bar]`` into
    ``n_segments`` equal segments of width ``h = 2 p_bar / n_segments``:

    * the chord (interpolation) of ``"pwl_binary"`` lies above ``x**2`` by
      ``(x - a)(b - x)`` on a segment ``[a, b]``, at most ``h**2 / 4`` at its
      midpoint;
    * the tangents of ``"pwl_convex"``, taken at the segment midpoints, lie
      below ``x**2`` by ``(x - m)**2``, at most ``(h / 2)**2 = h**2 / 4`` at the
      segment ends (adjacent tangents cross at the shared end).

    Either way the error is ``h**2 / 4 = (p_bar / n_segments)**2``, falling as
    ``1 / n_segments**2``. (The often-quoted ``(p_bar / n)**2 / 4`` is the same
    formula for ``n`` segments of width ``p_bar / n``, i.e. on ``[0, p_bar]``.)

    Parameters
    ----------
    n_segments : int
        Number of segments, >= 1.
    p_bar : float
        Half-width of the approximated range, > 0, in the unit of ``x``.

    Returns
    -------
    float
        The largest absolute error, in the unit of ``x**2``.
    """
    _check_n_segments(n_segments)
    if not (math.isfinite(p_bar) and p_bar > 0):
        raise ValueError(f"p_bar={p_bar!r} must be a finite number > 0")
    return (p_bar / n_segments) ** 2


def _breakpoints(n_segments: int, p_bar: float) -> np.ndarray:
    """``n_segments + 1`` equally spaced breakpoints of ``[-p_bar, p_bar]``."""
    return np.linspace(-p_bar, p_bar, n_segments + 1)


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
    _check_n_segments(n_segments)
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
    p_bar, q_bar = _flow_bounds(network, lines, flow_bound_kw)
    p_load = _keyed(p_load_kw, "p_load_kw", bus_ids, periods)
    q_load = _keyed(q_load_kvar, "q_load_kvar", bus_ids, periods)
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
    b.p_bar_kw = pyo.Param(b.lines, initialize=p_bar, doc="Flow bound P̄ of the PWL range [kW]")
    b.q_bar_kvar = pyo.Param(b.lines, initialize=q_bar, doc="Flow bound Q̄ of the PWL range [kvar]")

    b.p_flow_kw = pyo.Var(b.lines, b.periods, doc="Active sending-end flow P_ij [kW]")
    b.q_flow_kvar = pyo.Var(b.lines, b.periods, doc="Reactive sending-end flow Q_ij [kvar]")
    b.v_sq_pu = pyo.Var(
        b.buses,
        b.periods,
        within=pyo.NonNegativeReals,
        initialize=v0_sq,
        doc="Squared voltage magnitude V_i [pu^2]",
    )
    b.p_loss_kw = pyo.Var(
        b.lines, b.periods, within=pyo.NonNegativeReals, doc="Active losses r_ij l_ij [kW]"
    )
    b.q_loss_kvar = pyo.Var(
        b.lines, b.periods, within=pyo.NonNegativeReals, doc="Reactive losses x_ij l_ij [kvar]"
    )
    b.p_import_kw = pyo.Var(b.periods, doc="Substation active import P_0 (negative: export) [kW]")
    b.q_import_kvar = pyo.Var(b.periods, doc="Substation reactive import [kvar]")
    for t in periods:
        b.v_sq_pu[slack, t].fix(v0_sq)

    r = lines["r_pu"].to_dict()
    x = lines["x_pu"].to_dict()

    def _l_pu(line: Hashable, t: Hashable) -> Any:
        """Squared current l_ij ~ (P^2 + Q^2) / V0^2 in pu^2 (0 for LinDistFlow)."""
        if losses == "none":
            return 0.0
        return (b.p_flow_sq_pu[line, t] + b.q_flow_sq_pu[line, t]) / v_ref_sq[line]

    if losses == "none":
        b.p_loss_kw.fix(0.0)
        b.q_loss_kvar.fix(0.0)
    else:
        _declare_squares(b, losses, n_segments)

        def _p_loss(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
            return m.p_loss_kw[line, t] == r[line] * _l_pu(line, t) * kw_per_pu

        def _q_loss(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
            return m.q_loss_kvar[line, t] == x[line] * _l_pu(line, t) * kw_per_pu

        b.eq_p_loss_line = pyo.Constraint(
            b.lines,
            b.periods,
            rule=_p_loss,
            doc="Active losses r_ij l_ij of Eq. (2), l_ij ~ (P^2 + Q^2) / V0^2 (Eq. (5) at V0)",
        )
        b.eq_q_loss_line = pyo.Constraint(
            b.lines,
            b.periods,
            rule=_q_loss,
            doc="Reactive losses x_ij l_ij of Eq. (3), l_ij ~ (P^2 + Q^2) / V0^2",
        )

    def _p_balance(m: pyo.Block, j: Hashable, t: Hashable) -> Any:
        line = line_into[j]
        return m.p_flow_kw[line, t] == (
            sum(m.p_flow_kw[k, t] for k in lines_out[j])
            + p_load.get((j, t), 0.0)
            + m.p_loss_kw[line, t]
        )

    def _q_balance(m: pyo.Block, j: Hashable, t: Hashable) -> Any:
        line = line_into[j]
        return m.q_flow_kvar[line, t] == (
            sum(m.q_flow_kvar[k, t] for k in lines_out[j])
            + q_load.get((j, t), 0.0)
            + m.q_loss_kvar[line, t]
        )

    b.eq_p_balance_bus = pyo.Constraint(
        b.non_slack_buses,
        b.periods,
        rule=_p_balance,
        doc="Eq. (2): P_ij = sum_k P_jk + p_j + r_ij l_ij at the bus j that line (i, j) feeds",
    )
    b.eq_q_balance_bus = pyo.Constraint(
        b.non_slack_buses,
        b.periods,
        rule=_q_balance,
        doc="Eq. (3): Q_ij = sum_k Q_jk + q_j + x_ij l_ij",
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

    def _p_import(m: pyo.Block, t: Hashable) -> Any:
        out = sum(m.p_flow_kw[k, t] for k in lines_out[slack])
        return m.p_import_kw[t] == out + p_load.get((slack, t), 0.0)

    def _q_import(m: pyo.Block, t: Hashable) -> Any:
        out = sum(m.q_flow_kvar[k, t] for k in lines_out[slack])
        return m.q_import_kvar[t] == out + q_load.get((slack, t), 0.0)

    b.eq_p_import_slack = pyo.Constraint(
        b.periods,
        rule=_p_import,
        doc="Eq. (7): P_0 = sum_k P_0k (plus any load at the slack bus)",
    )
    b.eq_q_import_slack = pyo.Constraint(
        b.periods, rule=_q_import, doc="Reactive counterpart of Eq. (7)"
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


def _declare_squares(b: pyo.Block, losses: str, n_segments: int) -> None:
    """Approximate ``(P / S_base)^2`` and ``(Q / S_base)^2`` of every line and period.

    The squares are kept in pu^2 (``O(1)`` numbers) while the flows stay in
    kW / kvar; the breakpoints are therefore in pu.
    """
    b.segments = pyo.RangeSet(1, n_segments, doc="Segments l of the PWL approximation")
    for quantity, unit, flow, bar in (
        ("p", "kW", b.p_flow_kw, b.p_bar_kw),
        ("q", "kvar", b.q_flow_kvar, b.q_bar_kvar),
    ):
        symbol = quantity.upper()
        sq = pyo.Var(
            b.lines,
            b.periods,
            within=pyo.NonNegativeReals,
            doc=f"Approximation of ({symbol}_ij / S_base)^2 [pu^2]",
        )
        b.add_component(f"{quantity}_flow_sq_pu", sq)
        points = {
            line: _breakpoints(n_segments, pyo.value(bar[line]) / pyo.value(b.kw_per_pu))
            for line in b.lines
        }
        if losses == "pwl_convex":
            _declare_square_tangents(b, quantity, flow, sq, points)
        else:
            _declare_square_segments(b, quantity, unit, flow, sq, points)


def _declare_square_tangents(
    b: pyo.Block, quantity: str, flow: pyo.Var, sq: pyo.Var, points: Mapping
) -> None:
    """``"pwl_convex"``: ``s^2 >= 2 m_l s - m_l^2`` at each segment midpoint ``m_l``."""
    kw_per_pu = pyo.value(b.kw_per_pu)

    def _tangent(m: pyo.Block, line: Hashable, t: Hashable, seg: int) -> Any:
        mid = 0.5 * (points[line][seg - 1] + points[line][seg])
        return sq[line, t] >= 2.0 * mid * flow[line, t] / kw_per_pu - mid**2

    symbol = quantity.upper()
    b.add_component(
        f"ineq_{quantity}_flow_sq_line_tangent",
        pyo.Constraint(
            b.lines,
            b.periods,
            b.segments,
            rule=_tangent,
            doc=f"({symbol}_ij / S_base)^2 >= its tangent at the midpoint of segment l: "
            f"outer PWL approximation of the square in Eq. (5)",
        ),
    )


def _declare_square_segments(
    b: pyo.Block, quantity: str, unit: str, flow: pyo.Var, sq: pyo.Var, points: Mapping
) -> None:
    """``"pwl_binary"``, Eqs. (17)–(19): the chord of the segment a binary selects.

    Eq. (17) as printed, ``P^2 ~ sum_l alpha^l u^l``, is a staircase in the
    binaries alone; we read ``alpha^l`` as the chord of segment ``l``
    (intercept and slope), the usual multiple-choice model: the flow is split
    into per-segment parts ``s_l`` with ``a_l u_l <= s_l <= c_l u_l`` on
    segment ``[a_l, c_l]``, and ``P^2 ~ sum_l ((a_l + c_l) s_l - a_l c_l u_l)``.
    """
    kw_per_pu = pyo.value(b.kw_per_pu)
    symbol = quantity.upper()
    u = pyo.Var(
        b.lines,
        b.periods,
        b.segments,
        within=pyo.Binary,
        doc=f"Eq. (19): u^l = 1 selects the segment l that holds {symbol}_ij",
    )
    part = pyo.Var(
        b.lines,
        b.periods,
        b.segments,
        doc=f"Part of {symbol}_ij in segment l, 0 unless u^l = 1 [{unit}]",
    )
    b.add_component(f"u_{quantity}_segment", u)
    b.add_component(f"{quantity}_segment_{unit.lower()}", part)

    def _part_lb(m: pyo.Block, line: Hashable, t: Hashable, seg: int) -> Any:
        return part[line, t, seg] >= points[line][seg - 1] * kw_per_pu * u[line, t, seg]

    def _part_ub(m: pyo.Block, line: Hashable, t: Hashable, seg: int) -> Any:
        return part[line, t, seg] <= points[line][seg] * kw_per_pu * u[line, t, seg]

    def _sum(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
        return flow[line, t] == sum(part[line, t, seg] for seg in m.segments)

    def _choice(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
        return sum(u[line, t, seg] for seg in m.segments) == 1

    def _square(m: pyo.Block, line: Hashable, t: Hashable) -> Any:
        chords = []
        for seg in m.segments:
            a, c = points[line][seg - 1], points[line][seg]
            chords.append((a + c) * part[line, t, seg] / kw_per_pu - a * c * u[line, t, seg])
        return sq[line, t] == sum(chords)

    by_segment = (b.lines, b.periods, b.segments)
    b.add_component(
        f"ineq_{quantity}_segment_line_lb",
        pyo.Constraint(*by_segment, rule=_part_lb, doc="Part l >= lower end of l times u^l"),
    )
    b.add_component(
        f"ineq_{quantity}_segment_line_ub",
        pyo.Constraint(*by_segment, rule=_part_ub, doc="Part l <= upper end of l times u^l"),
    )
    b.add_component(
        f"eq_{quantity}_flow_segments_line",
        pyo.Constraint(
            b.lines, b.periods, rule=_sum, doc=f"{symbol}_ij is the sum of its segment parts"
        ),
    )
    b.add_component(
        f"eq_{quantity}_segment_choice_line",
        pyo.Constraint(b.lines, b.periods, rule=_choice, doc="Eq. (18): sum_l u^l = 1"),
    )
    b.add_component(
        f"eq_{quantity}_flow_sq_line",
        pyo.Constraint(
            b.lines,
            b.periods,
            rule=_square,
            doc=f"Eq. (17): ({symbol}_ij / S_base)^2 ~ the chord of the selected segment l",
        ),
    )


def _check_losses(losses: str) -> None:
    if losses not in LOSSES_OPTIONS:
        raise ValueError(
            f"losses={losses!r} is not supported; allowed: {', '.join(map(repr, LOSSES_OPTIONS))}"
        )


def _check_n_segments(n_segments: int) -> None:
    if (
        isinstance(n_segments, bool)
        or not isinstance(n_segments, int | np.integer)
        or n_segments < 1
    ):
        raise ValueError(f"n_segments={n_segments!r} must be an integer >= 1")


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


# --------------------------------------------------------------------------
# Check against the AC power flow
# --------------------------------------------------------------------------


def _base_loads(network: NetworkData, period: Hashable) -> tuple[dict, dict]:
    """Base-case net loads (load minus fixed generation) in kW / kvar."""
    kw_per_pu = network.base_mva * 1e3
    buses = network.buses
    p = (buses["p_load_pu"] - _column(buses, "p_fixed_gen_pu")) * kw_per_pu
    q = (buses["q_load_pu"] - _column(buses, "q_fixed_gen_pu")) * kw_per_pu
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
        ``obj_p_import_kw``. Options are those of :func:`declare_lindistflow`.
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
    :func:`evgrid.powerflow.run_ac_power_flow` (which writes its results into
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
