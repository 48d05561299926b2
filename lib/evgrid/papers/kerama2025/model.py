"""Kerama (2025): the aggregators' LP and the bi-level model as one MILP, with its network.

* :func:`declare_aggregator` / :func:`build_aggregator_lp`: one aggregator's
  problem, Eqs. (8)-(14), as an LP;
* :func:`build_single_level`: the DSO's problem (Eq. 1) over every scenario's
  network (Eqs. 2-7, robust voltage limits) with each aggregator's optimality
  as KKT conditions or strong duality; or, as ``lower_level`` says, its
  high-point relaxation or the LP at fixed caps;
* :func:`follower_optima`, :func:`warm_start`: the solves that serve it (the
  builders solve nothing);
* :func:`schedule_from_model`, :func:`linear_state`: a solved model read back
  as plain tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.core.solvers import SolverError, solve
from evgrid.formulations.bilevel import (
    KktInfo,
    declare_binary_grid,
    declare_kkt,
    declare_strong_duality,
)
from evgrid.formulations.distflow import radial_lines
from evgrid.formulations.fleet import declare_ev_fleet, interval_needs
from evgrid.formulations.network import declare_network
from evgrid.networks import NetworkData
from evgrid.papers.kerama2025.case import DT_H, N_PERIODS, SCHEDULE_COLUMNS, KeramaCase

__all__ = [
    "VALUE_FUNCTION_TOL",
    "NetworkInfeasibleError",
    "SingleLevelInfo",
    "aggregator_bids",
    "build_aggregator_lp",
    "build_single_level",
    "check_fleet_energy",
    "check_network_budget",
    "declare_aggregator",
    "follower_optima",
    "follower_optimum",
    "linear_state",
    "robust_voltage_margins",
    "schedule_from_model",
    "shared_path_impedance",
    "warm_start",
]


def declare_aggregator(
    block: pyo.Block,
    case: KeramaCase,
    fleet: pd.DataFrame,
    *,
    b_max_kw: float,
    import_cap_kw=None,
) -> None:
    """The aggregator's problem (Kerama Eqs. 8-14) on ``block``, as an LP.

    Adds the fleet (:func:`evgrid.formulations.fleet.declare_ev_fleet`, no binaries: see
    its docstring for when dropping Eq. 15 is exact), export and import bids
    ``b_exp_kw`` / ``b_imp_kw`` within ``b_max_kw`` (Eq. 10), their balance
    with the fleet (Eq. 9), the leader's import cap ``b_imp_kw[t] <=
    import_cap_kw[t]`` when given (a leader variable or a number), and the
    expression ``cost_usd``: minus the profit of Eq. (8). ``import_cap_kw``
    maps periods to caps; a period it leaves out has none.
    """
    params = case.params
    declare_ev_fleet(block, fleet, dt_h=DT_H)
    block.t = pyo.Set(initialize=list(case.periods), ordered=True)
    block.b_exp_kw = pyo.Var(block.t, bounds=(0.0, b_max_kw), doc="export (discharge) bid, Eq. (10)")
    block.b_imp_kw = pyo.Var(block.t, bounds=(0.0, b_max_kw), doc="import (charge) bid, Eq. (10)")
    plugged: dict[int, list] = {t: [] for t in case.periods}
    for e, t in block.ev_t:
        plugged[t].append(e)
    block.eq_bid_balance = pyo.Constraint(
        block.t,
        rule=lambda b, t: b.b_exp_kw[t] - b.b_imp_kw[t]
        == sum(b.p_dis_kw[e, t] - b.p_ch_kw[e, t] for e in plugged[t]),
        doc="bids equal the fleet's net discharge, Eq. (9)",
    )
    if import_cap_kw is not None:
        block.ineq_import_cap = pyo.Constraint(
            sorted(import_cap_kw),
            rule=lambda b, t: b.b_imp_kw[t] <= import_cap_kw[t],
            doc="the DSO's import cap (leader decision)",
        )
    price = case.price_usd_per_kwh
    kappa = params.degradation_usd_per_kwh
    block.cost_usd = pyo.Expression(
        expr=sum(price[t] * DT_H * (block.b_imp_kw[t] - block.b_exp_kw[t]) for t in block.t)
        + kappa * DT_H * sum(block.p_ch_kw[e, t] + block.p_dis_kw[e, t] for e, t in block.ev_t),
        doc="minus the aggregator's profit, Eq. (8)",
    )


def build_aggregator_lp(
    case: KeramaCase, aggregator: int, scenario: int, import_cap_kw=None
) -> pyo.ConcreteModel:
    """One aggregator's problem on its own, for fixed caps (the KKT proof re-solves this)."""
    m = pyo.ConcreteModel(name=f"kerama2025_aggregator_{aggregator}_scenario_{scenario}")
    declare_aggregator(
        m,
        case,
        case.fleet(aggregator, scenario),
        b_max_kw=case.b_max_kw[aggregator],
        import_cap_kw=import_cap_kw,
    )
    m.objective = pyo.Objective(expr=m.cost_usd, sense=pyo.minimize)
    return m


