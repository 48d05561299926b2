"""The ``eva2025`` section of ``params.yaml``, validated: notebook 02 and the month runs.

Registered by name in :data:`SECTIONS` (found by :func:`evgrid.core.config.section_model`).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from evgrid.core.config import BatteryOptions, SolverOptions

__all__ = ["Eva2025Params"]


class Eva2025Params(BatteryOptions):
    """Section ``eva2025``: notebook 02, EV-aggregator market scheduling on real data.

    Every EV has the battery and charger of :class:`~evgrid.core.config.BatteryOptions`
    (``battery_kwh``, ``charger_kw``, the efficiencies, ``soc_min`` and ``soc_max``).
    """

    typical_day: date = Field(
        date(2024, 5, 7), description="Representative typical weekday (Amsterdam date)"
    )
    volatile_day: date = Field(
        date(2024, 12, 12), description="Representative most volatile weekday"
    )
    negative_day: date = Field(
        date(2024, 8, 21), description="Representative weekday with negative prices"
    )
    month: str = Field(
        "2024-08", pattern=r"^\d{4}-\d{2}$", description="Month of the aggregate figures (YYYY-MM)"
    )
    acn_sites: list[Literal["caltech", "jpl"]] = Field(
        ["caltech", "jpl"], min_length=1, description="ACN sites whose sessions form the fleet"
    )
    acn_year: int = Field(
        2019, ge=2019, le=2019, description="Year of the ACN sessions laid on the price days"
    )
    soc_arrival: float = Field(0.5, ge=0, le=1, description="State of charge on arrival (-)")
    buy_markup_eur_per_mwh: float = Field(
        10.0, ge=0, le=500, description="Supplier mark-up on energy bought (EUR/MWh)"
    )
    sell_fee_eur_per_mwh: float = Field(
        10.0, ge=0, le=500, description="Fee on energy sold (EUR/MWh)"
    )
    degradation_eur_per_kwh: float = Field(
        0.02, ge=0, le=1, description="Battery wear per kWh charged or discharged (EUR/kWh)"
    )
    owner_tariff_eur_per_kwh: float = Field(
        0.30, ge=0, le=2, description="What EV owners pay per kWh received (EUR/kWh)"
    )
    site_peak_kw: float = Field(
        150.0, ge=0, le=100_000, description="Peak of the non-EV site load, BDEW G1 shape (kW)"
    )
    grid_limit_kw: float = Field(
        350.0, gt=0, le=100_000, description="Transformer limit on net import and export (kW)"
    )
    dr_shift_fraction: float = Field(
        0.2, ge=0, le=1, description="Share of each hour's site load that DR may move (-)"
    )
    dr_cost_eur_per_mwh: float = Field(
        5.0, ge=0, le=1_000, description="Cost of each MWh of site load moved (EUR/MWh)"
    )
    forecast: Literal["previous_week", "previous_day"] = Field(
        "previous_week", description="Naive price forecast of the day-ahead plan"
    )
    on_unreachable: Literal["raise", "cap"] = Field(
        "cap", description="A session needing more than its window allows: raise, or cap and list"
    )
    solver: SolverOptions = Field(SolverOptions(mip_gap=1e-4), description="How to solve")
    results_dir: str = Field("results/eva2025", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")

    @model_validator(mode="after")
    def _consistent(self) -> Eva2025Params:
        # The NL day-ahead price file (ev2gym 2.0.0, evgrid.data.market) holds every
        # month from 2015-01 to 2024-12 (2025 only to 7 January);
        # tests/test_market_data.py checks these bounds against the file.
        price_first, price_last = "2015-01", "2024-12"
        if not self.soc_min <= self.soc_arrival <= self.soc_max:
            raise ValueError(
                f"soc_arrival ({self.soc_arrival}) must lie within [soc_min, soc_max] = "
                f"[{self.soc_min}, {self.soc_max}]"
            )
        # The ACN sessions cover May-December 2019; 2019 and 2024 share their
        # weekdays from 1 March, so a price day must be a March-December date.
        for name in ("typical_day", "volatile_day", "negative_day"):
            d = getattr(self, name)
            # whole Amsterdam days: 2015-01-01 00:00 and 2024-12-31 00:00 are not in the file
            if not date(2015, 1, 2) <= d <= date(2024, 12, 30):
                raise ValueError(
                    f"{name} = {d}: outside the price data; allowed are days from 2015-01-02 to "
                    "2024-12-30 (whole Amsterdam days of the NL day-ahead prices)"
                )
            if not (5 <= d.month <= 12) or d.replace(year=self.acn_year).isoweekday() != d.isoweekday():
                raise ValueError(
                    f"{name} = {d}: allowed are May-December days whose date falls on the same "
                    f"weekday in {self.acn_year} (the ACN sessions laid on it)"
                )
        year, month = (int(x) for x in self.month.split("-"))
        if not 1 <= month <= 12:
            raise ValueError(f"month = {self.month!r}: allowed is YYYY-MM with MM from 01 to 12")
        if not price_first <= self.month <= price_last:
            raise ValueError(
                f"month = {self.month}: outside the price data; allowed are months from "
                f"{price_first} to {price_last} (the NL day-ahead prices shipped with ev2gym)"
            )
        first = date(year, month, 1)
        if not (5 <= month <= 12) or first.replace(year=self.acn_year).isoweekday() != first.isoweekday():
            raise ValueError(
                f"month = {self.month}: allowed are May-December months whose dates fall on the "
                f"same weekdays in {self.acn_year}"
            )
        return self


#: This paper's params.yaml sections (:func:`evgrid.core.config.section_model` finds them here).
SECTIONS = {"eva2025": Eva2025Params}
