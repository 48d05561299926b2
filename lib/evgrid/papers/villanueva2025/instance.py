"""One EV aggregator's decentralized model data (Villanueva-Machado et al. 2025, Sec. 2.3).

A :class:`DevcmInstance` holds everything the per-bus MILP of Eqs. (5)-(42) needs, as numpy
arrays, in the units the model uses (kW, kWh, MW, local currency per kWh). It is made either
from the authors' own run inputs (:func:`evgrid.papers.villanueva2025.authors.load_run`) or
from this compendium's Monte Carlo; :meth:`DevcmInstance.validate` checks it before a model is
built and names the field, element and allowed range of anything wrong.

Index order: ``n`` real-time scenario (the paper's set N, 10 re-draws of the trip times),
``v`` representative vehicle, ``t`` half-hour period 1..48 (stored 0-based), ``b`` price step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DevcmInstance", "InstanceError"]


class InstanceError(ValueError):
    """A DEVCM instance is inconsistent or cannot be feasible; the message says which field and why."""


@dataclass(frozen=True, eq=False)
class DevcmInstance:
    """Data of one aggregator (load bus ``bus``) for one Monte Carlo sample.

    Attributes
    ----------
    name : str
        Run id, e.g. ``"Sc1_min_bus02"``.
    bus : int
        IEEE 14-bus number of the aggregator (its load bus k).
    weight_evs : (V,) float
        EVs each representative vehicle stands for (the authors' ``EVCh``, 7 or 13).
    plugged : (N, V, T) bool
        CS_{k,t,v,n} of Eqs. (1)-(2): plugged in at this bus in period t of scenario n.
    on_road : (N, V, T) bool
        X_{t,v,n}: driving in period t.
    road_kwh : (N, V, T) float
        R_{t,v,n}: battery-side energy the trip takes in period t (kWh; already includes 1/eta_dsg).
    arrival : (N, V, T) bool
        First plugged-in period after arriving at this bus (the authors' ``arrev``).
    departure : (N, V, T) bool
        Last plugged-in period before leaving this bus (the authors' ``depev``).
    soc_init_kwh : (N, V) float
        SoC^init_{n,v} of Eq. (20) (kWh, one vehicle).
    battery_cost_usd_per_kwh : (V,) float
        C_v^ES of Eq. (9) ($/kWh; the paper prints "MWh", a misprint).
    degradation_slope : (V,) float
        m_v of Eq. (9) (divided by 100 inside the equation).
    pi : (N,) float
        Probability of each real-time scenario (pi_n = 1/N).
    psys_mw : (T,) float
        P_t^Sys: the system load the aggregator's trades are added to (MW), Eqs. (27)-(30).
    cap_mw : (T,) float
        Right-hand side of the capacity constraint: P^SYScap (Eqs. 29-30) or the DNO's cap
        P^EM_cap,k,t (Eqs. 56-57), MW.
    cap_includes_system_load : bool
        True for Eqs. (29)-(30) (P^EM + P^Sys <= cap), False for the capped Eqs. (56)-(57)
        (P^EM <= cap).
    price_per_kwh : (B,) float
        lambda_b of the price-quantity steps (local currency per kWh; step 1 is 0).
    step_lower_mw, step_upper_mw : (B,) float
        System-load range of each step (MW): step b holds loads in [lower_b, upper_b].
    currency_per_usd : float
        The authors' ``dolarconv`` (4.08): market cost in US$ = local cost / currency_per_usd.
    dt_h : float
        Period length (0.5 h).
    """

    name: str
    bus: int
    weight_evs: np.ndarray
    plugged: np.ndarray
    on_road: np.ndarray
    road_kwh: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    soc_init_kwh: np.ndarray
    battery_cost_usd_per_kwh: np.ndarray
    degradation_slope: np.ndarray
    pi: np.ndarray
    psys_mw: np.ndarray
    cap_mw: np.ndarray
    cap_includes_system_load: bool
    price_per_kwh: np.ndarray
    step_lower_mw: np.ndarray
    step_upper_mw: np.ndarray
    currency_per_usd: float = 4.08
    dt_h: float = 0.5
    meta: dict = field(default_factory=dict)

    @property
    def n_scenarios(self) -> int:
        return int(self.plugged.shape[0])

    @property
    def n_vehicles(self) -> int:
        return int(self.plugged.shape[1])

    @property
    def n_periods(self) -> int:
        return int(self.plugged.shape[2])

    @property
    def degradation_usd_per_kwh(self) -> np.ndarray:
        """Cost of one kWh of discharge depth per vehicle, m_v/100 * C_v^ES of Eq. (9) ($/kWh)."""
        return self.degradation_slope / 100.0 * self.battery_cost_usd_per_kwh

    def validate(self) -> DevcmInstance:
        """Check shapes, ranges and orders; raise :class:`InstanceError` naming what is wrong."""
        n, v, t = self.plugged.shape if self.plugged.ndim == 3 else (0, 0, 0)
        if self.plugged.ndim != 3:
            raise InstanceError(f"{self.name}: plugged must have shape (N, V, T), got {self.plugged.shape}")
        if n == 0:
            raise InstanceError(f"{self.name}: the scenario count N is 0; the model needs at least one "
                                "real-time scenario (the paper uses 10)")
        if v == 0:
            raise InstanceError(f"{self.name}: bus {self.bus} has no vehicles; nothing to schedule")
        for key in ("on_road", "road_kwh", "arrival", "departure"):
            if getattr(self, key).shape != (n, v, t):
                raise InstanceError(f"{self.name}: {key} has shape {getattr(self, key).shape}, "
                                    f"expected (N, V, T) = {(n, v, t)}")
        for key in ("weight_evs", "battery_cost_usd_per_kwh", "degradation_slope"):
            if getattr(self, key).shape != (v,):
                raise InstanceError(f"{self.name}: {key} has shape {getattr(self, key).shape}, expected ({v},)")
        if self.soc_init_kwh.shape != (n, v):
            raise InstanceError(f"{self.name}: soc_init_kwh has shape {self.soc_init_kwh.shape}, expected {(n, v)}")
        for key in ("psys_mw", "cap_mw"):
            if getattr(self, key).shape != (t,):
                raise InstanceError(f"{self.name}: {key} has shape {getattr(self, key).shape}, expected ({t},)")
        if self.pi.shape != (n,) or np.any(self.pi <= 0) or abs(float(self.pi.sum()) - 1.0) > 1e-9:
            raise InstanceError(f"{self.name}: pi must be N = {n} positive probabilities summing to 1, "
                                f"got {np.round(self.pi, 6).tolist()}")
        bad = np.flatnonzero(~(self.weight_evs > 0))
        if bad.size:
            raise InstanceError(f"{self.name}: weight_evs of vehicle {int(bad[0]) + 1} is "
                                f"{self.weight_evs[bad[0]]}; allowed > 0")
        if np.any(self.road_kwh < 0):
            i = np.argwhere(self.road_kwh < 0)[0]
            raise InstanceError(f"{self.name}: road_kwh is negative for n={i[0] + 1}, v={i[1] + 1}, t={i[2] + 1}")
        driving_unflagged = (self.road_kwh > 0) & ~self.on_road
        if np.any(driving_unflagged):
            i = np.argwhere(driving_unflagged)[0]
            raise InstanceError(f"{self.name}: vehicle {i[1] + 1} needs {self.road_kwh[tuple(i)]:.3f} kWh of road "
                                f"energy in period t={i[2] + 1} of scenario n={i[0] + 1} but is not on the road (X = 0)")
        lam, lo, hi = self.price_per_kwh, self.step_lower_mw, self.step_upper_mw
        if not (lam.shape == lo.shape == hi.shape) or lam.ndim != 1 or lam.size < 1:
            raise InstanceError(f"{self.name}: price_per_kwh, step_lower_mw and step_upper_mw must be "
                                "1-d arrays of the same length")
        if np.any(lam < 0):
            raise InstanceError(f"{self.name}: a step price is negative ({lam.min()}); allowed >= 0")
        steps = np.diff(lam)
        if np.any(steps <= 0):
            b = int(np.flatnonzero(steps <= 0)[0]) + 2
            raise InstanceError(f"{self.name}: price steps must increase: lambda_{b} = {lam[b - 1]:.6g} is not "
                                f"above lambda_{b - 1} = {lam[b - 2]:.6g}")
        if np.any(hi[1:] <= hi[:-1]) or np.any(np.abs(lo[2:] - hi[1:-1]) > 1e-9):
            raise InstanceError(f"{self.name}: step breakpoints must increase and each step must start where "
                                "the previous one ends (step_lower_mw[b] = step_upper_mw[b-1])")
        if self.dt_h <= 0 or self.currency_per_usd <= 0:
            raise InstanceError(f"{self.name}: dt_h = {self.dt_h} and currency_per_usd = {self.currency_per_usd} "
                                "must be > 0")
        return self