VALUE_FUNCTION_TOL = 1e-8


def follower_optimum(case: KeramaCase, aggregator: int, scenario: int, caps_kw=None) -> float:
    """``phi``: the aggregator's least cost (minus its Eq. 8 profit) at the given caps, alone."""
    model = build_aggregator_lp(case, aggregator, scenario, caps_kw)
    return solve(model).objective


def follower_optima(
    case: KeramaCase, caps_kw: Mapping[tuple[int, int], float]
) -> dict[tuple[int, int], float]:
    """``phi[a, s]``: every aggregator's least cost in every scenario at the caps ``caps_kw[a, t]``.

    Solves one LP per aggregator and scenario (:func:`follower_optimum`); what
    :func:`build_single_level` needs for ``lower_level="value_function"``.
    """
    return {
        (a, s): follower_optimum(case, a, s, {t: caps_kw[a, t] for t in case.periods})
        for a in case.aggregators
        for s in case.scenarios
    }


@dataclass(frozen=True)
class SingleLevelInfo:
    """Sizes of what :func:`build_single_level` added, for the notebook's tables."""

    kkt: dict[tuple[int, int], KktInfo]

    n_grid_bits: int = 0

    @property
    def n_binaries(self) -> int:
        return self.n_grid_bits + sum(k.n_binaries for k in self.kkt.values())


