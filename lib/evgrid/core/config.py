"""Validated notebook parameters: one pydantic model per ``params.yaml`` section.

Every notebook's parameters come from one section of ``params.yaml``. The
runner (:mod:`evgrid.core.run`) and the notebooks validate a section here before
anything is built, so a wrong value fails at once with the field, the value
and the allowed range::

    params.yaml [test_systems] field 'vmin_pu' = 1.1: ... (allowed: 0.8 <= x <= 1.0)

Reusable blocks (:class:`SolverOptions`, :class:`FleetOptions`) are shared by
the paper sections.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evgrid.core.paths import repo_path

NetworkName = Literal["ieee33", "ieee14", "ieee14_villanueva2025", "ieee13"]
SolverName = Literal["highs", "gurobi", "scip"]


class ConfigError(ValueError):
    """A ``params.yaml`` section (or a notebook parameter) is invalid."""


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_voltage_limits(vmin_pu: float, vmax_pu: float) -> None:
    """Raise ``ValueError`` unless ``0.8 <= vmin_pu < vmax_pu <= 1.2``, naming both values.

    The one rule on a pair of voltage limits, for the sections that take one
    (:class:`VoltageLimits`) and the network loaders alike.
    """
    allowed = "allowed 0.8 <= vmin_pu < vmax_pu <= 1.2"
    if not vmin_pu < vmax_pu:
        raise ValueError(f"vmin_pu ({vmin_pu}) must be below vmax_pu ({vmax_pu}); {allowed}")
    if not (0.8 <= vmin_pu and vmax_pu <= 1.2):
        raise ValueError(f"vmin_pu ({vmin_pu}) or vmax_pu ({vmax_pu}) is out of range; {allowed}")


class SolverOptions(_Section):
    """How to solve an optimisation model (see :func:`evgrid.core.solvers.solve`)."""

    solver: SolverName = Field("highs", description="MILP/LP solver; HiGHS needs no licence")
    time_limit_s: float | None = Field(
        None, gt=0, le=86_400, description="Wall-clock limit per solve (s); None for none"
    )
    mip_gap: float = Field(1e-4, ge=0, le=1, description="Relative MIP gap at which to stop")


class FleetOptions(_Section):
    """An EV fleet of identical vehicles."""

    n_evs: int = Field(40, ge=0, le=100_000, description="Number of EVs")
    battery_kwh: float = Field(60.0, gt=0, le=500, description="Usable battery capacity (kWh)")
    charger_kw: float = Field(7.2, gt=0, le=1_000, description="Charger power (kW)")
    charge_efficiency: float = Field(0.95, gt=0, le=1, description="Charging efficiency (-)")
    discharge_efficiency: float = Field(0.95, gt=0, le=1, description="Discharging efficiency (-)")
    soc_min: float = Field(0.2, ge=0, le=1, description="Minimum state of charge (-)")
    soc_max: float = Field(0.9, ge=0, le=1, description="Maximum state of charge (-)")

    @model_validator(mode="after")
    def _soc_bounds_ordered(self) -> FleetOptions:
        if self.soc_min >= self.soc_max:
            raise ValueError(
                f"soc_min ({self.soc_min}) must be below soc_max ({self.soc_max}); "
                "allowed 0 <= soc_min < soc_max <= 1"
            )
        return self


class TestSystemsParams(_Section):
    """Section ``test_systems``: notebook 00, the three validated test networks."""

    networks: list[NetworkName] = Field(
        ["ieee33", "ieee14", "ieee14_villanueva2025", "ieee13"],
        min_length=1,
        description="Networks to load, solve and plot",
    )
    vmin_pu: float = Field(0.95, ge=0.8, le=1.0, description="Lower voltage limit drawn (pu)")
    vmax_pu: float = Field(1.05, ge=1.0, le=1.2, description="Upper voltage limit drawn (pu)")
    ieee13_regulator: Literal["fixed", "auto"] = Field(
        "fixed", description="13-node regulator: taps fixed at the published positions, or auto"
    )
    ieee13_tolerance_pu: float = Field(
        0.002, gt=0, le=0.05, description="Allowed |V| error vs the IEEE published results (pu)"
    )
    results_dir: str = Field("results/test_systems", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")

    @model_validator(mode="after")
    def _limits_ordered(self) -> TestSystemsParams:
        if self.vmin_pu >= self.vmax_pu:
            raise ValueError(
                f"vmin_pu ({self.vmin_pu}) must be below vmax_pu ({self.vmax_pu}); "
                "allowed 0.8 <= vmin_pu < vmax_pu <= 1.2"
            )
        return self


class ReproductionReportParams(_Section):
    """Section ``reproduction_report``: notebook 99, paper vs computed for every paper."""

    paper_values_dir: str = Field(
        "data/paper_values", description="Folder of <paper>.yaml published values"
    )
    comparisons: list[str] = Field(
        [], description="Comparison CSVs written by the paper stages (repo-relative paths)"
    )
    rel_tol: float = Field(
        0.05, ge=0, le=1, description="Relative difference up to which a value 'matches'"
    )
    results_dir: str = Field("results/reproduction_report", description="Where result files go")

    @field_validator("paper_values_dir", "comparisons")
    @classmethod
    def _inputs_exist(cls, value: str | list[str]) -> str | list[str]:
        for rel in [value] if isinstance(value, str) else value:
            if not repo_path(rel).exists():
                raise ValueError(f"{rel!r} does not exist (paths are relative to the repo root)")
        return value


class Kerama2025Params(_Section):
    """Section ``kerama2025``: notebook 01, the bi-level DSO/aggregator model of Kerama (2025)."""

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
    vmin_pu: float = Field(0.95, ge=0.8, le=1.0, description="Lower voltage limit (pu)")
    vmax_pu: float = Field(1.05, ge=1.0, le=1.2, description="Upper voltage limit (pu)")
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
        if self.vmin_pu >= self.vmax_pu:
            raise ValueError(f"vmin_pu ({self.vmin_pu}) must be below vmax_pu ({self.vmax_pu})")
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


class Eva2025Params(_Section):
    """Section ``eva2025``: notebook 02, EV-aggregator market scheduling on real data."""

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
    battery_kwh: float = Field(60.0, gt=0, le=200, description="Battery of every EV (kWh)")
    charger_kw: float = Field(6.6, gt=0, le=50, description="Charger power, both ways (kW)")
    charge_efficiency: float = Field(0.95, gt=0, le=1, description="Charging efficiency (-)")
    discharge_efficiency: float = Field(0.95, gt=0, le=1, description="Discharging efficiency (-)")
    soc_arrival: float = Field(0.5, ge=0, le=1, description="State of charge on arrival (-)")
    soc_min: float = Field(0.2, ge=0, le=1, description="Lowest state of charge V2G may reach (-)")
    soc_max: float = Field(0.9, ge=0, le=1, description="Highest state of charge (-)")
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
        if not self.soc_min < self.soc_max:
            raise ValueError(
                f"soc_min = {self.soc_min}, soc_max = {self.soc_max}: the SOC band is empty; "
                "allowed is soc_min < soc_max"
            )
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


class SweepPoint(BaseModel):
    """One point of a sensitivity sweep: a row label and the overrides of ``kerama2025``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    label: str = Field(..., min_length=1, description="Row label, as in the paper's table")


