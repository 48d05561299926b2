"""Validated notebook parameters: the base model, shared blocks and the section registry.

Every notebook's parameters come from one section of ``params.yaml``, each
validated by one pydantic model, a :class:`Section`. The runner
(:mod:`evgrid.core.run`) and the notebooks validate a section here before
anything is built, so a wrong value fails at once with the field, the value
and the allowed range::

    params.yaml [test_systems] field 'vmin_pu' = 1.1: ... (allowed: 0.8 <= x <= 1.0)

Each paper owns its section's model (``evgrid.papers.<paper>.params``); this
module keeps what they share: the base :class:`Section`, the blocks
:class:`SolverOptions`, :class:`BatteryOptions` / :class:`FleetOptions` and
:class:`VoltageLimits`, and the registry of sections: :data:`SECTIONS` for
the shared ones, and for a paper's the ``SECTIONS`` dict of its own
``evgrid.papers.<paper>.params``, found by the section's name
(:func:`section_model`), so that nothing here names or imports a paper.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evgrid.core.paths import repo_path

SolverName = Literal["highs", "gurobi", "scip"]


class ConfigError(ValueError):
    """A ``params.yaml`` section (or a notebook parameter) is invalid."""


class Section(BaseModel):
    """Base of every ``params.yaml`` section and shared block: unknown keys fail, values are frozen."""

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


class SolverOptions(Section):
    """How to solve an optimisation model (see :func:`evgrid.core.solvers.solve`)."""

    solver: SolverName = Field("highs", description="MILP/LP solver; HiGHS needs no licence")
    time_limit_s: float | None = Field(
        None, gt=0, le=86_400, description="Wall-clock limit per solve (s); None for none"
    )
    mip_gap: float = Field(1e-4, ge=0, le=1, description="Relative MIP gap at which to stop")


class BatteryOptions(Section):
    """The battery and charger of an EV: capacity, power, efficiencies, state-of-charge band.

    Shared by :class:`FleetOptions` (Kerama's identical fleets) and the market
    paper's section, which takes these fields at its top level.
    """

    battery_kwh: float = Field(60.0, gt=0, le=500, description="Usable battery capacity (kWh)")
    charger_kw: float = Field(
        6.6, gt=0, le=1_000, description="Charger power, charging and discharging (kW)"
    )
    charge_efficiency: float = Field(0.95, gt=0, le=1, description="Charging efficiency (-)")
    discharge_efficiency: float = Field(0.95, gt=0, le=1, description="Discharging efficiency (-)")
    soc_min: float = Field(
        0.2, ge=0, le=1, description="Lowest state of charge a schedule may reach (-)"
    )
    soc_max: float = Field(0.9, ge=0, le=1, description="Highest state of charge (-)")

    @model_validator(mode="after")
    def _soc_bounds_ordered(self) -> BatteryOptions:
        if not self.soc_min < self.soc_max:
            raise ValueError(
                f"soc_min = {self.soc_min}, soc_max = {self.soc_max}: the SOC band is empty; "
                "soc_min must be below soc_max (allowed 0 <= soc_min < soc_max <= 1)"
            )
        return self


class FleetOptions(BatteryOptions):
    """An EV fleet of identical vehicles: how many, and their :class:`BatteryOptions`."""

    n_evs: int = Field(40, ge=0, le=100_000, description="Number of EVs")


class VoltageLimits(Section):
    """The voltage band a section's networks must respect (and its figures draw)."""

    vmin_pu: float = Field(0.95, ge=0.8, le=1.0, description="Lower voltage limit (pu)")
    vmax_pu: float = Field(1.05, ge=1.0, le=1.2, description="Upper voltage limit (pu)")

    @model_validator(mode="after")
    def _limits_ordered(self) -> VoltageLimits:
        check_voltage_limits(self.vmin_pu, self.vmax_pu)
        return self


class ReproductionReportParams(Section):
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


#: The sections that belong to no paper: name -> its model, a :class:`Section`
#: subclass or ``"module:Class"`` imported on first use (:func:`section_model`).
SECTIONS: dict[str, str | type[Section]] = {
    "test_systems": "evgrid.analysis.test_systems:TestSystemsParams",
    "reproduction_report": ReproductionReportParams,
    "parallel": "evgrid.core.parallel:ParallelOptions",
}

#: Where the papers live: section ``<paper>`` or ``<paper>_<anything>`` is looked up in
#: ``SECTIONS`` of ``evgrid.papers.<paper>.params`` (:func:`section_model`).
PAPERS_PACKAGE = "evgrid.papers"


def section_model(name: str) -> type[Section]:
    """The model of section ``name``.

    A shared section is named in :data:`SECTIONS`. A paper's section is found by
    its name: ``kerama2025`` and ``kerama2025_sweeps`` are in the ``SECTIONS``
    dict of ``evgrid.papers.kerama2025.params``, and only that module is
    imported. So adding a paper (or changing one's schema) touches neither this
    module nor any other paper, and no other paper's pipeline stage re-runs.
    """
    if name in SECTIONS:
        model = SECTIONS[name]
    else:
        model = _paper_sections(_paper_of(name)).get(name) if _paper_of(name) else None
        if model is None:
            raise ConfigError(
                f"unknown params.yaml section {name!r}: known {', '.join(known_sections())}"
            )
    if isinstance(model, str):
        module, _, cls = model.partition(":")
        model = getattr(importlib.import_module(module), cls)
    return model


def known_sections() -> list[str]:
    """Every section name: the shared ones, then each paper's (this imports every paper's params)."""
    names = list(SECTIONS)
    for paper in _papers():
        names += [n for n in _paper_sections(paper) if n not in names]
    return names


def _papers() -> list[str]:
    spec = importlib.util.find_spec(PAPERS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if m.ispkg)


def _paper_of(name: str) -> str | None:
    """The paper package a section name belongs to (the longest matching prefix), if any."""
    matches = [p for p in _papers() if name == p or name.startswith(p + "_")]
    return max(matches, key=len) if matches else None


def _paper_sections(paper: str) -> dict[str, str | type[Section]]:
    try:
        module = importlib.import_module(f"{PAPERS_PACKAGE}.{paper}.params")
    except ModuleNotFoundError:
        return {}
    return dict(getattr(module, "SECTIONS", {}))


def validate_section(name: str, values: dict[str, Any]) -> Section:
    """Validate one section's values; raise :class:`ConfigError` naming field, value and range."""
    model = section_model(name)
    try:
        return model(**values)
    except ValidationError as err:
        raise ConfigError(_explain(name, model, values, err)) from None


def load_section(name: str, params_file: str | Path = "params.yaml") -> Section:
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
    if isinstance(values, dict):
        missing = missing_fields(section_model(name), values)
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
        if isinstance(nested, type) and issubclass(nested, Section) and isinstance(values[field_name], dict):
            missing += missing_fields(nested, values[field_name], f"{prefix}{field_name}.")
    return missing


def notebook_params(name: str, namespace: dict[str, Any]) -> Section:
    """Validate section ``name`` from a notebook's globals (its injected parameters).

    Every field of the section's model is taken from ``namespace``; a field
    that the notebook does not define raises :class:`ConfigError` instead of
    silently taking its default. The notebook keeps no list of names: the
    model is the list.
    """
    fields = section_model(name).model_fields
    absent = [f for f in fields if f not in namespace]
    if absent:
        raise ConfigError(
            f"section {name!r}: the notebook's parameters cell does not define "
            f"{', '.join(repr(f) for f in absent)}"
        )
    return validate_section(name, {f: namespace[f] for f in fields})


def describe(name: str) -> str:
    """A Markdown table of a section's fields, descriptions, defaults and ranges."""
    model = section_model(name)
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
    choices = annotation.split("Literal[", 1)[1].split("]", 1)[0] if "Literal" in annotation else None
    if "min_length" in bounds:
        return f"at least {bounds['min_length']} of {choices}" if choices else f"at least {bounds['min_length']} items"
    if choices:
        return "one of " + choices
    return f"type {getattr(info.annotation, '__name__', annotation)}"


def explain_invalid(title: str, model: type[BaseModel], values: Mapping[str, Any], err: ValidationError,
                    allowed: Mapping[str, str] | None = None) -> str:
    """A pydantic error as lines naming each field, its value, the message and the allowed range.

    ``title`` is the first line (e.g. ``"OPF options are invalid:"``); ``allowed`` words the range
    of fields a validator checks (the field's bounds give the others). Shared by every options
    model that reports its own errors (params sections, a paper's solver options).
    """
    allowed = allowed or {}
    lines = [title]
    for e in err.errors():
        loc = [p for p in e["loc"] if isinstance(p, str)]
        field_name = loc[0] if loc else None
        msg = e["msg"].removeprefix("Value error, ")
        if field_name and field_name in model.model_fields:
            value = values.get(field_name, "<missing>")
            rng = allowed.get(field_name) or _allowed(model, field_name)
            desc = model.model_fields[field_name].description
            lines.append(f"  field '{field_name}' = {value!r}: {msg} (allowed: {rng}; {desc})")
        elif field_name:
            lines.append(
                f"  field '{field_name}' is not a known field: known {', '.join(model.model_fields)}"
            )
        else:
            lines.append(f"  {msg}")
    return "\n".join(lines)


def _explain(section: str, model: type[BaseModel], values: dict, err: ValidationError) -> str:
    return explain_invalid(f"params.yaml [{section}] is invalid:", model, values, err)