def build_single_level(
    case: KeramaCase,
    *,
    with_network: bool = True,
    robust: bool = True,
    lower_level: str = "reformulated",
    caps_kw: Mapping[tuple[int, int], float] | None = None,
    phi: Mapping[tuple[int, int], float] | None = None,
) -> tuple[pyo.ConcreteModel, SingleLevelInfo]:
    """The bi-level model as one MILP: the DSO's problem plus every aggregator's KKT conditions.

    Upper level (Eq. 1): minimise the expected cost of the substation import
    plus ``alpha`` times each scenario's peak import. Per scenario, the
    network (:func:`evgrid.formulations.network.declare_network`: linearised
    DistFlow, Eqs. 2-7) carries the forecast load minus PV plus the aggregators' net imports; with
    ``robust``, voltage limits hold for every load/PV realisation within the
    budgets (:func:`robust_voltage_margins`). Without ``with_network`` the
    import is the plain sum of injections (no network, no losses).

    Lower level: one aggregator problem per aggregator and scenario
    (:func:`declare_aggregator`) replaced by its optimality conditions:
    ``params.reformulation = "kkt"`` uses complementarity with one binary per
    follower inequality (:func:`evgrid.formulations.bilevel.declare_kkt`);
    ``"strong_duality"`` puts the caps on a grid of ``2**cap_bits`` levels and
    uses dual feasibility plus strong duality, whose only binaries are the
    grid's (:func:`evgrid.formulations.bilevel.declare_strong_duality`). On the
    same grid the two are equivalent. Leader decision: ``cap_kw[a, t]`` for the
    ``case.free_caps`` (every hour, or ``params.cap_hours``); the others are
    fixed at the bid bound and left out of the aggregators' problems.

    ``lower_level`` swaps that block for the two LPs that bracket the
    bi-level optimum: ``"high_point"`` drops the aggregators' optimality
    altogether (the high-point relaxation, a lower bound); ``"value_function"``
    fixes the caps to ``caps_kw`` and asks each aggregator's cost to be no
    more than ``phi[a, s]``, its optimum on its own at those caps -- for fixed
    caps exactly what strong duality imposes, so its optimum is the bi-level
    objective at those caps (an upper bound). The builder solves nothing:
    ``phi`` comes from :func:`follower_optima` (``caps_kw``).

    Raises :class:`NetworkInfeasibleError` before building when the robust
    budgets leave the network infeasible (:func:`check_network_budget`).
    """
    if lower_level not in ("reformulated", "high_point", "value_function"):
        raise ValueError(
            f"lower_level={lower_level!r}: use 'reformulated', 'high_point' or 'value_function'"
        )
    if (lower_level == "value_function") != (caps_kw is not None):
        raise ValueError("caps_kw is needed with lower_level='value_function', and only there")
    if (lower_level == "value_function") != (phi is not None):
        raise ValueError(
            "phi, the aggregators' optimal costs at caps_kw (follower_optima(case, caps_kw)), is "
            "needed with lower_level='value_function', and only there"
        )
    params = case.params
    m = pyo.ConcreteModel(name="kerama2025_single_level")
    m.t = pyo.Set(initialize=list(case.periods), ordered=True)
    m.s = pyo.Set(initialize=case.scenarios, ordered=True)
    m.a = pyo.Set(initialize=case.aggregators, ordered=True)
    m.cap_kw = pyo.Var(
        m.a, m.t, bounds=lambda _m, a, _t: (0.0, case.b_max_kw[a]), doc="DSO import cap (leader)"
    )
    m.agg = pyo.Block(m.a, m.s)
    m.kkt = pyo.Block(m.a, m.s)
    grid = None
    free = case.free_caps
    for a, t in set(m.cap_kw) - set(free):
        m.cap_kw[a, t].fix(case.b_max_kw[a])  # not the DSO's to set (params.cap_hours)
    if lower_level == "value_function":
        for (a, t), cap in caps_kw.items():
            m.cap_kw[a, t].fix(cap)
    elif params.cap_bits > 0 and lower_level == "reformulated":
        m.grid = pyo.Block()
        grid = declare_binary_grid(m.grid, [m.cap_kw[a, t] for a, t in free], params.cap_bits)
    kkt = {}
    for a in m.a:
        for s in m.s:
            caps = {t: m.cap_kw[a, t] for aa, t in free if aa == a}
            declare_aggregator(
                m.agg[a, s], case, case.fleet(a, s), b_max_kw=case.b_max_kw[a], import_cap_kw=caps
            )
            args = dict(leader_vars=list(caps.values()), dual_bound=params.dual_bound_usd_per_kwh)
            if lower_level == "high_point":
                continue
            if lower_level == "value_function":
                optimum = phi[a, s]
                m.kkt[a, s].phi_usd = pyo.Param(initialize=optimum, mutable=True)
                m.kkt[a, s].ineq_optimal = pyo.Constraint(
                    expr=m.agg[a, s].cost_usd
                    <= optimum + VALUE_FUNCTION_TOL * max(1.0, abs(optimum)),
                    doc="the aggregator's cost is its optimum at these caps",
                )
                continue
            if params.reformulation == "kkt":
                kkt[a, s] = declare_kkt(m.kkt[a, s], m.agg[a, s], m.agg[a, s].cost_usd, **args)
            else:
                kkt[a, s] = declare_strong_duality(
                    m.kkt[a, s], m.agg[a, s], m.agg[a, s].cost_usd, grid=grid, **args
                )

    def ev_kw(s, bus, t):
        return sum(
            m.agg[a, s].b_imp_kw[t] - m.agg[a, s].b_exp_kw[t]
            for a in m.a
            if case.aggregator_bus[a] == bus
        )

    def net_load_kw(s, bus, t):
        return case.load_kw.at[bus, t] - case.pv_kw[s].at[bus, t] + ev_kw(s, bus, t)

    m.p_import_kw = pyo.Var(m.s, m.t, bounds=(-1e5, 1e5), doc="substation import P0 (kW), Eq. (7)")
    if with_network:
        if robust:
            check_network_budget(case)
            check_fleet_energy(case)
        m.net = pyo.Block(m.s)
        margins = robust_voltage_margins(case) if robust else {s: None for s in m.s}
        for s in m.s:
            declare_scenario_network(m.net[s], case, s, lambda b, t, s=s: ev_kw(s, b, t), margins[s])
        m.eq_import = pyo.Constraint(
            m.s, m.t, rule=lambda m, s, t: m.p_import_kw[s, t] == m.net[s].p_import_kw[t]
        )
    else:
        buses = list(case.network.buses["bus"])
        m.eq_import = pyo.Constraint(
            m.s, m.t, rule=lambda m, s, t: m.p_import_kw[s, t] == sum(net_load_kw(s, b, t) for b in buses)
        )
    m.peak_kw = pyo.Var(m.s, bounds=(0.0, 1e5), doc="peak import per scenario (kW)")
    m.ineq_peak = pyo.Constraint(m.s, m.t, rule=lambda m, s, t: m.peak_kw[s] >= m.p_import_kw[s, t])
    price = case.price_usd_per_kwh
    m.energy_cost_usd = pyo.Expression(
        expr=sum(
            case.probability[s] * price[t] * DT_H * m.p_import_kw[s, t] for s in m.s for t in m.t
        )
    )
    m.objective = pyo.Objective(
        expr=m.energy_cost_usd
        + params.peak_penalty_usd_per_kw * sum(case.probability[s] * m.peak_kw[s] for s in m.s),
        sense=pyo.minimize,
        doc="expected procurement cost plus peak penalty, Eq. (1)",
    )
    return m, SingleLevelInfo(kkt, len(m.grid.bit) if grid is not None else 0)


