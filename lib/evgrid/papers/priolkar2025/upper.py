"""Priolkar & Kunkolienkar (2025): the aggregator's objective F4 and EHO's fitness.

F4 = alpha_1 F1/F1_ref - alpha_2 F2/F2_ref - alpha_3 F3/(1 h) (Eq. 9). The paper
says "normalization factors applied" and gives none; here (our reading):

* ``F1_ref = sum_t BP_t L_t`` of uncontrolled charging, the DR benefit that
  load would give at the top price 2 BP;
* ``F2_ref`` = the variance of the uncontrolled load;
* F3 is the mean wait in hours, divided by 1 h (uncontrolled charging waits 0).

An elephant (Table 1) holds the 24 DR-price factors ``DP_t / BP_t``, the 10
station limits ``C_k`` (kW) and the 50 priority weights: 84 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evgrid.papers.priolkar2025.case import N_PERIODS, PriolkarCase
from evgrid.papers.priolkar2025.lower import (
    Outcome,
    asap_schedule,
    outcome,
    respond,
    respond_lp,
    respond_start_time,
    station_loads,
    wait_hours,
)

__all__ = ["Normalisation", "Fitness", "decode", "f4", "normalisation", "search_box"]


@dataclass(frozen=True)
class Normalisation:
    """The scales of F1 ($), F2 (kW^2) and F3 (h) in F4."""

    f1_usd: float
    f2_kw2: float
    f3_h: float = 1.0


def normalisation(case: PriolkarCase) -> Normalisation:
    """F4's scales from uncontrolled charging (see the module docstring)."""
    asap = asap_schedule(case)
    return Normalisation(f1_usd=float((case.bp * asap.sum(axis=0)).sum()),
                         f2_kw2=outcome(case, case.bp, asap).grid_stress_kw2)


def f4(out: Outcome, norm: Normalisation, weights) -> float:
    """Eq. 9 with the normalisation: the aggregator's fitness (to maximise)."""
    a1, a2, a3 = weights
    return (a1 * out.dr_benefit_usd / norm.f1_usd - a2 * out.grid_stress_kw2 / norm.f2_kw2
            - a3 * out.mean_wait_h / norm.f3_h)


def search_box(case: PriolkarCase) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of an elephant: DP factors, station limits (kW), priorities (Table 1)."""
    p = case.params
    lo = np.concatenate([np.full(N_PERIODS, p.dr_price_factor[0]), np.full(p.n_stations, p.station_cap_kw[0]),
                         np.full(case.n_evs, p.priority[0])])
    hi = np.concatenate([np.full(N_PERIODS, p.dr_price_factor[1]), np.full(p.n_stations, p.station_cap_kw[1]),
                         np.full(case.n_evs, p.priority[1])])
    return lo, hi


def decode(case: PriolkarCase, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dp, caps_kw, priorities)`` of elephants ``x[..., :]``; ``dp`` in $/kWh."""
    k = case.params.n_stations
    dp = x[..., :N_PERIODS] * case.bp
    return dp, x[..., N_PERIODS:N_PERIODS + k], x[..., N_PERIODS + k:]


class Fitness:
    """``-F4`` of a population of elephants, each with its lower level solved exactly.

    The users' knapsack (:func:`respond`; :func:`respond_start_time` with
    ``lower_level="start_time"``) is exact unless a station limit binds; such an elephant is re-solved as the coupled LP with its limits and
    priorities (:func:`respond_lp`). ``evaluations`` and ``lp_fallbacks`` count.
    """

    def __init__(self, case: PriolkarCase, weights=None):
        self.case = case
        self.norm = normalisation(case)
        self.weights = case.params.weights if weights is None else weights
        self.evaluations = 0
        self.lp_fallbacks = 0

    def schedules(self, x: np.ndarray) -> np.ndarray:
        dp, caps, prio = decode(self.case, x)
        if self.case.params.lower_level == "start_time":
            p = respond_start_time(self.case, dp)
            if (station_loads(self.case, p) > caps[..., :, None] + 1e-9).any():
                raise NotImplementedError(
                    "a station limit binds under the start-time variant; its coupled model is not "
                    "built (use station_assignment='balanced', where the limits cannot bind)")
            return p
        p = respond(self.case, dp)
        over = (station_loads(self.case, p) > caps[..., :, None] + 1e-9).any(axis=(-1, -2))
        for j in np.flatnonzero(np.atleast_1d(over)):
            p[j] = respond_lp(self.case, dp[j], caps[j], prio[j])
            self.lp_fallbacks += 1
        return p

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        self.evaluations += len(x)
        case, (a1, a2, a3) = self.case, self.weights
        dp, _caps, _prio = decode(case, x)
        p = self.schedules(x)
        ev = p.sum(axis=-2)
        load = ev + case.base_kw
        f1 = ((dp - case.bp) * ev).sum(axis=-1)
        f2 = load.var(axis=-1)
        f3 = wait_hours(case, p).mean(axis=-1)
        value = a1 * f1 / self.norm.f1_usd - a2 * f2 / self.norm.f2_kw2 - a3 * f3 / self.norm.f3_h
        return -value
