"""Kerama (2025): bi-level stochastic-robust scheduling of EV aggregators on the IEEE 33-bus feeder.

B. N. Kerama, "A Bi-Level Stochastic-Robust MILP Framework for Coordinated EV
Charging/Discharging with Battery-Degradation and Piecewise-Linear Network
Constraints in Distribution-Level Smart Grids", AJISE 4(2), 2025.

Where the paper leaves a gap we choose, and say so here and in notebook 01:

* **The leader's lever.** The paper's distribution operator (DSO) decides
  nothing the aggregators see. Here it publishes, day-ahead and for every
  scenario alike, a per-aggregator, per-hour import cap ``cap_kw[a, t]`` (a
  dynamic operating envelope). The aggregators' bids then enter the DistFlow
  bus injections, so their response reaches the network.
* **Prices.** Aggregators are price-takers at the time-of-use price
  ``pi_t`` for both bids (Eq. 8's ``lambda+`` = ``lambda-`` = ``pi_t``).
* **Degradation.** ``kappa |p_ch - p_dis|`` of Eq. (8) is charged on the
  throughput ``kappa (p_ch + p_dis)``; the two agree once Eq. (15) holds.
* **Horizon.** 24 hourly periods from 12:00 to 12:00, so that an EV's
  evening-to-morning plug-in window lies inside one horizon.
* **Network.** The Baran & Wu feeder at its real 12.66 kV (the paper's
  4.16 kV is wrong), loads following the IEEE RTS winter-weekday profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.core.paths import repo_path
from evgrid.formulations.bilevel import (
    KktInfo,
    declare_binary_grid,
    declare_kkt,
    declare_strong_duality,
)
from evgrid.formulations.fleet import check_fleet, declare_ev_fleet
from evgrid.networks import NetworkData, load_ieee33
from evgrid.papers.kerama2025.params import Kerama2025Params

HORIZON_START_HOUR = 12
N_PERIODS = 24
DT_H = 1.0
LOAD_PROFILE = "data/kerama2025/load_profile_rts_winter_weekday.csv"


@dataclass(frozen=True)
class KeramaCase:
    """One instance of the Kerama case study: network, prices, scenarios and fleets.

    Buses are the 0-based pandapower indices of ``network``; ``t`` runs over
    ``0..N_PERIODS-1`` with clock hour ``clock_hour[t]``.
    """

    params: Kerama2025Params
    network: NetworkData
    clock_hour: np.ndarray
    price_usd_per_kwh: np.ndarray
    load_kw: pd.DataFrame  # bus x t, forecast
    load_kvar: pd.DataFrame  # bus x t, forecast
    pv_kw: dict[int, pd.DataFrame]  # scenario -> bus x t
    fleets: dict[int, pd.DataFrame]  # scenario -> fleet table (evgrid.formulations.fleet columns)
    probability: np.ndarray
    aggregator_bus: dict[int, int]
    b_max_kw: dict[int, float]

    @property
    def periods(self) -> range:
        return range(N_PERIODS)

    @property
    def scenarios(self) -> list[int]:
        return sorted(self.fleets)

    @property
    def aggregators(self) -> list[int]:
        return sorted(self.aggregator_bus)

    def fleet(self, aggregator: int, scenario: int) -> pd.DataFrame:
        f = self.fleets[scenario]
        return f[f["aggregator"] == aggregator].reset_index(drop=True)

    @property
    def free_caps(self) -> list[tuple[int, int]]:
        """The ``(aggregator, t)`` caps the DSO decides (``params.cap_hours``), aggregator-major.

        The other caps sit at the bid bound ``b_max_kw``, where they change nothing.
        """
        hours = self.params.cap_hours
        return [
            (a, t)
            for a in self.aggregators
            for t in self.periods
            if hours is None or int(self.clock_hour[t]) in hours
        ]


def time_of_use_prices(params: Kerama2025Params, clock_hour: np.ndarray) -> np.ndarray:
    """Kerama's time-of-use tariff: 0.10 / 0.18 / 0.30 $/kWh off / mid / peak.

    The paper gives the three prices, not their hours. We use peak 17-21 h,
    off-peak 22-7 h and mid-peak otherwise. Its "volatile" case (peak
    0.15-0.35) is not defined further; with ``price_peak_swing`` the peak
    hours alternate ``price_peak - swing`` and ``price_peak + swing``
    (17 h low, 18 h high, ...), so 0.25 +- 0.10 spans 0.15-0.35.
    """
    h = np.asarray(clock_hour)
    peak = (h >= 17) & (h < 21)
    off = (h >= 22) | (h < 7)
    swing = np.where(h % 2 == 1, -1.0, 1.0) * params.price_peak_swing
    return np.where(peak, params.price_peak + swing, np.where(off, params.price_offpeak, params.price_midpeak))


def pv_shape(clock_hour: np.ndarray) -> np.ndarray:
    """Clear-sky PV output per unit of rating: a half-sine between 06:00 and 18:00."""
    mid = np.asarray(clock_hour) + 0.5
    return np.clip(np.sin(np.pi * (mid - 6.0) / 12.0), 0.0, None) * ((mid > 6) & (mid < 18))


def make_instance(params: Kerama2025Params) -> KeramaCase:
    """Build the case study from ``params`` (validated) and its seed.

    Scenarios are equally likely Monte-Carlo draws of (i) a cloudiness factor
    on PV output, uniform on [0.6, 1.0], and (ii) each EV's arrival and
    departure hours (normal, rounded, clipped to 13-23 h and 5-11 h) and
    arrival state of charge (uniform). Every EV is checked to be servable
    before any model is built (:func:`evgrid.formulations.fleet.check_fleet`).
    """
    network = load_ieee33(vmin_pu=params.vmin_pu, vmax_pu=params.vmax_pu)
    clock = (HORIZON_START_HOUR + np.arange(N_PERIODS)) % 24
    profile = pd.read_csv(repo_path(LOAD_PROFILE)).set_index("hour")["load_fraction"]
    factor = profile.reindex(clock).to_numpy()
    kw = network.buses["p_load_pu"].to_numpy() * network.base_mva * 1e3
    kvar = network.buses["q_load_pu"].to_numpy() * network.base_mva * 1e3
    load_kw = pd.DataFrame(np.outer(kw, factor), index=network.buses["bus"], columns=range(N_PERIODS))
    load_kvar = pd.DataFrame(np.outer(kvar, factor), index=network.buses["bus"], columns=range(N_PERIODS))

    rng = np.random.default_rng(params.seed)
    shape = pv_shape(clock)
    pv_buses = [b - 1 for b in params.pv_buses]
    agg_bus = {a: b - 1 for a, b in enumerate(params.aggregator_buses)}
    fo = params.fleet
    cap = fo.battery_kwh
    pv, fleets = {}, {}
    for s in range(params.n_scenarios):
        cloud = rng.uniform(0.6, 1.0)
        table = pd.DataFrame(0.0, index=network.buses["bus"], columns=range(N_PERIODS))
        for b in pv_buses:
            table.loc[b] = params.pv_kw_per_bus * cloud * shape
        pv[s] = table
        n = fo.n_evs * params.n_aggregators
        arrive_h = np.clip(np.rint(rng.normal(params.arrival_hour_mean, params.arrival_hour_sd, n)), 13, 23)
        depart_h = np.clip(
            np.rint(rng.normal(params.departure_hour_mean, params.departure_hour_sd, n)), 5, 11
        )
        soc0 = rng.uniform(params.soc_init_min, params.soc_init_max, n)
        aggregator = np.repeat(np.arange(params.n_aggregators), fo.n_evs)
        fleets[s] = pd.DataFrame(
            {
                "ev": [f"a{a}e{i % fo.n_evs:03d}" for i, a in enumerate(aggregator)],
                "aggregator": aggregator,
                "bus": [agg_bus[a] for a in aggregator],
                "arrival": (arrive_h - HORIZON_START_HOUR).astype(int),
                "departure": (depart_h + 24 - HORIZON_START_HOUR).astype(int),
                "e_init_kwh": soc0 * cap,
                "e_req_kwh": params.soc_required * cap,
                "e_min_kwh": fo.soc_min * cap,
                "e_max_kwh": fo.soc_max * cap,
                "p_max_kw": fo.charger_kw,
                "eta_ch": fo.charge_efficiency,
                "eta_dis": fo.discharge_efficiency,
            }
        )
        check_fleet(fleets[s], N_PERIODS, DT_H)
    return KeramaCase(
        params=params,
        network=network,
        clock_hour=clock,
        price_usd_per_kwh=time_of_use_prices(params, clock),
        load_kw=load_kw,
        load_kvar=load_kvar,
        pv_kw=pv,
        fleets=fleets,
        probability=np.full(params.n_scenarios, 1.0 / params.n_scenarios),
        aggregator_bus=agg_bus,
        b_max_kw={a: fo.n_evs * fo.charger_kw for a in agg_bus},
    )


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
    from evgrid.core.solvers import solve

    model = build_aggregator_lp(case, aggregator, scenario, caps_kw)
    return solve(model).objective


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
    caps_kw: dict[tuple[int, int], float] | None = None,
) -> tuple[pyo.ConcreteModel, SingleLevelInfo]:
    """The bi-level model as one MILP: the DSO's problem plus every aggregator's KKT conditions.

    Upper level (Eq. 1): minimise the expected cost of the substation import
    plus ``alpha`` times each scenario's peak import. Per scenario, the
    DistFlow model (Eqs. 2-7, :func:`evgrid.formulations.distflow.declare_lindistflow`)
    carries the forecast load minus PV plus the aggregators' net imports; with
    ``robust``, voltage limits hold for every load/PV realisation within the
    budgets (:func:`robust_voltage_margins`). Without ``with_network`` the
    import is the plain sum of injections (no network, no losses).

    Lower level: one aggregator problem per aggregator and scenario
    (:func:`declare_aggregator`) replaced by its optimality conditions:
    ``params.reformulation = "kkt"`` uses complementarity with one binary per
    follower inequality (:func:`evgrid.formulations.bilevel.declare_kkt`);
    ``"strong_duality"`` puts the caps on a grid of ``2**cap_bits`` levels and
    uses dual feasibility plus strong duality, whose only binaries are the
    grid's (:func:`evgrid.formulations.bilevel.declare_strong_duality`). On the same grid
    the two are equivalent. Leader decision: ``cap_kw[a, t]`` for the
    ``case.free_caps`` (every hour, or ``params.cap_hours``); the others are
    fixed at the bid bound and left out of the aggregators' problems.

    ``lower_level`` swaps that block for the two LPs that bracket the
    bi-level optimum (:func:`solve_bounds`): ``"high_point"`` drops the
    aggregators' optimality altogether (the high-point relaxation, a lower
    bound); ``"value_function"`` fixes the caps to ``caps_kw`` and asks
    each aggregator's cost to be no more than its optimum on its own
    (``phi``, from :func:`build_aggregator_lp`) -- for fixed caps exactly
    what strong duality imposes, so its optimum is the bi-level objective at
    those caps (an upper bound).

    Raises :class:`NetworkInfeasibleError` before building when the robust
    budgets leave the network infeasible (:func:`check_network_budget`).
    """
    if lower_level not in ("reformulated", "high_point", "value_function"):
        raise ValueError(
            f"lower_level={lower_level!r}: use 'reformulated', 'high_point' or 'value_function'"
        )
    if (lower_level == "value_function") != (caps_kw is not None):
        raise ValueError("caps_kw is needed with lower_level='value_function', and only there")
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
                phi = follower_optimum(case, a, s, {t: caps_kw[a, t] for t in m.t})
                m.kkt[a, s].phi_usd = pyo.Param(initialize=phi, mutable=True)
                m.kkt[a, s].ineq_optimal = pyo.Constraint(
                    expr=m.agg[a, s].cost_usd <= phi + VALUE_FUNCTION_TOL * max(1.0, abs(phi)),
                    doc="the aggregator's cost is its optimum at these caps",
                )
                continue
            if params.reformulation == "kkt":
                kkt[a, s] = declare_kkt(m.kkt[a, s], m.agg[a, s], m.agg[a, s].cost_usd, **args)
            else:
                kkt[a, s] = declare_strong_duality(
                    m.kkt[a, s], m.agg[a, s], m.agg[a, s].cost_usd, grid=grid, **args
                )

    def net_load_kw(s, bus, t):
        ev = sum(
            m.agg[a, s].b_imp_kw[t] - m.agg[a, s].b_exp_kw[t]
            for a in m.a
            if case.aggregator_bus[a] == bus
        )
        return case.load_kw.at[bus, t] - case.pv_kw[s].at[bus, t] + ev

    m.p_import_kw = pyo.Var(m.s, m.t, bounds=(-1e5, 1e5), doc="substation import P0 (kW), Eq. (7)")
    if with_network:
        from evgrid.formulations.distflow import declare_lindistflow

        if robust:
            check_network_budget(case)
        m.net = pyo.Block(m.s)
        margins = robust_voltage_margins(case) if robust else {s: None for s in m.s}
        buses = list(case.network.buses["bus"])
        for s in m.s:
            declare_lindistflow(
                m.net[s],
                case.network,
                list(m.t),
                {(b, t): net_load_kw(s, b, t) for b in buses for t in m.t},
                {(b, t): case.load_kvar.at[b, t] for b in buses for t in m.t},
                losses=params.losses,
                n_segments=params.n_segments,
                v_source_pu=params.v_source_pu,
                voltage_margin_pu=margins[s],
            )
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
    parent = {int(b.to_bus): (int(b.from_bus), b.r_pu, b.x_pu) for b in net.branches.itertuples()}
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
    from evgrid.core.solvers import SolverError, solve

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


class NetworkInfeasibleError(ValueError):
    """The robust network constraints cannot hold, whatever the aggregators do."""


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
        p = (case.load_kw - case.pv_kw[s]).to_numpy() / base_kw
        q = case.load_kvar.to_numpy() / base_kw
        drop = 2 * (r_shared @ p + x_shared @ q)
        ev = 2 * (r_shared @ ev_bus) / base_kw
        margin = np.array([[margins[s][(b, t)][0] for t in case.periods] for b in net.buses["bus"]])
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


# --------------------------------------------------------------------------
# Benders decomposition by scenario


def _one_scenario(case: KeramaCase, scenario: int) -> KeramaCase:
    from dataclasses import replace

    return replace(
        case, fleets={scenario: case.fleets[scenario]}, pv_kw={scenario: case.pv_kw[scenario]}
    )


def build_subproblem(case: KeramaCase, scenario: int) -> tuple[pyo.ConcreteModel, list]:
    """Scenario ``scenario``'s part of the single-level model, with the cap grid relaxed.

    The DSO's import caps are the only link between scenarios (each
    scenario has its own peak, Eq. 1). Here they sit on their grid
    (``grid.bit``) with the bits made continuous: once the master fixes them
    (by bounds, so that their reduced costs are the subgradient), the
    subproblem is an LP: DistFlow, the aggregators' primal and dual
    feasibility and the strong-duality inequality, whose McCormick products
    are exact at 0/1 bits. Its objective is the scenario's
    probability-weighted cost. Returns the model and its coupling variables,
    the bits, in the grid's order.
    """
    if case.params.reformulation != "strong_duality":
        raise ValueError("Benders needs reformulation='strong_duality' (LP subproblems)")
    if case.params.cap_bits < 1:
        raise ValueError("Benders needs the caps on a grid: cap_bits >= 1")
    model, _info = build_single_level(_one_scenario(case, scenario))
    bits = list(model.grid.bit.values())
    for bit in bits:
        bit.domain = pyo.UnitInterval
    return model, bits


def build_master(case: KeramaCase, lower_bounds: dict[int, float]) -> pyo.ConcreteModel:
    """The Benders master: the cap grid's bits and one cost estimate ``theta[s]`` per scenario.

    Cuts are added by :func:`solve_benders`: optimality cuts
    ``theta[s] >= v_s + sum rc (bit - bit_hat)`` from the reduced costs,
    the integer optimality cut of Laporte & Louveaux (1993), which is exact
    at the grid point it was made at (:func:`integer_optimality_cut`), and,
    for a grid point at which some scenario is infeasible, a no-good cut
    excluding that point.
    """
    n_caps = len(case.free_caps)
    m = pyo.ConcreteModel(name="kerama2025_benders_master")
    m.bit = pyo.Var(range(n_caps), range(case.params.cap_bits), domain=pyo.Binary)
    m.theta = pyo.Var(case.scenarios, bounds=lambda _m, s: (lower_bounds[s], None))
    m.cuts = pyo.ConstraintList()
    m.objective = pyo.Objective(expr=sum(m.theta[s] for s in case.scenarios))
    return m


def integer_optimality_cut(theta, bits: list, hat: list[int], value: float, lower: float):
    """Laporte & Louveaux's (1993) integer L-shaped optimality cut, as a Pyomo inequality.

    ``theta >= lower + (value - lower) * (sum_{hat=1} bit - sum_{hat=0} bit - |hat=1| + 1)``:
    at ``hat`` the bracket is 1 and the cut says ``theta >= value`` (the
    scenario's exact cost there); at any other 0/1 point the bracket is at
    most 0, and the cut asks no more than ``lower``, a bound valid at every
    point (the high-point relaxation). The reduced-cost cut comes from the
    subproblem with the bits relaxed, whose McCormick rows are weak between
    grid points; this one is what makes Benders exact on the grid.
    """
    ones = sum(hat)
    agree = sum(b if h else -b for b, h in zip(bits, hat, strict=True))
    return theta >= lower + (value - lower) * (agree - ones + 1)


@dataclass(frozen=True)
class ScenarioSolution:
    """What the notebook needs of one solved scenario model, as plain tables (picklable)."""

    scenario: int
    objective: float | None  # None: infeasible at these caps
    reduced_costs: list[float]  # per bit, in the grid's order
    schedule: pd.DataFrame | None = None  # evgrid.kerama2025_eval.SCHEDULE_COLUMNS
    soc: pd.DataFrame | None = None  # aggregator, ev, t, p_ch_kw, p_dis_kw, e_kwh
    inside_cost_usd: dict | None = None  # aggregator -> cost_usd in the model
    dual_usage: float | None = None  # largest |dual| / w over the aggregators
    linear_state: dict | None = None  # evgrid.kerama2025_eval.linear_state
    distflow_vs_ac: pd.DataFrame | None = None  # filled for the best grid point only
    peak_kw: float | None = None
    solve_s: float = 0.0


_CACHE: dict = {}  # per process: (token, scenario) -> (model, bits, interface), one run's only


def _solve_scenario(token: str, case: KeramaCase, hat: list[int], scenario: int) -> ScenarioSolution:
    """Fix the bits of ``scenario``'s subproblem to ``hat`` and solve it (one Benders step)."""
    import time

    from evgrid.core.solvers import InfeasibleModelError, UnboundedModelError
    from evgrid.formulations.fleet import fleet_schedule
    from evgrid.kerama2025_eval import linear_state, schedule_from_model

    key = (token, scenario)
    if key not in _CACHE:
        for old in [k for k in _CACHE if k[0] != token]:
            del _CACHE[old]  # an earlier run's models
        model, bits = build_subproblem(case, scenario)
        _CACHE[key] = (model, bits, _lp_interface(case))
    model, bits, interface = _CACHE[key]
    for bit, value in zip(bits, hat, strict=True):
        bit.setlb(value)
        bit.setub(value)
    start = time.perf_counter()
    try:
        res = _solve_lp(model, case, reduced_costs_of=bits, interface=interface)
    except (InfeasibleModelError, UnboundedModelError):
        return ScenarioSolution(scenario, None, [], solve_s=time.perf_counter() - start)
    one = _one_scenario(case, scenario)
    soc = []
    for a in case.aggregators:
        table = fleet_schedule(model.agg[a, scenario])
        table.insert(0, "aggregator", a)
        soc.append(table)
    usage = 0.0
    for a in case.aggregators:
        block = model.kkt[a, scenario]
        w = case.params.dual_bound_usd_per_kwh
        usage = max(usage, max(abs(pyo.value(d)) for d in block.dual.values()) / w)
    return ScenarioSolution(
        scenario=scenario,
        objective=res.objective,
        reduced_costs=[float(res.reduced_costs[b]) for b in bits],
        schedule=schedule_from_model(model, one),
        soc=pd.concat(soc, ignore_index=True),
        inside_cost_usd={a: pyo.value(model.agg[a, scenario].cost_usd) for a in case.aggregators},
        dual_usage=usage,
        linear_state=linear_state(model, scenario),
        peak_kw=pyo.value(model.peak_kw[scenario]),
        solve_s=time.perf_counter() - start,
    )


def _lp_interface(case: KeramaCase):
    """With HiGHS, a persistent interface: the subproblem is translated once per run, not per iteration."""
    from evgrid.core.solvers import bounds_only_highs

    return bounds_only_highs() if case.params.solver.solver == "highs" else None


def _solve_lp(model: pyo.ConcreteModel, case: KeramaCase, **kwargs):
    """Solve a scenario LP with the configured solver; HiGHS uses its interior point method.

    On the paper instance HiGHS' IPM (with crossover, so the solution is a
    vertex and its reduced costs are exact) takes 2.6 s where dual simplex
    takes 4.3 s per strong-duality subproblem.
    """
    from evgrid.core.solvers import solve

    name = case.params.solver.solver
    options = {"solver": "ipm"} if name == "highs" else None
    return solve(model, name, options=options, **kwargs)


def _high_point_bound(case: KeramaCase, scenario: int) -> float | None:
    """Scenario ``scenario``'s high-point relaxation: a lower bound on its bi-level cost.

    None if it is infeasible: then no schedule of the fleets, however
    cooperative, meets the network constraints in that scenario.
    """
    from evgrid.core.solvers import InfeasibleModelError

    model, _info = build_single_level(_one_scenario(case, scenario), lower_level="high_point")
    try:
        return _solve_lp(model, case).objective
    except InfeasibleModelError:
        return None


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`, with the bound trace for the notebook's figure.

    ``scenarios`` holds the best grid point's per-scenario solutions
    (:class:`ScenarioSolution`); ``relative_gap`` is ``(objective -
    lower_bound) / |objective|``.
    """

    objective: float
    lower_bound: float
    trace: pd.DataFrame  # iteration, lower_bound, upper_bound, gap, cuts, seconds
    caps_kw: pd.DataFrame  # aggregator x t
    converged: bool
    scenarios: dict[int, ScenarioSolution]
    initial_bounds: dict[int, float]

    @property
    def relative_gap(self) -> float:
        return (self.objective - self.lower_bound) / max(abs(self.objective), 1e-9)

    @property
    def schedule(self) -> pd.DataFrame:
        return pd.concat([s.schedule for s in self.scenarios.values()], ignore_index=True)


def _spread_grid_point(case: KeramaCase) -> dict[tuple[int, int], int]:
    """Grid bits of the flattest caps under which every fleet can still be served.

    Per aggregator, one cap for every hour: the smallest grid level at or
    above the densest need of its EVs in any scenario, i.e. the largest
    ``sum(energy to charge / eta_ch) / (t2 - t1)`` over the EVs plugged in
    only within hours ``[t1, t2)`` (a uniform rate below it cannot serve
    them), plus one level of slack. It spreads charging over the night, the
    opposite of the uncapped response that piles it into the cheapest hours.
    """
    n_bits = case.params.cap_bits
    top = 2**n_bits - 1
    levels = {}
    for a in case.aggregators:
        rate = 0.0
        for s in case.scenarios:
            f = case.fleets[s]
            f = f[f["aggregator"] == a]
            need = ((f["e_req_kwh"] - f["e_init_kwh"]).clip(lower=0) / f["eta_ch"]).to_numpy()
            arr, dep = f["arrival"].to_numpy(), f["departure"].to_numpy()
            for t1 in range(N_PERIODS):
                for t2 in range(t1 + 1, N_PERIODS + 1):
                    inside = (arr >= t1) & (dep <= t2)
                    if inside.any():
                        rate = max(rate, need[inside].sum() / (t2 - t1))
        step = case.b_max_kw[a] / top
        levels[a] = min(top, int(np.ceil(rate / step - 1e-9)) + 1)
    hat = {}
    for idx, (a, _t) in enumerate(case.free_caps):
        for k in range(n_bits):
            hat[idx, k] = (levels[a] >> k) & 1
    return hat


def solve_benders(
    case: KeramaCase,
    *,
    tol: float = 1e-4,
    max_iterations: int = 100,
    time_limit_s: float | None = None,
    workers: int = 1,
    progress: bool = False,
) -> BendersResult:
    """Solve the single-level model by Benders decomposition over scenarios.

    The master picks the caps (grid bits); each scenario's subproblem
    (:func:`build_subproblem`) is an LP given them, solved in ``workers``
    processes. Each ``theta[s]`` starts at its scenario's high-point
    relaxation (the network and the aggregators' constraints without their
    optimality), a valid bound for any caps. The first grid point is the
    uncapped one; if it overloads the feeder, the second is the flattest
    one the fleets can live with (:func:`_spread_grid_point`). Lower bound: the master's optimum; upper bound: the best
    grid point at which every scenario is feasible. Stops when the relative
    gap is at most ``tol``; otherwise, after ``max_iterations`` or
    ``time_limit_s``, returns with ``converged=False`` and a
    :class:`evgrid.core.solvers.SolverLimitWarning` that states the gap.
    """
    import sys
    import time
    import uuid
    import warnings
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm  # plain text on stdout: no widget, nothing on stderr

    from evgrid.core.solvers import SolverLimitWarning, solve

    start = time.perf_counter()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_network_budget(case)
    token = uuid.uuid4().hex
    pool = ProcessPoolExecutor(workers) if workers > 1 else None

    bar = tqdm(desc="high-point bounds", unit="LP", disable=not progress, file=sys.stdout)

    def run_all(fn, *args):
        """``fn(*args)`` once per scenario, with the scenario appended to ``args``."""
        if pool is None:
            out = []
            for s in case.scenarios:
                out.append(fn(*args, s))
                bar.update()
            return out
        futures = [pool.submit(fn, *args, s) for s in case.scenarios]
        for _done in as_completed(futures):
            bar.update()
        return [f.result() for f in futures]

    try:
        initial = dict(zip(case.scenarios, run_all(_high_point_bound, case), strict=True))
        hopeless = [s for s, bound in initial.items() if bound is None]
        if hopeless:
            total = sum(len(case.fleets[s]) for s in hopeless) // len(hopeless)
            raise NetworkInfeasibleError(
                f"no schedule of the {total} EVs meets the network constraints (Eqs. 2-7: DistFlow, "
                f"robust voltage and current limits) in scenario(s) {hopeless}, even with every "
                "aggregator doing what suits the feeder (the high-point relaxation is infeasible), "
                "so no caps can help: fewer EVs per aggregator, more aggregator buses, or a "
                "smaller robust budget"
            )
        master = build_master(case, initial)
        n_bits = case.params.cap_bits
        key = [(i, k) for i in range(len(case.free_caps)) for k in range(n_bits)]
        hat = dict.fromkeys(key, 1)  # the uncapped grid point first
        best, best_hat, best_solutions, rows = float("inf"), None, None, []
        lb, converged = sum(initial.values()), False
        for iteration in range(1, max_iterations + 1):
            bar.set_description(f"Benders iteration {iteration}")
            solutions = run_all(_solve_scenario, token, case, [hat[ik] for ik in key])
            feasible = all(sol.objective is not None for sol in solutions)
            for sol in solutions:
                if sol.objective is None:
                    continue
                theta = master.theta[sol.scenario]
                master.cuts.add(
                    theta
                    >= sol.objective
                    + sum(
                        rc * (master.bit[ik] - hat[ik])
                        for ik, rc in zip(key, sol.reduced_costs, strict=True)
                    )
                )
                master.cuts.add(
                    integer_optimality_cut(
                        theta,
                        [master.bit[ik] for ik in key],
                        [hat[ik] for ik in key],
                        sol.objective,
                        initial[sol.scenario],
                    )
                )
            if feasible:
                total = sum(sol.objective for sol in solutions)
                if total < best:
                    best, best_hat = total, dict(hat)
                    best_solutions = {sol.scenario: sol for sol in solutions}
            else:
                master.cuts.add(
                    sum(1 - master.bit[ik] if hat[ik] else master.bit[ik] for ik in key) >= 1
                )
            lb = max(lb, solve(master, case.params.solver.solver).objective)
            gap = (best - lb) / max(abs(best), 1e-9)
            rows.append((iteration, lb, best, gap, len(master.cuts), time.perf_counter() - start))
            bar.set_postfix(lb=f"{lb:.2f}", ub=f"{best:.2f}", gap=f"{gap:.2e}")
            if gap <= tol:
                converged = True
                break
            if time_limit_s is not None and time.perf_counter() - start >= time_limit_s:
                break
            if best_hat is None and iteration == 1:
                # The uncapped point overloads the feeder; no-good cuts alone would
                # crawl through neighbouring grid points. Try the flattest caps
                # the fleets can live with next.
                hat = _spread_grid_point(case)
                continue
            hat = {ik: round(pyo.value(master.bit[ik])) for ik in key}
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    trace = pd.DataFrame(
        rows, columns=["iteration", "lower_bound", "upper_bound", "gap", "cuts", "seconds"]
    )
    if best_hat is None:
        raise NetworkInfeasibleError(
            "Benders found no grid point of the caps at which every scenario is feasible"
        )
    if not converged:
        warnings.warn(
            f"Benders stopped after {len(rows)} iterations and {rows[-1][-1]:.0f} s with a relative "
            f"gap of {rows[-1][3]:.2%} (tolerance {tol:.2%}); raise max_iterations or time_limit_s",
            SolverLimitWarning,
            stacklevel=2,
        )
    caps = {(a, t): case.b_max_kw[a] for a in case.aggregators for t in case.periods}
    step = {a: case.b_max_kw[a] / (2**n_bits - 1) for a in case.aggregators}
    for idx, (a, t) in enumerate(case.free_caps):
        caps[a, t] = step[a] * sum(2**k * best_hat[idx, k] for k in range(n_bits))
    caps_kw = pd.Series(caps).unstack()
    from dataclasses import replace

    from evgrid.kerama2025_eval import linear_vs_ac

    checked = {  # DistFlow against AC, once, for the answer (not at every iteration)
        s: replace(
            sol,
            distflow_vs_ac=linear_vs_ac(_one_scenario(case, s), sol.schedule, s, sol.linear_state),
        )
        for s, sol in best_solutions.items()
    }
    return BendersResult(best, lb, trace, caps_kw, converged, checked, initial)