def declare_scenario_network(block: pyo.Block, case: KeramaCase, scenario: int, ev_kw,
                             voltage_margin_pu=None) -> None:
    """Scenario ``scenario``'s feeder on ``block``: linearised DistFlow (Eqs. 2-7) with the case's losses model.

    Each bus carries its forecast load minus the scenario's PV plus
    ``ev_kw(bus, t)``, what the aggregators there draw (an expression or a
    number); ``voltage_margin_pu`` is the robust tightening of
    :func:`robust_voltage_margins` (None: nominal limits).
    """
    params = case.params
    buses, periods = list(case.network.buses["bus"]), list(case.periods)
    declare_network(
        block,
        case.network,
        periods,
        {(b, t): case.load_kw.at[b, t] - case.pv_kw[scenario].at[b, t] + ev_kw(b, t)
         for b in buses for t in periods},
        {(b, t): case.load_kvar.at[b, t] for b in buses for t in periods},
        formulation="lindistflow",
        losses=params.losses,
        n_segments=params.n_segments,
        v_source_pu=params.v_source_pu,
        voltage_margin_pu=voltage_margin_pu,
    )


def robust_voltage_margins(case: KeramaCase) -> dict[int, dict]:
    """Worst-case voltage offsets (pu squared) of the load/PV uncertainty, per scenario.

    In the linear DistFlow model of a radial feeder the squared voltage at
    bus ``j`` is ``v_j = v_0 - 2 sum_i (R_ij p_i + X_ij q_i)`` with ``R_ij``
    (``X_ij``) the resistance (reactance) shared by the paths from the
    substation to ``i`` and to ``j``, all >= 0, and ``p_i`` the net load. So
    ``v_j`` falls monotonically in every load and rises in every PV output: the
    worst case of the box ``load (1 +- gamma_load)``, ``pv (1 -+ gamma_pv)`` is
    all loads high and PV low for the lower limit, and the reverse for the
    upper limit. The offsets do not depend on any decision, so the robust
    counterpart is the nominal constraint tightened by a constant:
    ``v_j - lower_j >= vmin^2`` and ``v_j + upper_j <= vmax^2``.
    """
    params = case.params
    net = case.network
    r_shared, x_shared = shared_path_impedance(net)
    base_kw = net.base_mva * 1e3
    out = {}
    for s in case.scenarios:
        dp_up = (params.gamma_load * case.load_kw + params.gamma_pv * case.pv_kw[s]) / base_kw
        dq_up = params.gamma_load * case.load_kvar / base_kw
        lower = 2 * (r_shared @ dp_up.to_numpy() + x_shared @ dq_up.to_numpy())
        out[s] = {
            (b, t): (float(lower[i, t]), float(lower[i, t]))
            for i, b in enumerate(net.buses["bus"])
            for t in case.periods
        }
    return out


def shared_path_impedance(net: NetworkData) -> tuple[np.ndarray, np.ndarray]:
    """``R[i, j]``, ``X[i, j]``: series resistance/reactance (pu) common to the paths 0->i and 0->j."""
    n = len(net.buses)
    # Branches oriented away from the root (a grid's own from/to need not be: SimBench's are not).
    parent = {
        int(line.receiving_bus): (int(line.sending_bus), line.r_pu, line.x_pu)
        for line in radial_lines(net).itertuples()
    }
    path: dict[int, dict[int, tuple[float, float]]] = {}
    for bus in range(n):
        edges, node = {}, bus
        while node in parent:
            up, r, x = parent[node]
            edges[node] = (r, x)
            node = up
        path[bus] = edges
    r_m, x_m = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            common = path[i].keys() & path[j].keys()
            r_m[i, j] = r_m[j, i] = sum(path[i][k][0] for k in common)
            x_m[i, j] = x_m[j, i] = sum(path[i][k][1] for k in common)
    return r_m, x_m


