"""Priolkar & Kunkolienkar (2025): the EV users' lower level, solved exactly, and the metrics.

Each user ``i`` minimises ``H3 = delta * H1 + epsilon * H2`` (Eq. 12) with
``delta = 1``:

* ``H1 = sum_t DP_t p_it`` (Eq. 10 as corrected: users pay the aggregator's
  DR price; at the base price BP the price signal would never reach them);
* ``H2`` = the user's wait (Eq. 11) in its linear form, the energy-weighted
  delay of charging ``sum_t (t - first_i) p_it / E_i``;

subject to ``sum_t p_it = E_i`` (Eq. 17 with equality), ``0 <= p_it <= P_max``
(Eq. 19) and ``p_it = 0`` outside the window (Eq. 18 as corrected). The cost
per kWh in period ``t`` is ``c_it = DP_t + epsilon (t - first_i) / E_i``, so
the LP is a fractional knapsack: fill the cheapest periods at ``P_max``
(:func:`respond`, vectorised over a whole population of price vectors). Ties
go to the earlier period. The station limits (Eq. 13) enter only when they
bind; :func:`respond_lp` solves the coupled LP with them and the priority
weights for checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase

__all__ = [
    "Outcome",
    "asap_centre_h",
    "asap_schedule",
    "costs_per_kwh",
    "outcome",
    "respond",
    "respond_lp",
    "respond_start_time",
    "station_loads",
    "wait_hours",
]


def costs_per_kwh(case: PriolkarCase, dp: np.ndarray) -> np.ndarray:
    """``c[..., i, t]``: user ``i``'s cost of a kWh in period ``t`` at DR prices ``dp[..., t]``; inf outside its window."""
    dp = np.asarray(dp, dtype=float)
    eps = case.params.wait_value_usd_per_h
    t = np.arange(N_PERIODS)
    tau = (t[None, :] - case.first[:, None]) / case.energy_kwh[:, None]  # h per kWh
    c = dp[..., None, :] + eps * tau
    return np.where(case.window, c, np.inf)


def respond(case: PriolkarCase, dp: np.ndarray) -> np.ndarray:
    """Every user's optimal schedule ``p[..., i, t]`` (kW) at DR prices ``dp[..., t]`` ($/kWh).

    Exact for Eqs. 10-12, 17-19 (the fractional knapsack); ``dp`` may carry
    leading batch dimensions (one row per candidate price vector).
    """
    c = costs_per_kwh(case, dp)
    order = np.argsort(c, axis=-1, kind="stable")  # ties: the earlier period
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(N_PERIODS), axis=-1)
    pmax = case.p_max_kw
    full = np.floor(case.energy_kwh / pmax + 1e-12)
    rest = case.energy_kwh - full * pmax
    p = np.where(rank < full[:, None], pmax, 0.0) + np.where(rank == full[:, None], rest[:, None], 0.0)
    return np.where(case.window, p, 0.0)


def respond_start_time(case: PriolkarCase, dp: np.ndarray) -> np.ndarray:
    """The non-preemptive variant (Table 2's "starting time"): each user picks one start period.

    From its start the EV charges at ``P_max`` without a break until its
    energy is in (the last period takes the remainder). The user picks the
    start ``s`` that minimises ``sum_t DP_t p_it + epsilon (s - first_i)``
    (Eq. 12 with the start delay as H2, Eq. 11); ties go to the earlier start.
    Exact by enumeration over the at most 24 starts, vectorised over ``dp``'s
    leading dimensions.
    """
    dp = np.asarray(dp, dtype=float)
    pmax, eps = case.p_max_kw, case.params.wait_value_usd_per_h
    out = np.zeros((*dp.shape[:-1], case.n_evs, N_PERIODS))
    for i in range(case.n_evs):
        n_full = int(np.floor(case.energy_kwh[i] / pmax + 1e-12))
        rest = case.energy_kwh[i] - n_full * pmax
        profile = np.array([pmax] * n_full + ([rest] if rest > 1e-9 else []))
        starts = np.arange(case.first[i], case.last[i] - len(profile) + 1)
        cost = np.stack([(dp[..., s:s + len(profile)] * profile).sum(axis=-1) + eps * (s - case.first[i])
                         for s in starts], axis=-1)
        best = starts[np.argmin(cost, axis=-1)]  # first minimum: the earlier start
        for k, energy in enumerate(profile):
            np.put_along_axis(out[..., i, :], (best + k)[..., None], energy, axis=-1)
    return out


