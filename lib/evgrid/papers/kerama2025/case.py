"""Kerama (2025): one instance of the case study, and the schedule table every part shares.

:func:`make_instance` builds the IEEE 33-bus feeder with its load, the
time-of-use prices, the Monte-Carlo scenarios (PV cloudiness, EV arrivals and
departures) and the fleets from a validated ``kerama2025`` section; no model
is built here. A schedule (:data:`SCHEDULE_COLUMNS`) is what the models
return and what :mod:`~evgrid.papers.kerama2025.evaluate` judges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from evgrid.core.paths import repo_path
from evgrid.formulations.fleet import check_fleet
from evgrid.networks import NetworkData, load_ieee33
from evgrid.papers.kerama2025.params import Kerama2025Params

__all__ = [
    "DT_H",
    "HORIZON_START_HOUR",
    "N_PERIODS",
    "SCHEDULE_COLUMNS",
    "KeramaCase",
    "make_instance",
    "one_scenario",
    "pv_shape",
    "time_of_use_prices",
]

HORIZON_START_HOUR = 12
N_PERIODS = 24
DT_H = 1.0
LOAD_PROFILE = "data/kerama2025/load_profile_rts_winter_weekday.csv"

#: Columns of a schedule table, with units.
SCHEDULE_COLUMNS = [
    "scenario",
    "aggregator",
    "t",
    "b_imp_kw",  # import (charging) bid at the aggregator's bus
    "b_exp_kw",  # export (discharging) bid
    "throughput_kwh",  # sum over the aggregator's EVs of (p_ch + p_dis) dt
]


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
    counts = dict.fromkeys(agg_bus, params.fleet.n_evs)
    pv, fleets = {}, {}
    for s in range(params.n_scenarios):
        cloud = rng.uniform(0.6, 1.0)
        table = pd.DataFrame(0.0, index=network.buses["bus"], columns=range(N_PERIODS))
        for b in pv_buses:
            table.loc[b] = params.pv_kw_per_bus * cloud * shape
        pv[s] = table
        fleets[s] = _draw_fleet(params, rng, agg_bus, counts)
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
        b_max_kw={a: counts[a] * params.fleet.charger_kw for a in agg_bus},
    )


def _draw_fleet(params: Kerama2025Params, rng: np.random.Generator, agg_bus: dict[int, int],
                counts: dict[int, int]) -> pd.DataFrame:
    """One scenario's EVs: ``counts[a]`` at each aggregator ``a``, drawn as :func:`make_instance` says."""
    fo = params.fleet
    cap = fo.battery_kwh
    n = sum(counts.values())
    arrive_h = np.clip(np.rint(rng.normal(params.arrival_hour_mean, params.arrival_hour_sd, n)), 13, 23)
    depart_h = np.clip(np.rint(rng.normal(params.departure_hour_mean, params.departure_hour_sd, n)), 5, 11)
    soc0 = rng.uniform(params.soc_init_min, params.soc_init_max, n)
    aggregator = np.repeat(list(counts), list(counts.values()))
    number = np.concatenate([np.arange(k) for k in counts.values()]) if n else np.array([], dtype=int)
    fleet = pd.DataFrame(
        {
            "ev": [f"a{a}e{i:03d}" for a, i in zip(aggregator, number, strict=True)],
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
    check_fleet(fleet, N_PERIODS, DT_H)
    return fleet


def one_scenario(case: KeramaCase, scenario: int) -> KeramaCase:
    """``case`` reduced to one of its scenarios (fleets and PV), e.g. for one Benders subproblem."""
    return replace(
        case, fleets={scenario: case.fleets[scenario]}, pv_kw={scenario: case.pv_kw[scenario]}
    )