class NetworkInfeasibleError(ValueError):
    """The robust network constraints cannot hold, whatever the aggregators do."""


def _voltage_drop_without_evs(case: KeramaCase, scenario: int, r_shared: np.ndarray, x_shared: np.ndarray,
                              margins: dict) -> tuple[np.ndarray, np.ndarray]:
    """Bus x hour arrays (pu squared): the fall of ``v^2`` from the source under the load minus PV alone,
    and the robust lower-limit offset of :func:`robust_voltage_margins`."""
    base_kw = case.network.base_mva * 1e3
    p = (case.load_kw - case.pv_kw[scenario]).to_numpy() / base_kw
    q = case.load_kvar.to_numpy() / base_kw
    margin = np.array([[margins[scenario][(b, t)][0] for t in case.periods] for b in case.network.buses["bus"]])
    return 2 * (r_shared @ p + x_shared @ q), margin


def check_network_budget(case: KeramaCase) -> None:
    """Fail before building if the voltage limits cannot hold under the robust budgets.

    A necessary condition, from the linear DistFlow sensitivities of
    :func:`robust_voltage_margins` (losses only lower voltages further): at
    every bus, hour and scenario, the worst-case voltage must reach ``vmin``
    with every plugged-in EV discharging at full power, and stay below
    ``vmax`` with every plugged-in EV charging at full power. Losses only
    lower voltages, so the lower-limit test is necessary whatever the losses
    model; the upper-limit test is made only with ``losses="none"``, where it
    is necessary too (with losses the model may still meet ``vmax``, and an
    infeasible instance is then reported by the solve). Raises
    :class:`NetworkInfeasibleError` naming the constraint family (Eq. 6), the
    hour, the bus and the scenario of each violation (the first ten).
    """
    params = case.params
    net = case.network
    r_shared, x_shared = shared_path_impedance(net)
    base_kw = net.base_mva * 1e3
    v0_sq = params.v_source_pu**2
    margins = robust_voltage_margins(case)
    problems = []
    for s in case.scenarios:
        # The most an aggregator can bid in an hour: its plugged-in EVs at full power.
        ev_bus = np.zeros((len(net.buses), N_PERIODS))
        for ev in case.fleets[s].itertuples():
            a = int(ev.aggregator)
            ev_bus[case.aggregator_bus[a], ev.arrival : ev.departure] += ev.p_max_kw
        for a, bus in case.aggregator_bus.items():
            ev_bus[bus] = np.minimum(ev_bus[bus], case.b_max_kw[a])
        drop, margin = _voltage_drop_without_evs(case, s, r_shared, x_shared, margins)
        ev = 2 * (r_shared @ ev_bus) / base_kw
        v_low = np.sqrt(np.clip(v0_sq - drop + ev - margin, 0, None))
        v_high = np.sqrt(np.clip(v0_sq - drop - ev + margin, 0, None))
        families = [("lower voltage limit (Eq. 6)", v_low < params.vmin_pu - 1e-9, v_low, params.vmin_pu)]
        if params.losses == "none":  # losses lower voltages: with them, this test is not necessary
            families.append(
                ("upper voltage limit (Eq. 6)", v_high > params.vmax_pu + 1e-9, v_high, params.vmax_pu)
            )
        for family, bad, v, limit in families:
            for i, t in zip(*np.nonzero(bad), strict=True):
                problems.append(
                    f"{family} at {case.clock_hour[t]:02d}:00, bus {net.buses.at[i, 'name']}, "
                    f"scenario {s}: worst-case |V| = {v[i, t]:.4f} pu vs limit {limit} pu "
                    "even with every aggregator at its most helpful bid"
                )
    if problems:
        raise NetworkInfeasibleError(
            f"the robust budgets (gamma_load={params.gamma_load}, gamma_pv={params.gamma_pv}) "
            f"leave the network infeasible in {len(problems)} bus-hours, whatever the aggregators "
            "do; lower the budgets, raise v_source_pu or relax the limits:\n  "
            + "\n  ".join(problems[:10])
        )