def asap_schedule(case: PriolkarCase) -> np.ndarray:
    """Uncontrolled charging: full power from the first whole period after arrival until done."""
    t = np.arange(N_PERIODS)
    done_before = (t[None, :] - case.first[:, None]) * case.p_max_kw
    p = np.clip(case.energy_kwh[:, None] - done_before, 0.0, case.p_max_kw)
    return np.where(case.window, p, 0.0)


def station_loads(case: PriolkarCase, p: np.ndarray) -> np.ndarray:
    """``load[..., k, t]``: the power station ``k`` draws (kW)."""
    onehot = np.eye(case.params.n_stations)[case.station]  # (N, K)
    return np.einsum("...it,ik->...kt", p, onehot)


@dataclass(frozen=True)
class Outcome:
    """The aggregator's view of one schedule: the three objectives and the grid metrics."""

    dr_benefit_usd: float  # F1, Eq. 6: sum_t (DP_t - BP_t) L_t
    grid_stress_kw2: float  # F2, Eq. 7 as intended: population variance of the hourly load
    mean_wait_h: float  # F3 / N, Eq. 8 in its linear form
    peak_kw: float
    min_kw: float
    load_factor: float  # mean / peak
    user_cost_usd: float  # sum_i H1_i at the DR price
    wait_h: np.ndarray  # per EV
    load_kw: np.ndarray  # per period, EV + base


def wait_hours(case: PriolkarCase, p: np.ndarray) -> np.ndarray:
    """Per-EV wait (h): energy-weighted start time of charging minus that of charging at once."""
    centre = (p * np.arange(N_PERIODS)).sum(axis=-1) / case.energy_kwh
    return centre - asap_centre_h(case)


def asap_centre_h(case: PriolkarCase) -> np.ndarray:
    """Per EV, the energy-weighted mean period of uncontrolled charging (the zero of its wait)."""
    return (asap_schedule(case) * np.arange(N_PERIODS)).sum(axis=-1) / case.energy_kwh


def outcome(case: PriolkarCase, dp: np.ndarray, p: np.ndarray) -> Outcome:
    """The objectives and metrics of schedule ``p`` (N x T) at DR prices ``dp``."""
    ev = p.sum(axis=0)
    load = ev + case.base_kw
    wait = wait_hours(case, p)
    return Outcome(
        dr_benefit_usd=float(((dp - case.bp) * ev).sum()),
        grid_stress_kw2=float(load.var()),
        mean_wait_h=float(wait.mean()),
        peak_kw=float(load.max()),
        min_kw=float(load.min()),
        load_factor=float(load.mean() / load.max()),
        user_cost_usd=float((dp * ev).sum()),
        wait_h=wait,
        load_kw=load,
    )


def respond_lp(case: PriolkarCase, dp: np.ndarray, caps_kw: np.ndarray | None = None,
               priorities: np.ndarray | None = None) -> np.ndarray:
    """The coupled lower-level LP: ``min sum_i w_i H3_i`` with the station limits (Eq. 13), by HiGHS.

    Without binding limits it has the users' own optima (:func:`respond`) as
    a solution; the tests use it to check that the knapsack is exact.
    """
    import highspy

    n, T = case.n_evs, N_PERIODS
    c = costs_per_kwh(case, dp)
    w = np.ones(n) if priorities is None else np.asarray(priorities, dtype=float)
    window = case.window
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    idx = -np.ones((n, T), dtype=int)
    cols = np.argwhere(window)
    for j, (i, t) in enumerate(cols):
        idx[i, t] = j
    h.addVars(len(cols), np.zeros(len(cols)), np.full(len(cols), case.p_max_kw))
    h.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32),
                     np.array([w[i] * c[i, t] for i, t in cols]))
    for i in range(n):
        js = idx[i][idx[i] >= 0]
        h.addRow(case.energy_kwh[i], case.energy_kwh[i], len(js), js.astype(np.int32), np.ones(len(js)))
    if caps_kw is not None:
        for k in range(case.params.n_stations):
            for t in range(T):
                js = idx[case.station == k, t]
                js = js[js >= 0]
                if len(js):
                    h.addRow(-np.inf, float(caps_kw[k]), len(js), js.astype(np.int32), np.ones(len(js)))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"lower-level LP: {h.modelStatusToString(h.getModelStatus())}")
    x = np.asarray(h.getSolution().col_value)
    p = np.zeros((n, T))
    p[cols[:, 0], cols[:, 1]] = x
    return p