class Kerama2025SweepsParams(_Section):
    """Section ``kerama2025_sweeps``: Kerama's Tables 3-6, each a list of overrides.

    Every point is the ``kerama2025`` section with the point's fields
    replaced (``fleet`` is merged field by field) and validated as a whole
    before anything is built.
    """

    budget: list[SweepPoint] = Field(..., min_length=1, description="Table 3: uncertainty budget")
    degradation: list[SweepPoint] = Field(..., min_length=1, description="Table 4: kappa")
    price: list[SweepPoint] = Field(..., min_length=1, description="Table 5: price scenario")
    fleet: list[SweepPoint] = Field(..., min_length=1, description="Table 6: EVs per aggregator")
    workers: int = Field(2, ge=1, le=64, description="Processes for the scenario LPs")
    results_dir: str = Field("results/kerama2025/sweeps", description="Where the tables go")


#: params.yaml section name -> its model.
SECTIONS: dict[str, type[_Section]] = {
    "test_systems": TestSystemsParams,
    "kerama2025": Kerama2025Params,
    "kerama2025_sweeps": Kerama2025SweepsParams,
    "eva2025": Eva2025Params,
    "reproduction_report": ReproductionReportParams,
}


def validate_section(name: str, values: dict[str, Any]) -> _Section:
    """Validate one section's values; raise :class:`ConfigError` naming field, value and range."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown params.yaml section {name!r}: known {', '.join(SECTIONS)}")
    model = SECTIONS[name]
    try:
        return model(**values)
    except ValidationError as err:
        raise ConfigError(_explain(name, model, values, err)) from None


def load_section(name: str, params_file: str | Path = "params.yaml") -> _Section:
    """Read ``params_file`` (repo-relative by default) and validate section ``name``."""
    path = Path(params_file)
    path = path if path.is_absolute() else repo_path(path)
    if not path.exists():
        raise ConfigError(f"parameter file {path} does not exist")
    try:
        all_params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(all_params, dict):
        raise ConfigError(f"{path} must map section names to sections, found {type(all_params).__name__}")
    if name not in all_params:
        raise ConfigError(f"{path.name} has no section {name!r}: it has {', '.join(all_params)}")
    values = all_params[name]
    if name in SECTIONS and isinstance(values, dict):
        missing = missing_fields(SECTIONS[name], values)
        if missing:
            raise ConfigError(
                f"{path.name} [{name}] lacks {', '.join(repr(m) for m in missing)}: every field "
                "must be written out (a missing one would silently take its default)"
            )
    return validate_section(name, values)


def missing_fields(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> list[str]:
    """Fields of ``model`` (and of its nested sections) that ``values`` does not set."""
    missing = []
    for field_name, info in model.model_fields.items():
        if field_name not in values:
            missing.append(prefix + field_name)
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, _Section) and isinstance(values[field_name], dict):
            missing += missing_fields(nested, values[field_name], f"{prefix}{field_name}.")
    return missing


def notebook_params(name: str, namespace: dict[str, Any]) -> _Section:
    """Validate section ``name`` from a notebook's globals (its injected parameters).

    Every field of the section's model is taken from ``namespace``; a field
    that the notebook does not define raises :class:`ConfigError` instead of
    silently taking its default. The notebook keeps no list of names: the
    model is the list.
    """
    if name not in SECTIONS:
        raise ConfigError(f"unknown params.yaml section {name!r}: known {', '.join(SECTIONS)}")
    fields = SECTIONS[name].model_fields
    absent = [f for f in fields if f not in namespace]
    if absent:
        raise ConfigError(
            f"section {name!r}: the notebook's parameters cell does not define "
            f"{', '.join(repr(f) for f in absent)}"
        )
    return validate_section(name, {f: namespace[f] for f in fields})


def describe(name: str) -> str:
    """A Markdown table of a section's fields, descriptions, defaults and ranges."""
    model = SECTIONS[name]
    rows = ["| field | description | default | allowed |", "|---|---|---|---|"]
    for field_name, info in model.model_fields.items():
        rows.append(
            f"| `{field_name}` | {info.description} | `{info.default!r}` | "
            f"{_allowed(model, field_name)} |"
        )
    return "\n".join(rows)


