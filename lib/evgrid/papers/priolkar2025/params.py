"""The ``priolkar2025`` section of ``params.yaml``, validated: notebook 03 and its sweeps.

Priolkar & Kunkolienkar (2025), "Optimal Planning of EV Charging Stations
Using Bilevel Optimization Model". Table 3 gives the fleet and prices,
Table 1 the aggregator's bounds, Table 6 EHO's parameters; what the paper
leaves open (departures, the hourly price shape, ε, the normalisation of F4)
is a field here with the reading chosen, and the notebook says why.
Registered by name in :data:`SECTIONS` (found by :func:`evgrid.core.config.section_model`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from evgrid.algorithms.eho import EHOOptions
from evgrid.core.config import Section, SolverOptions

__all__ = ["Priolkar2025Params", "SECTIONS"]

Pair = tuple[float, float]


class Priolkar2025Params(Section):
    """Section ``priolkar2025``: the station-planning bilevel model, EHO and the exact optimum."""

    seed: int = Field(2025, ge=0, le=2**32 - 1, description="Seed of the instance draw (EVs, stations)")
    n_evs: int = Field(50, ge=1, le=10_000, description="EVs (Table 3: 50)")
    n_stations: int = Field(10, ge=1, le=1_000, description="Charging stations (Sec. IV-A: 10)")
    arrival_h: Pair = Field((8.0, 19.0), description="Arrival clock hours, uniform (Table 3: 8-19 h)")
    energy_kwh: Pair = Field((10.0, 50.0), description="Energy to charge per EV, uniform (Table 3, kWh)")
    charger_kw: float = Field(7.0, gt=0, le=1_000, description="Charging power limit per EV (Table 3, kW)")
    station_cap_kw: Pair = Field(
        (50.0, 150.0), description="Bounds of the aggregator's per-station power limit C_k (Table 1, kW)"
    )
    base_price_usd_per_kwh: Pair = Field(
        (0.12, 0.17), description="Band of the hourly base price BP (Table 3, $/kWh)"
    )
    price_shape_year: int = Field(
        2019, ge=2015, le=2024,
        description="Year whose mean NL day-ahead price per clock hour gives BP's shape (mapped onto the band)",
    )
    dr_price_factor: Pair = Field(
        (0.8, 2.0), description="Bounds of the DR price as a multiple of BP (Table 1)"
    )
    priority: Pair = Field((0.1, 1.0), description="Bounds of the per-EV priority weights (Table 1)")
    departure: Literal["acn", "overnight"] = Field(
        "acn",
        description="Departures (the paper gives none): dwell sampled from real ACN sessions with the "
        "same arrival hour, or everyone leaves at the end of the horizon",
    )
    station_assignment: Literal["balanced", "uniform"] = Field(
        "balanced",
        description="EVs to stations (the paper does not say): n_evs / n_stations each in random order, "
        "or each EV at a uniformly drawn station",
    )
    acn_site: Literal["caltech", "jpl"] = Field("caltech", description="ACN site of the dwell times")
    acn_period: str = Field("2019-05-01 2019-08-31", description="ACN period of the dwell times")
    horizon_start_h: int = Field(
        8, ge=0, le=23, description="Clock hour of the first of the 24 hourly periods (08:00 to 08:00)"
    )
    weights: tuple[float, float, float] = Field(
        (0.6, 0.3, 0.1), description="alpha_1 : alpha_2 : alpha_3 of F4, Eq. 9 (DR benefit, grid stress, wait)"
    )
    allow_unnormalised_weights: bool = Field(
        False, description="Accept weights that do not sum to 1 (two rows of Table 9 are printed so)"
    )
    wait_value_usd_per_h: float = Field(
        0.175, ge=0, le=100,
        description="epsilon of Eq. 12 (delta = 1): what an hour of waiting costs a user ($/h); "
        "calibrated so that EHO's optimised mean wait is Table 4's 1.275 h (calibrate.py)",
    )
    lower_level: Literal["lp", "start_time"] = Field(
        "lp",
        description="Users' problem: the LP (power in any hours of the window, the wait as the "
        "energy-weighted delay) or Table 2's start time (one uninterrupted block at full power)",
    )
    base_load: Literal["none", "bdew_h0"] = Field(
        "none", description="Non-EV load under the stations: none (EV only) or BDEW H0 household shape"
    )
    base_peak_kw: float = Field(250.0, ge=0, le=100_000, description="Peak of the base load if any (kW)")
    eho: EHOOptions = Field(EHOOptions(), description="EHO's parameters (Table 6)")
    n_runs: int = Field(30, ge=1, le=10_000, description="Independent seeded runs per setting")
    solver: SolverOptions = Field(SolverOptions(mip_gap=1e-4), description="How to solve the exact MILP")
    results_dir: str = Field("results/priolkar2025", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")

    @field_validator(
        "arrival_h", "energy_kwh", "station_cap_kw", "base_price_usd_per_kwh", "dr_price_factor",
        "priority",
    )
    @classmethod
    def _ordered_positive(cls, value: Pair, info) -> Pair:
        lo, hi = value
        if not 0 <= lo <= hi:
            raise ValueError(f"{info.field_name} = {list(value)}: need 0 <= low <= high")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Priolkar2025Params:
        if not self.allow_unnormalised_weights and abs(sum(self.weights) - 1) > 1e-9:
            raise ValueError(
                f"weights = {list(self.weights)} sum to {sum(self.weights):g}, not 1 (Sec. IV-B.VIII); "
                "normalise them, or set allow_unnormalised_weights to run them as printed"
            )
        if min(self.weights) < 0:
            raise ValueError(f"weights = {list(self.weights)}: each must be >= 0")
        if self.arrival_h[1] > 24 or self.arrival_h[0] < self.horizon_start_h:
            raise ValueError(
                f"arrival_h = {list(self.arrival_h)}: clock hours from horizon_start_h = "
                f"{self.horizon_start_h} to 24 (arrivals fall on the horizon's first day)"
            )
        hours_needed = self.energy_kwh[1] / self.charger_kw
        if hours_needed > 24:
            raise ValueError(
                f"energy_kwh up to {self.energy_kwh[1]} kWh needs {hours_needed:.1f} h at charger_kw = "
                f"{self.charger_kw} kW, more than the 24 h horizon"
            )
        return self


#: This paper's params.yaml sections (:func:`evgrid.core.config.section_model` finds them here).
SECTIONS = {"priolkar2025": Priolkar2025Params}
