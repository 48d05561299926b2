"""EV fleets: one table of vehicles, its checks, and the battery constraint family.

A fleet is a tidy table with one row per EV (see :data:`FLEET_COLUMNS`). Time
is a sequence of ``n_periods`` periods of ``dt_h`` hours; an EV is plugged in
during periods ``arrival <= t < departure``. ``e_init_kwh`` is its energy when
it arrives, ``e_req_kwh`` the energy it must hold when it leaves.

The same component serves every paper that schedules EVs: Kerama (2025)
Eqs. (11)-(15) and the aggregator market model's SOC dynamics.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyomo.environ as pyo

#: Columns of a fleet table, with units.
FLEET_COLUMNS = [
    "ev",  # identifier
    "aggregator",  # who schedules it
    "bus",  # where it is plugged in
    "arrival",  # first period plugged in
    "departure",  # first period no longer plugged in
    "e_init_kwh",  # energy on arrival
    "e_req_kwh",  # energy required at departure
    "e_min_kwh",  # lowest allowed energy
    "e_max_kwh",  # highest allowed energy
    "p_max_kw",  # charger / discharger power
    "eta_ch",  # charging efficiency
    "eta_dis",  # discharging efficiency
]


class FleetInfeasibleError(ValueError):
    """Some EVs cannot meet their requirements whatever the schedule."""


def check_fleet(evs: pd.DataFrame, n_periods: int, dt_h: float = 1.0) -> None:
    """Raise :class:`FleetInfeasibleError` naming every EV that no schedule can serve.

    Checked before any model is built: the plug-in window lies inside the
    horizon and is not empty; the energy bounds are ordered and hold the
    initial and required energy; and charging at full power for the whole
    window reaches the required energy.
    """
    missing = [c for c in FLEET_COLUMNS if c not in evs.columns]
    if missing:
        raise ValueError(f"fleet table lacks columns {missing}")
    if evs["ev"].duplicated().any():
        raise ValueError(f"duplicate EV identifiers: {sorted(evs.loc[evs['ev'].duplicated(), 'ev'])}")
    problems = []
    for ev in evs.itertuples(index=False):
        window = ev.departure - ev.arrival
        reachable = ev.e_init_kwh + ev.eta_ch * ev.p_max_kw * dt_h * max(window, 0)
        if not 0 <= ev.arrival < ev.departure <= n_periods:
            problems.append(
                f"{ev.ev}: plug-in window [{ev.arrival}, {ev.departure}) is not inside 0..{n_periods}"
            )
        elif not (ev.e_min_kwh <= ev.e_init_kwh <= ev.e_max_kwh):
            problems.append(
                f"{ev.ev}: initial energy {ev.e_init_kwh:.2f} kWh outside "
                f"[{ev.e_min_kwh:.2f}, {ev.e_max_kwh:.2f}] kWh"
            )
        elif ev.e_req_kwh > ev.e_max_kwh:
            problems.append(
                f"{ev.ev}: required energy {ev.e_req_kwh:.2f} kWh above its maximum "
                f"{ev.e_max_kwh:.2f} kWh"
            )
        elif reachable < ev.e_req_kwh - 1e-9:
            problems.append(
                f"{ev.ev}: needs {ev.e_req_kwh:.2f} kWh by period {ev.departure} but can reach only "
                f"{reachable:.2f} kWh charging at {ev.p_max_kw:g} kW for {window} periods"
            )
        elif not (0 < ev.eta_ch <= 1 and 0 < ev.eta_dis <= 1) or ev.p_max_kw <= 0:
            problems.append(f"{ev.ev}: efficiencies must be in (0, 1] and p_max_kw > 0")
    if problems:
        raise FleetInfeasibleError(
            f"{len(problems)} of {len(evs)} EVs cannot be served:\n  " + "\n  ".join(problems)
        )


#: Columns of :func:`energy_need_windows`.
WINDOW_COLUMNS = ["t_start", "t_end", "n_evs", "need_kwh"]


def energy_need_windows(evs: pd.DataFrame, n_periods: int) -> pd.DataFrame:
    """The energy the grid must deliver within each window of periods, whatever the schedule.

    For every window ``[t_start, t_end)`` of ``0..n_periods`` that holds at
    least one EV's whole plug-in window, ``need_kwh`` is what the ``n_evs`` EVs
    plugged in only within it must draw, ``sum (e_req - e_init)^+ / eta_ch``:
    no schedule can move it outside the window. Its densest window bounds any
    flat charging rate from below, and a grid limit that leaves less room in
    some window than its need cannot be met.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WINDOW_COLUMNS`, one row per such window, ordered by
        ``t_start`` then ``t_end``.
    """
    need = ((evs["e_req_kwh"] - evs["e_init_kwh"]).clip(lower=0) / evs["eta_ch"]).to_numpy()
    arr, dep = evs["arrival"].to_numpy(), evs["departure"].to_numpy()
    rows = []
    for t_start in range(n_periods):
        for t_end in range(t_start + 1, n_periods + 1):
            inside = (arr >= t_start) & (dep <= t_end)
            if inside.any():
                rows.append((t_start, t_end, int(inside.sum()), need[inside].sum()))
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def densest_need(evs: pd.DataFrame, n_periods: int, dt_h: float = 1.0) -> pd.Series | None:
    """The window of :func:`energy_need_windows` whose need is densest, with its rate.

    ``rate_kw = need_kwh / ((t_end - t_start) * dt_h)`` is the least flat
    power (at the grid side) that serves the EVs plugged in only within the
    window: any cap, limit or feeder room that stays below it in every period
    of the window cannot serve them. Returns that window's row plus
    ``rate_kw``, or None if no EV needs energy from the grid.
    """
    windows = energy_need_windows(evs, n_periods)
    if not len(windows) or not (windows["need_kwh"] > 0).any():
        return None
    rate = windows["need_kwh"] / ((windows["t_end"] - windows["t_start"]) * dt_h)
    row = windows.loc[rate.idxmax()].copy()
    row["rate_kw"] = float(rate.max())
    return row


def interval_needs(evs: pd.DataFrame, n_periods: int, dt_h: float = 1.0, *,
                   net: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """What any schedule of the fleet must draw within each interval of periods, and the most it can draw per period.

    ``need[t1, t2]`` (kWh at the grid side, for ``0 <= t1 < t2 <= n_periods``;
    0 elsewhere) is ``sum_e (need_e - p_max_e * dt_h * outside_e)^+``, with
    ``need_e = (e_req - e_init)^+ / eta_ch`` and ``outside_e`` the periods of
    EV ``e``'s plug-in window outside ``[t1, t2)``: what it cannot have drawn
    at full power outside the interval. It extends
    :func:`energy_need_windows` (EVs wholly inside) to EVs partly inside, and
    is Hall's condition for the fleet's charging on intervals: an import
    limit ``x[t]`` can serve the fleet only if ``sum_{t1 <= t < t2} x[t] *
    dt_h >= need[t1, t2]`` for every interval (necessary; on intervals
    alone, not always sufficient). ``room[t]`` (kW) is what the EVs plugged
    in at ``t`` can draw at full power. This counts charging only
    (discharging adds to it).

    With ``net``, ``need[t1, t2]`` bounds the fleet's *net* draw (charging
    minus discharging) from below instead, which is what a bus sees: an EV
    that can charge more outside the interval than it needs may discharge
    inside it and feed the others. Per EV, with ``L`` the energy its battery
    must still gain inside, ``e_req - e_init - eta_ch * p_max * dt_h *
    outside``: ``L / eta_ch`` if ``L >= 0``, else ``max(eta_dis * L, -p_max
    * dt_h * inside)``, summed without clipping.
    """
    p_max = evs["p_max_kw"].to_numpy()
    arr, dep = evs["arrival"].to_numpy(), evs["departure"].to_numpy()
    t = np.arange(n_periods + 1)
    t1, t2 = t[:, None, None], t[None, :, None]  # interval [t1, t2), EVs on the last axis
    inside = np.clip(np.minimum(dep, t2) - np.maximum(arr, t1), 0, None)
    outside = (dep - arr) - inside
    if net:
        eta_ch, eta_dis = evs["eta_ch"].to_numpy(), evs["eta_dis"].to_numpy()
        gain = (evs["e_req_kwh"] - evs["e_init_kwh"]).to_numpy() - eta_ch * p_max * dt_h * outside
        need = np.where(gain >= 0, gain / eta_ch,
                        np.maximum(eta_dis * gain, -p_max * dt_h * inside)).sum(axis=2)
    else:
        need_e = ((evs["e_req_kwh"] - evs["e_init_kwh"]).clip(lower=0) / evs["eta_ch"]).to_numpy()
        need = np.clip(need_e - p_max * dt_h * outside, 0, None).sum(axis=2)
    need[t1[..., 0] >= t2[..., 0]] = 0.0
    plugged = (arr[None, :] <= t[:-1, None]) & (t[:-1, None] < dep[None, :])
    return need, plugged.astype(float) @ p_max


def plugged_periods(evs: pd.DataFrame) -> list[tuple[object, int]]:
    """The ``(ev, t)`` pairs at which each EV is plugged in, in fleet order."""
    return [
        (ev, t)
        for ev, arr, dep in zip(evs["ev"], evs["arrival"], evs["departure"], strict=True)
        for t in range(int(arr), int(dep))
    ]


def declare_ev_fleet(
    block: pyo.Block,
    evs: pd.DataFrame,
    *,
    dt_h: float = 1.0,
    allow_discharge: bool = True,
    exclusive_binaries: bool | Iterable[int] = False,
) -> None:
    """Add the battery constraint family of ``evs`` to ``block``.

    Kerama (2025) Eqs. (11)-(15), per EV ``e`` and plugged-in period ``t``::

        e_kwh[e,t] = e_kwh[e,t-1] + eta_ch p_ch dt - p_dis dt / eta_dis     (11)
        e_min <= e_kwh[e,t] <= e_max                                        (12)
        0 <= p_ch, p_dis <= p_max                                           (13)
        e_kwh[e, arrival-1] = e_init,  e_kwh[e, departure-1] >= e_req       (14)
        p_ch * p_dis = 0                                                    (15)

    Eq. (14) is written at the plug-in window (Kerama uses t = 0 and 24 for
    every EV). Eq. (15) is enforced with one binary per EV and period only if
    ``exclusive_binaries``; otherwise the block is an LP. Dropping it is exact
    whenever a unit of energy cycled through the battery has a cost
    (``eta_ch * eta_dis < 1`` or a degradation cost > 0) and no price is
    negative: charging and discharging in the same period then changes
    nothing the owner is paid for and loses energy, so an optimum never does
    it. :func:`simultaneous_charge_discharge` checks a solution. Pass a
    collection of periods as ``exclusive_binaries`` to add the binaries only
    in those periods (where a builder cannot prove them redundant).

    Adds ``ev_t`` (set of plugged ``(ev, t)``), variables ``p_ch_kw``,
    ``p_dis_kw``, ``e_kwh`` on it, constraints ``eq_energy_ev`` and
    ``ineq_energy_required_ev``, and optionally binary ``is_charging`` with
    ``ineq_p_ch_ev_ub`` / ``ineq_p_dis_ev_ub``. Variable bounds carry Eqs. (12)
    and (13). The block never reads files and does not change ``evs``.
    """
    fleet = evs.set_index("ev")
    pairs = plugged_periods(evs)
    block.ev = pyo.Set(initialize=list(fleet.index), ordered=True, doc="EVs")
    block.ev_t = pyo.Set(
        initialize=pairs, dimen=2, ordered=True, doc="(EV, period) pairs with the EV plugged in"
    )

    def p_bounds(_b, e, _t):
        return (0.0, float(fleet.at[e, "p_max_kw"]))

    def p_dis_bounds(_b, e, _t):
        return (0.0, float(fleet.at[e, "p_max_kw"]) if allow_discharge else 0.0)

    def e_bounds(_b, e, _t):
        return (float(fleet.at[e, "e_min_kwh"]), float(fleet.at[e, "e_max_kwh"]))

    block.p_ch_kw = pyo.Var(block.ev_t, bounds=p_bounds, doc="charging power (kW), Eq. (13)")
    block.p_dis_kw = pyo.Var(block.ev_t, bounds=p_dis_bounds, doc="discharging power (kW), Eq. (13)")
    block.e_kwh = pyo.Var(block.ev_t, bounds=e_bounds, doc="energy at period end (kWh), Eq. (12)")

    def energy_rule(b, e, t):
        arrival = int(fleet.at[e, "arrival"])
        before = fleet.at[e, "e_init_kwh"] if t == arrival else b.e_kwh[e, t - 1]
        return b.e_kwh[e, t] == (
            before
            + fleet.at[e, "eta_ch"] * dt_h * b.p_ch_kw[e, t]
            - dt_h / fleet.at[e, "eta_dis"] * b.p_dis_kw[e, t]
        )

    block.eq_energy_ev = pyo.Constraint(
        block.ev_t, rule=energy_rule, doc="state-of-charge dynamics, Eqs. (11), (14)"
    )
    block.ineq_energy_required_ev = pyo.Constraint(
        block.ev,
        rule=lambda b, e: b.e_kwh[e, int(fleet.at[e, "departure"]) - 1] >= fleet.at[e, "e_req_kwh"],
        doc="required energy at departure, Eq. (14)",
    )
    if exclusive_binaries is True or exclusive_binaries is False:
        binary_pairs = pairs if exclusive_binaries else []
    else:
        hours = {int(t) for t in exclusive_binaries}
        binary_pairs = [(e, t) for e, t in pairs if t in hours]
    if binary_pairs:
        block.ev_t_exclusive = pyo.Set(
            initialize=binary_pairs, dimen=2, ordered=True, doc="(EV, period) pairs with Eq. (15)"
        )
        block.is_charging = pyo.Var(
            block.ev_t_exclusive, domain=pyo.Binary, doc="1 if charging, Eq. (15)"
        )
        block.ineq_p_ch_ev_ub = pyo.Constraint(
            block.ev_t_exclusive,
            rule=lambda b, e, t: b.p_ch_kw[e, t] <= fleet.at[e, "p_max_kw"] * b.is_charging[e, t],
            doc="no simultaneous charge and discharge, Eq. (15)",
        )
        block.ineq_p_dis_ev_ub = pyo.Constraint(
            block.ev_t_exclusive,
            rule=lambda b, e, t: b.p_dis_kw[e, t]
            <= fleet.at[e, "p_max_kw"] * (1 - b.is_charging[e, t]),
            doc="no simultaneous charge and discharge, Eq. (15)",
        )


def fleet_schedule(block: pyo.Block) -> pd.DataFrame:
    """The solved schedule of a fleet block: one row per plugged ``(ev, t)``."""
    rows = [
        (e, t, pyo.value(block.p_ch_kw[e, t]), pyo.value(block.p_dis_kw[e, t]),
         pyo.value(block.e_kwh[e, t]))
        for e, t in block.ev_t
    ]
    return pd.DataFrame(rows, columns=["ev", "t", "p_ch_kw", "p_dis_kw", "e_kwh"])


def simultaneous_charge_discharge(schedule: pd.DataFrame, tol_kw: float = 1e-6) -> pd.DataFrame:
    """Rows of ``schedule`` where an EV charges and discharges in the same period."""
    both = (schedule["p_ch_kw"] > tol_kw) & (schedule["p_dis_kw"] > tol_kw)
    return schedule[both]


def uncontrolled_charging(
    evs: pd.DataFrame,
    n_periods: int,
    dt_h: float = 1.0,
    *,
    target: str = "max",
    hour_shares: dict[tuple[str, int], float] | None = None,
) -> pd.DataFrame:
    """Baseline: every EV charges at full power from arrival until full (no V2G).

    "Full" is ``e_max_kwh`` (``target="max"``, Kerama's baseline) or the
    energy required at departure (``target="required"``: a charger that stops
    when the driver's need is met, as the real sessions of the aggregator
    market paper did). The last period charges only what is left, so no EV
    exceeds its target. ``hour_shares`` (``{(ev, t): share}``) limits the
    charger to that share of the period where an EV is plugged in only part of
    it (sub-hourly arrivals and departures); other periods use the full power.
    Returns one row per ``(ev, t)`` in the window with ``p_ch_kw``,
    ``p_dis_kw`` (zero) and ``e_kwh`` at period end.
    """
    if target not in ("max", "required"):
        raise ValueError(f"target must be 'max' or 'required', got {target!r}")
    column = "e_max_kwh" if target == "max" else "e_req_kwh"
    shares = hour_shares or {}
    rows = []
    for ev in evs.itertuples(index=False):
        energy = float(ev.e_init_kwh)
        for t in range(int(ev.arrival), min(int(ev.departure), n_periods)):
            room_kwh = max(getattr(ev, column) - energy, 0.0)
            p_kw = min(ev.p_max_kw * shares.get((ev.ev, t), 1.0), room_kwh / (ev.eta_ch * dt_h))
            energy += ev.eta_ch * p_kw * dt_h
            rows.append((ev.ev, t, p_kw, 0.0, energy))
    return pd.DataFrame(rows, columns=["ev", "t", "p_ch_kw", "p_dis_kw", "e_kwh"])


def net_power_by(schedule: pd.DataFrame, evs: pd.DataFrame, key: str, n_periods: int) -> pd.DataFrame:
    """Net charging power (kW, charge positive) summed by ``key`` (e.g. "aggregator", "bus").

    Returns a ``key x period`` table with every period of the horizon.
    """
    merged = schedule.merge(evs[["ev", key]], on="ev")
    merged["p_net_kw"] = merged["p_ch_kw"] - merged["p_dis_kw"]
    table = merged.pivot_table(index=key, columns="t", values="p_net_kw", aggfunc="sum")
    return table.reindex(columns=np.arange(n_periods), fill_value=0.0).fillna(0.0)