def check_fleet_energy(case: KeramaCase) -> None:
    """Fail before building if the feeder cannot carry the energy the fleets must draw.

    Per scenario and hour, the most the aggregators together can import
    while every bus stays at or above ``vmin`` under the robust budget: a
    small LP over the aggregators' net imports, each between its plugged-in
    EVs discharging and charging at full power (one aggregator feeding the
    feeder can make room for another), on the lossless linear DistFlow
    sensitivities of :func:`robust_voltage_margins` (losses and current
    limits only lower it). Per scenario and interval of hours, the fleets'
    net draw is at least ``interval_needs(..., net=True)``
    (:func:`evgrid.formulations.fleet.interval_needs`); if that exceeds the
    feeder's room summed over the interval, no schedule exists. The test is
    necessary, not sufficient: an instance it passes may still be
    infeasible, and the solve then says so. Raises :class:`NetworkInfeasibleError` naming the
    scenario, the window (clock hours), the need, the room and the deficit
    of the worst window of each infeasible scenario.
    """
    from scipy.optimize import linprog

    params = case.params
    net = case.network
    r_shared, x_shared = shared_path_impedance(net)
    base_kw = net.base_mva * 1e3
    margins = robust_voltage_margins(case)
    agg_buses = [case.aggregator_bus[a] for a in case.aggregators]
    sens = 2 * r_shared[:, agg_buses] / base_kw  # fall of v^2 per kW imported at each aggregator
    problems = []
    for s in case.scenarios:
        need = np.zeros((N_PERIODS + 1, N_PERIODS + 1))
        room_ev = np.zeros((len(agg_buses), N_PERIODS))
        for i, a in enumerate(case.aggregators):
            need_a, room_a = interval_needs(case.fleet(a, s), N_PERIODS, DT_H, net=True)
            need += need_a
            room_ev[i] = np.minimum(room_a, case.b_max_kw[a])
        drop, margin = _voltage_drop_without_evs(case, s, r_shared, x_shared, margins)
        headroom = params.v_source_pu**2 - drop - margin - params.vmin_pu**2
        room = np.zeros(N_PERIODS)
        for t in case.periods:
            if room_ev[:, t].sum() <= 0:
                continue  # no EV plugged in: nothing to carry
            lp = linprog(-np.ones(len(agg_buses)), A_ub=sens, b_ub=headroom[:, t],
                         bounds=list(zip(-room_ev[:, t], room_ev[:, t], strict=True)),
                         method="highs")
            room[t] = -lp.fun if lp.status == 0 else 0.0
        cum = np.concatenate([[0.0], np.cumsum(room * DT_H)])
        deficit = need - (cum[None, :] - cum[:, None])
        deficit[np.tril_indices(N_PERIODS + 1)] = 0.0
        t1, t2 = np.unravel_index(np.argmax(deficit), deficit.shape)
        if deficit[t1, t2] > 1e-6 * max(1.0, need[t1, t2]):
            problems.append(
                f"scenario {s}: from {case.clock_hour[t1]:02d}:00 to "
                f"{(case.clock_hour[t2 - 1] + 1) % 24:02d}:00 the EVs must draw {need[t1, t2]:,.0f} kWh "
                f"but the feeder carries at most {need[t1, t2] - deficit[t1, t2]:,.0f} kWh to the "
                f"aggregators' buses within vmin={params.vmin_pu} pu: {deficit[t1, t2]:,.0f} kWh short"
            )
    if problems:
        raise NetworkInfeasibleError(
            f"the feeder cannot carry the fleets' energy in {len(problems)} scenario(s), whatever the "
            "caps and schedules (Eqs. 2-7 and 11-14 cannot hold together); fewer EVs, more "
            "aggregator buses, or a smaller robust budget:\n  " + "\n  ".join(problems[:10])
        )