def _allowed(model: type[BaseModel], field_name: str) -> str:
    info = model.model_fields[field_name]
    bounds = {}
    for meta in info.metadata:
        for key in ("gt", "ge", "lt", "le", "min_length"):
            if getattr(meta, key, None) is not None:
                bounds[key] = getattr(meta, key)
    lower = f"{bounds['gt']} < " if "gt" in bounds else f"{bounds['ge']} <= " if "ge" in bounds else ""
    upper = f" < {bounds['lt']}" if "lt" in bounds else f" <= {bounds['le']}" if "le" in bounds else ""
    if lower or upper:
        return f"{lower}x{upper}"
    annotation = str(info.annotation)
    if "Literal" in annotation:
        return "one of " + annotation.split("Literal[", 1)[1].split("]", 1)[0]
    return f"type {getattr(info.annotation, '__name__', annotation)}"


def _explain(section: str, model: type[BaseModel], values: dict, err: ValidationError) -> str:
    lines = [f"params.yaml [{section}] is invalid:"]
    for e in err.errors():
        loc = [p for p in e["loc"] if isinstance(p, str)]
        field_name = loc[0] if loc else None
        if field_name and field_name in model.model_fields:
            value = values.get(field_name, "<missing>")
            allowed = _allowed(model, field_name)
            desc = model.model_fields[field_name].description
            lines.append(
                f"  field '{field_name}' = {value!r}: {e['msg']} (allowed: {allowed}; {desc})"
            )
        elif field_name:
            lines.append(
                f"  field '{field_name}' is not a known field: known {', '.join(model.model_fields)}"
            )
        else:
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
