"""The ``kerama2025`` and ``kerama2025_sweeps`` sections of ``params.yaml``, validated.

:class:`Kerama2025Params` is notebook 01's section; :class:`Kerama2025SweepsParams`
lists the points of Tables 3-6, each a set of overrides of it. Both are
registered by name in :data:`SECTIONS` (found by :func:`evgrid.core.config.section_model`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evgrid.core.config import FleetOptions, Section, SolverOptions, VoltageLimits

__all__ = ["Kerama2025Params", "Kerama2025SweepsParams", "SweepPoint"]


class Kerama2025Params(VoltageLimits):
    """Section ``kerama2025``: notebook 01, the bi-level DSO/aggregator model of Kerama (2025).

    The voltage limits ``vmin_pu`` / ``vmax_pu`` (Eq. 6) come from
    :class:`~evgrid.core.config.VoltageLimits`.
    """

    n_aggregators: int = Field(5, ge=1, le=32, description="Aggregators (paper: 5)")
    aggregator_buses: list[int] = Field(
        [6, 13, 18, 25, 30], description="Bus of each aggregator, Baran & Wu numbers 2-33"
    )
    fleet: FleetOptions = Field(
        FleetOptions(n_evs=40, battery_kwh=60.0, charger_kw=7.2),
        description="EVs per aggregator and their battery (paper: 40 x 60 kWh, 7.2 kW)",
    )
    soc_init_min: float = Field(0.25, ge=0, le=1, description="Lowest state of charge on arrival")
    soc_init_max: float = Field(0.5, ge=0, le=1, description="Highest state of charge on arrival")
    soc_required: float = Field(0.8, ge=0, le=1, description="State of charge required at departure")
    arrival_hour_mean: float = Field(18.0, ge=12, le=23, description="Mean arrival (clock hour)")
    arrival_hour_sd: float = Field(1.5, ge=0, le=6, description="Std. dev. of arrival (h)")
    departure_hour_mean: float = Field(7.5, ge=0, le=11, description="Mean departure next day (h)")
    departure_hour_sd: float = Field(1.0, ge=0, le=6, description="Std. dev. of departure (h)")
    price_offpeak: float = Field(0.10, ge=0, le=5, description="Off-peak price ($/kWh)")
    price_midpeak: float = Field(0.18, ge=0, le=5, description="Mid-peak price ($/kWh)")
    price_peak: float = Field(0.30, ge=0, le=5, description="Peak price ($/kWh)")
    price_peak_swing: float = Field(
        0.0, ge=0, le=5, description="Peak hours alternate price_peak -/+ this ($/kWh; volatile case)"
    )
    n_scenarios: int = Field(10, ge=1, le=100, description="Monte-Carlo scenarios (paper: 10)")
    seed: int = Field(2025, ge=0, description="Seed of the scenario generator")
    pv_buses: list[int] = Field([18, 33], description="Buses with PV, Baran & Wu numbers 2-33")
    pv_kw_per_bus: float = Field(750.0, ge=0, le=10_000, description="PV rating per PV bus (kW)")
    gamma_pv: float = Field(0.2, ge=0, le=1, description="Robust budget on PV output (paper: 0.2)")
    gamma_load: float = Field(0.05, ge=0, le=1, description="Robust budget on base load")
    degradation_usd_per_kwh: float = Field(
        0.05, ge=0, le=5, description="Battery degradation cost per kWh throughput (paper: 0.05)"
    )
    peak_penalty_usd_per_kw: float = Field(
        0.5, ge=0, le=100, description="alpha, penalty on each scenario's peak import ($/kW)"
    )
    v_source_pu: float = Field(
        1.05, ge=0.9, le=1.1, description="Substation voltage, held by its tap changer (pu)"
    )
    losses: Literal["none", "pwl_convex", "pwl_binary"] = Field(
        "pwl_convex", description="DistFlow losses approximation"
    )
    n_segments: int = Field(8, ge=1, le=64, description="Segments of the losses approximation")
    dual_bound_usd_per_kwh: float = Field(
        2.0, gt=0, le=1_000, description="w, bound on the aggregators' duals (see evgrid.formulations.bilevel)"
    )
    reformulation: Literal["strong_duality", "kkt"] = Field(
        "strong_duality", description="How the aggregators' optimality enters the MILP"
    )
    cap_bits: int = Field(
        5, ge=0, le=12, description="Caps on a grid of 2^bits levels (0: continuous, KKT only)"
    )
    cap_hours: list[int] | None = Field(
        None,
        description="Clock hours (0-23) in which the DSO may cap imports; none given: every hour",
    )
    solver: SolverOptions = Field(
        SolverOptions(time_limit_s=300, mip_gap=0.005), description="How to solve the MILP"
    )
    results_dir: str = Field("results/kerama2025", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")

    @model_validator(mode="after")
    def _consistent(self) -> Kerama2025Params:
        if len(self.aggregator_buses) != self.n_aggregators:
            raise ValueError(
                f"aggregator_buses has {len(self.aggregator_buses)} buses for "
                f"n_aggregators={self.n_aggregators}; give one bus per aggregator"
            )
        if len(set(self.aggregator_buses)) != len(self.aggregator_buses):
            raise ValueError(f"aggregator_buses {self.aggregator_buses} must be distinct")
        for field_name in ("aggregator_buses", "pv_buses"):
            bad = [b for b in getattr(self, field_name) if not 2 <= b <= 33]
            if bad:
                raise ValueError(f"{field_name} {bad} outside the 33-bus feeder's buses 2-33")
        if self.soc_init_min > self.soc_init_max:
            raise ValueError(
                f"soc_init_min ({self.soc_init_min}) must not exceed soc_init_max ({self.soc_init_max})"
            )
        if not (self.fleet.soc_min <= self.soc_init_min and self.soc_required <= self.fleet.soc_max):
            raise ValueError(
                "arrival and required states of charge must lie within the fleet's "
                f"[soc_min, soc_max] = [{self.fleet.soc_min}, {self.fleet.soc_max}]"
            )
        if self.price_peak_swing > self.price_peak:
            raise ValueError(
                f"price_peak_swing ({self.price_peak_swing}) must not exceed price_peak "
                f"({self.price_peak}): peak prices would turn negative"
            )
        if self.reformulation == "strong_duality" and self.cap_bits == 0:
            raise ValueError("cap_bits must be >= 1 with reformulation='strong_duality'")
        if self.cap_hours is not None:
            bad = sorted({h for h in self.cap_hours if not 0 <= h <= 23})
            if bad:
                raise ValueError(f"cap_hours {bad} are not clock hours 0-23")
            if not self.cap_hours or len(set(self.cap_hours)) != len(self.cap_hours):
                raise ValueError(
                    f"cap_hours {self.cap_hours} must name at least one hour, each once "
                    "(leave it out to let the DSO cap every hour)"
                )
        return self


class SweepPoint(BaseModel):
    """One point of a sensitivity sweep: a row label and the overrides of ``kerama2025``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    label: str = Field(..., min_length=1, description="Row label, as in the paper's table")


class Kerama2025SweepsParams(Section):
    """Section ``kerama2025_sweeps``: Kerama's Tables 3-6, each a list of overrides.

    Every point is the ``kerama2025`` section with the point's fields
    replaced (``fleet`` is merged field by field) and validated as a whole
    before anything is built.
    """

    budget: list[SweepPoint] = Field(..., min_length=1, description="Table 3: uncertainty budget")
    degradation: list[SweepPoint] = Field(..., min_length=1, description="Table 4: kappa")
    price: list[SweepPoint] = Field(..., min_length=1, description="Table 5: price scenario")
    fleet: list[SweepPoint] = Field(..., min_length=1, description="Table 6: EVs per aggregator")
    results_dir: str = Field("results/kerama2025/sweeps", description="Where the tables go")


#: This paper's params.yaml sections (:func:`evgrid.core.config.section_model` finds them here).
SECTIONS = {"kerama2025": Kerama2025Params, "kerama2025_sweeps": Kerama2025SweepsParams}