def warm_start(model: pyo.ConcreteModel, case: KeramaCase, info: SingleLevelInfo) -> bool:
    """Give every variable of the single-level model a feasible value, for a MIP start.

    HiGHS spends most of a cold solve looking for a first incumbent. A
    bilevel-feasible point is cheap to build: caps at their maximum, each
    aggregator's LP solved on its own (so its response is optimal), the
    complementarity binaries set by which rows are tight, and the duals and
    the leader's remaining variables from one LP with all of that fixed.
    Returns False (values left as they were) if that LP is infeasible, e.g.
    when the uncapped response violates the network limits.
    """
    fixed = []

    def fix(var, value):
        if not var.fixed:
            var.fix(value)
            fixed.append(var)

    for a in case.aggregators:
        for t in case.periods:
            fix(model.cap_kw[a, t], case.b_max_kw[a])
        for s in case.scenarios:
            alone = build_aggregator_lp(case, a, s)
            solve(alone)
            inside = model.agg[a, s]
            for var in alone.component_data_objects(pyo.Var):
                fix(inside.find_component(var.name), var.value)
    if hasattr(model, "grid"):
        for bit in model.grid.bit.values():
            fix(bit, 1.0)  # caps at their maximum: the top of the grid
    for a, s in info.kkt:
        kkt, rows = model.kkt[a, s], info.kkt[a, s].rows
        for i in getattr(kkt, "comp_row", []):
            slack = pyo.value(_row_slack(model.agg[a, s], rows.at[i, "name"]))
            fix(kkt.is_active[i], 1.0 if abs(slack) <= 1e-7 else 0.0)
    try:
        result = solve(model)
        ok = result.ok
    except SolverError:
        ok = False
    for var in fixed:
        var.unfix()
    return ok


def _row_slack(block: pyo.Block, row_name: str):
    """The slack of a KKT row by its name (``<constraint>:lb/ub`` or ``<var>:lb/ub``)."""
    name, _, side = row_name.rpartition(":")
    comp = block.model().find_component(name)
    if isinstance(comp, pyo.Var) or hasattr(comp, "is_continuous"):
        return comp - comp.lb if side == "lb" else comp.ub - comp
    return comp.body - comp.lower if side == "lb" else comp.upper - comp.body


# --------------------------------------------------------------------------
# A solved model, read back as plain tables
# --------------------------------------------------------------------------


def aggregator_bids(block: pyo.Block, case: KeramaCase, scenario: int, aggregator: int) -> list[tuple]:
    """One solved aggregator block (:func:`declare_aggregator`) as rows of :data:`SCHEDULE_COLUMNS`.

    Per period: its bids ``b_imp_kw[t]``, ``b_exp_kw[t]`` and its EVs' battery
    throughput ``sum (p_ch + p_dis) dt``.

    Raises
    ------
    ValueError
        If a variable has no value (the model was not solved).
    """
    throughput = dict.fromkeys(case.periods, 0.0)
    for e, t in block.ev_t:
        throughput[t] += (_value(block.p_ch_kw[e, t]) + _value(block.p_dis_kw[e, t])) * DT_H
    return [
        (scenario, aggregator, t, _value(block.b_imp_kw[t]), _value(block.b_exp_kw[t]),
         throughput[t])
        for t in case.periods
    ]


def schedule_from_model(model: pyo.ConcreteModel, case: KeramaCase) -> pd.DataFrame:
    """The aggregators' bids and battery throughput of a solved single-level model.

    Reads ``model.agg[a, s]`` (:func:`declare_aggregator`) with
    :func:`aggregator_bids`.

    Raises
    ------
    ValueError
        If a bid has no value (the model was not solved).
    """
    rows = []
    for a in case.aggregators:
        for s in case.scenarios:
            rows += aggregator_bids(model.agg[a, s], case, s, a)
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


def _value(var: pyo.Var) -> float:
    if var.value is None:
        raise ValueError(f"{var.name} has no value; solve the model first")
    return float(var.value)


def linear_state(model: pyo.ConcreteModel, scenario: int) -> dict[str, pd.Series]:
    """What the solved model's DistFlow says of ``scenario``: voltages, losses and import.

    ``vm_pu`` is indexed by (bus, t), ``losses_kw`` and ``import_kw`` by t;
    plain pandas objects, so a worker can return them instead of the model.
    """
    if not hasattr(model, "net"):
        raise ValueError("the model has no network block (built with with_network=False)")
    grid = model.net[scenario]
    periods = list(model.t)
    vm = {(b, t): math.sqrt(max(_value(grid.v_sq_pu[b, t]), 0.0)) for b, t in grid.v_sq_pu}
    return {
        "vm_pu": pd.Series(vm).rename_axis(["bus", "t"]),
        "losses_kw": pd.Series(
            [sum(_value(grid.p_loss_kw[line, t]) for line in grid.lines) for t in periods],
            index=periods,
        ),
        "import_kw": pd.Series([_value(grid.p_import_kw[t]) for t in periods], index=periods),
    }
