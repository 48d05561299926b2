"""The distribution analysis of Villanueva-Machado et al. (2025), Fig. 9: EV aggregators on the IEEE 13-node feeder.

The paper (Secs. 2.4.3 and 3.3) applies the transmission study's results (the IEEE 14-bus OPF's
bus voltages and the aggregators' charging and V2G profiles, scenario Sc3-CR) to the unbalanced
IEEE 13-node feeder in OpenDSS, through a "data mining" and a Monte Carlo "synthesis" it does
not define, and shows for two synthetic datasets, "5 %" and "14 %", that the per-phase voltages
at the far buses 671, 675, 611, 684, 652, 680 and 692 stay within +-5 % (the Peruvian NTCSE
limit for urban medium voltage). No code or data of this part was published (notes, §6).

What is built here, every choice beyond the paper's text marked **(ours)**:

1. **The feeder** is :func:`evgrid.networks.load_ieee13` as it stands: its default already leaves
   the 115/4.16 kV substation transformer out and puts a stiff three-phase source of 4.16 kV at
   bus 650 (the published power-flow set-up), which is what "the high-voltage side of the main
   transformer is not modeled" asks for; nothing else of the loader is changed.
   The 650-RG60 regulator is **disabled (ours, from the paper's "could interfere")**: its three
   taps are set to neutral (ratio 1.0) and have no control, so RG60 carries 650's voltage
   (``regulator="fixed"`` keeps the published taps A +10, B +8, C +11 instead, a sensitivity).
2. **Per half hour t (ours).** The source's voltage (p.u., balanced) is the 14-bus OPF's voltage
   magnitude at a feeding bus (``vm_bus<k>_pu`` of the OPF study's ``days.csv``; bus 13 by
   default) in the Sc3-CR day of the authors' capped profiles (``profiles == "authors_paper"``),
   min or max sample. The feeder's spot and distributed loads are their published values scaled
   by LF_t / max_t LF_t (the 14-bus load shape, :func:`.opf.read_load_factor`), so that the
   feeder carries its published load in the peak half hour.
3. **Aggregators (ours)** at the far buses: a charging load max(P_t, 0) and a V2G generator
   max(-P_t, 0) (the paper's Fig. 3 models V2G as generators), unity power factor, constant
   power, split equally over the bus's phases (one single-phase wye element per phase; 611 and
   652 have one phase, 684 two).
4. **The datasets "5 %" and "14 %" (ours; the paper leaves them undefined):** the EVs' daily
   charging energy on the feeder is 5 % resp. 14 % of the feeder's daily load energy (its
   published load times sum_t LF_t / max LF x 0.5 h). A seeded Monte Carlo draws ``n_days``
   synthetic days; for each day:

   * the source voltage's day: the Sc3-CR min or max OPF day, with equal probability;
   * for each aggregator bus: one of the 22 per-bus Sc3-CR profiles P^EM_{k,t} (11 load buses x
     2 samples), uniformly with replacement, normalised by its daily charging energy
     sum_t max(P^EM_{k,t}, 0) x 0.5 h (so P_t = E_bus x the normalised profile keeps its V2G
     in proportion to its charging);
   * the day's EV energy is split over the buses in proportion to a weight times a random
     factor U(1 - spread, 1 + spread): the weight is the bus's published load by default, so
     EVs sit where the customers are and the load-free junctions 680 and 684 host none (or
     equal weights, ``bus_weights="equal"``).

   The draws are the same for every dataset (common random numbers): the datasets differ only
   in the EV energy. Each day's draws come from its own child of one ``numpy`` SeedSequence, so
   day j is the same whatever ``n_days``, and a re-run with the same seed is byte-identical.
5. **The no-EV day (ours)**, for comparison: the feeder without aggregators, its source at the
   14-bus OPF's no-EV day's voltage (``profiles == "none"``), loads as in 2.
6. Each day is 48 OpenDSS snapshot power flows (dss-python), solved in order in a circuit
   built for the day; every bus phase's voltage magnitude is read in p.u. of the bus's own
   line-to-neutral base. Days run through :func:`evgrid.core.parallel.map_tasks`.

Results: :func:`voltage_envelopes` (per dataset, bus, phase and period: min, max, 5th and 95th
percentile over the synthetic days) and :func:`violation_counts` (values outside
[``vmin_pu``, ``vmax_pu``], a value being one bus phase in one period of one day), written by
:func:`run_feeder_study` as ``<results_dir>/feeder13/envelopes.csv`` and ``violations.csv``, and
read back by :func:`read_feeder_study`.

The options (:class:`Feeder13Options`) are not a section of ``params.yaml``: the CLI runs their
defaults, reading only ``villanueva2025.results_dir`` and the ``parallel`` section.

CLI::

    python -m evgrid.papers.villanueva2025.feeder13 [--params params.yaml] [--days-csv PATH] [--no-progress]

Units: kW, kWh, p.u. (voltages on each bus's own base), half-hour periods t = 1..48.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from evgrid.core.config import (
    ConfigError,
    Section,
    check_voltage_limits,
    explain_invalid,
    load_section,
)
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks
from evgrid.core.paths import output_path, repo_path
from evgrid.networks import NetworkData, load_ieee13
from evgrid.papers.villanueva2025 import opf
from evgrid.papers.villanueva2025.authors import (
    LOAD_BUSES,
    N_PERIODS,
    SAMPLES,
    SCENARIOS,
    read_pem_profiles,
)

__all__ = [
    "ENVELOPE_COLUMNS",
    "FAR_BUSES",
    "Feeder13Options",
    "NO_EV",
    "SyntheticDay",
    "VIOLATION_COLUMNS",
    "VOLTAGE_COLUMNS",
    "build_feeder",
    "dataset_label",
    "feeder_daily_energy_kwh",
    "normalised_profiles",
    "read_feeder_study",
    "read_opf_days",
    "run_feeder_study",
    "solve_day",
    "solve_snapshots",
    "source_voltages",
    "synthesize_days",
    "voltage_envelopes",
    "voltage_table",
    "violation_counts",
]

#: The buses the paper calls the farthest (Sec. 3.3): where the aggregators sit and voltages are watched.
FAR_BUSES: tuple[str, ...] = ("671", "675", "611", "684", "652", "680", "692")
#: The dataset label of the day without EVs.
NO_EV = "no EVs"
#: Columns of :func:`voltage_table`.
VOLTAGE_COLUMNS: tuple[str, ...] = ("dataset", "day", "t", "bus", "phase", "vm_pu")
#: Columns of ``envelopes.csv`` (:func:`voltage_envelopes`).
ENVELOPE_COLUMNS: tuple[str, ...] = ("dataset", "bus", "phase", "t", "vm_min_pu", "vm_max_pu", "vm_p05", "vm_p95")
#: Columns of ``violations.csv`` (:func:`violation_counts`).
VIOLATION_COLUMNS: tuple[str, ...] = (
    "dataset", "bus", "phase", "n_days", "n_values", "n_under", "n_over", "n_violations", "days_with_violation",
    "vm_min_pu", "vm_max_pu",
)
#: Where the OPF study's day results lie under the results folder.
OPF_DAYS_CSV = ("opf", "days.csv")
#: Length of a period (h).
DT_H = opf.DT_H
#: The OPF study's profile set of the authors' own OPF inputs (their capped profiles for Sc3-CR).
_AUTHORS_PROFILES = "authors_paper"
_SOURCE = "source"  # the Vsource load_ieee13 creates with its circuit
_EV_LOAD = "ev_{bus}_{phase}"
_V2G_GEN = "v2g_{bus}_{phase}"
_NODE = {"a": 1, "b": 2, "c": 3}
_PHASES = "abc"
#: Voltage range over which OpenDSS keeps the EV elements' constant-power model, as the loader's loads.
_EV_VMIN_PU, _EV_VMAX_PU = 0.85, 1.15


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _feeder_tables() -> tuple[dict[str, str], dict[str, float], dict[str, float], str]:
    """(phases by bus, line-to-line kV by bus, published load kW by bus, the source bus) of the feeder."""
    buses = load_ieee13().buses
    phases = {bus: "".join(sorted(group["phase"])) for bus, group in buses.groupby("bus", sort=False)}
    kv = {bus: float(group["vn_kv"].iloc[0]) for bus, group in buses.groupby("bus", sort=False)}
    load_kw = {bus: float(group["p_load_pu"].sum()) * 1e3 for bus, group in buses.groupby("bus", sort=False)}
    slack = str(buses.loc[buses["is_slack"], "bus"].iloc[0])
    return phases, kv, load_kw, slack


def _ev_bus_choices() -> list[str]:
    """Buses an aggregator may sit at: every 4.16 kV bus but the source's."""
    phases, kv, _, slack = _feeder_tables()
    return [bus for bus in phases if bus != slack and math.isclose(kv[bus], 4.16)]


class Feeder13Options(Section):
    """The IEEE 13-node analysis (Fig. 9): the Monte Carlo and the feeder; every default is ours (see the module).

    Invalid values raise :class:`~evgrid.core.config.ConfigError` (a ``ValueError``) naming the
    field, the value and the allowed range.
    """

    n_days: int = Field(100, ge=1, le=100_000, description="Synthetic days per dataset (the Monte Carlo's size)")
    seed: int = Field(2025, ge=0, le=2**32 - 1, description="Seed of the Monte Carlo (numpy SeedSequence)")
    ev_energy_shares: tuple[float, ...] = Field(
        (0.05, 0.14), min_length=1,
        description="One dataset per value: the EVs' daily charging energy as a share of the feeder's daily "
        "load energy (the paper's '5 %' and '14 %', our reading)")
    scenario: Literal["Sc1", "Sc2", "Sc3", "Sc3-CR"] = Field(
        "Sc3-CR", description="Scenario whose per-bus profiles and OPF voltages feed the feeder (the paper: Sc3-CR)")
    feeding_bus: int = Field(
        13, description="IEEE 14-bus load bus whose OPF voltage magnitude is the feeder source's voltage")
    ev_buses: tuple[str, ...] = Field(FAR_BUSES, min_length=1, description="Feeder buses that host an aggregator")
    monitored_buses: tuple[str, ...] = Field(
        FAR_BUSES, min_length=1, description="Feeder buses whose per-phase voltages are reported")
    bus_weights: Literal["load", "equal"] = Field(
        "load", description="How the day's EV energy is split over the aggregator buses before the random factor: "
        "by the bus's published load, or equally")
    share_spread: float = Field(
        0.5, ge=0.0, lt=1.0,
        description="Half-width of the random factor U(1 - spread, 1 + spread) on each bus's share of the EV energy")
    regulator: Literal["disabled", "fixed"] = Field(
        "disabled", description="The 650-RG60 regulator: at neutral tap (the paper's 'could interfere'; ours) or at "
        "the published taps A +10, B +8, C +11 (a sensitivity)")
    vmin_pu: float = Field(0.95, ge=0.8, le=1.0, description="Lower voltage limit (NTCSE, urban MV: -5 %)")
    vmax_pu: float = Field(1.05, ge=1.0, le=1.2, description="Upper voltage limit (NTCSE, urban MV: +5 %)")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(explain_invalid("IEEE 13-node feeder options are invalid:", Feeder13Options, data,
                                                  err, allowed=_allowed_ranges())) from None

    @field_validator("ev_energy_shares")
    @classmethod
    def _shares_in_range(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [x for x in value if not (math.isfinite(x) and 0.0 < x <= 1.0)]
        if bad:
            raise ValueError(f"share {bad[0]} is out of range")
        if len(set(value)) != len(value):
            raise ValueError("shares repeat")
        return value

    @field_validator("feeding_bus")
    @classmethod
    def _feeding_bus_is_a_load_bus(cls, value: int) -> int:
        if value not in LOAD_BUSES:
            raise ValueError(f"bus {value} is not a load bus")
        return value

    @field_validator("ev_buses")
    @classmethod
    def _ev_buses_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = _ev_bus_choices()
        bad = [bus for bus in value if bus not in allowed]
        if bad:
            raise ValueError(f"bus {bad[0]!r} is not a 4.16 kV feeder bus downstream of the source")
        if len(set(value)) != len(value):
            raise ValueError("buses repeat")
        return value

    @field_validator("monitored_buses")
    @classmethod
    def _monitored_buses_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        phases = _feeder_tables()[0]
        bad = [bus for bus in value if bus not in phases]
        if bad:
            raise ValueError(f"bus {bad[0]!r} is not a feeder bus")
        if len(set(value)) != len(value):
            raise ValueError("buses repeat")
        return value

    @model_validator(mode="after")
    def _limits(self) -> Feeder13Options:
        check_voltage_limits(self.vmin_pu, self.vmax_pu)
        if self.bus_weights == "load" and not any(_feeder_tables()[2][bus] > 0 for bus in self.ev_buses):
            raise ValueError(f"bus_weights = 'load', but no bus of ev_buses = {list(self.ev_buses)} has a load; "
                             "allowed: at least one loaded bus, or bus_weights = 'equal'")
        return self




def _allowed_ranges() -> dict[str, str]:
    """The ranges of the fields a validator checks, as an error message words them."""
    return {"ev_energy_shares": "each 0 < share <= 1, no repeats, at least one",
            "feeding_bus": f"one of {list(LOAD_BUSES)}",
            "ev_buses": f"distinct buses of {_ev_bus_choices()}",
            "monitored_buses": f"distinct buses of {list(_feeder_tables()[0])}"}


def dataset_label(share: float) -> str:
    """How a dataset is named in the results: its EV energy share in percent, e.g. 0.05 -> ``"5%"``."""
    return f"{100.0 * share:g}%"


# --------------------------------------------------------------------------------------------
# the feeder
# --------------------------------------------------------------------------------------------


def build_feeder(ev_buses: Sequence[str] = FAR_BUSES, *,
                 regulator: Literal["disabled", "fixed"] = "disabled") -> NetworkData:
    """The IEEE 13-node feeder of :func:`evgrid.networks.load_ieee13` with aggregator elements, compiled in OpenDSS.

    The loader's default circuit is kept: a stiff 4.16 kV source at bus 650, the substation
    transformer left out (the paper: "the high-voltage side of the main transformer is not
    modeled"). At each bus of ``ev_buses`` and each of its phases, a single-phase wye load
    ``load.ev_<bus>_<phase>`` (charging) and generator ``generator.v2g_<bus>_<phase>`` (V2G), both
    constant power at unity power factor and 0 kW until a period sets them.

    Parameters
    ----------
    ev_buses : sequence of str
        Buses that host an aggregator (4.16 kV buses other than the source's).
    regulator : {"disabled", "fixed"}
        ``"disabled"`` (the analysis; ours): the three 650-RG60 regulators at neutral tap
        (ratio 1.0), no control. ``"fixed"``: the published taps (A +10, B +8, C +11), the
        state the IEEE published voltages belong to (a validation reference).

    Returns
    -------
    NetworkData
        As :func:`evgrid.networks.load_ieee13` returns it, its engine holding the added elements.

    Raises
    ------
    ValueError
        If ``regulator`` is unknown or a bus of ``ev_buses`` is not a 4.16 kV bus downstream of
        the source.
    """
    if regulator not in ("disabled", "fixed"):
        raise ValueError(f"regulator = {regulator!r}: allowed 'disabled', 'fixed'")
    allowed = _ev_bus_choices()
    bad = [bus for bus in ev_buses if bus not in allowed]
    if bad:
        raise ValueError(f"ev_buses: bus {bad[0]!r} is not a 4.16 kV feeder bus downstream of the source; "
                         f"allowed {allowed}")
    data = load_ieee13(regulator="fixed")
    engine = data.net
    if regulator == "disabled":
        for reg in data.extra["regulator"].itertuples(index=False):
            # the loader names each regulator transformer <branch>_<phase>; its tap sits on winding 2
            engine.Text.Command = f"edit transformer.{reg.branch}_{reg.phase} wdg=2 tap=1.0"
    phases = _feeder_tables()[0]
    kv_ln = 4.16 / math.sqrt(3.0)
    for bus in ev_buses:
        for phase in phases[bus]:
            node = f"{bus}.{_NODE[phase]}"
            engine.Text.Command = (
                f"new load.{_EV_LOAD.format(bus=bus, phase=phase)} bus1={node} phases=1 conn=wye model=1 "
                f"kv={kv_ln} kw=0 kvar=0 vminpu={_EV_VMIN_PU} vmaxpu={_EV_VMAX_PU}")
            engine.Text.Command = (
                f"new generator.{_V2G_GEN.format(bus=bus, phase=phase)} bus1={node} phases=1 conn=wye model=1 "
                f"kv={kv_ln} kw=0 pf=1 vminpu={_EV_VMIN_PU} vmaxpu={_EV_VMAX_PU}")
    return data


def _base_loads(data: NetworkData) -> list[tuple[str, float, float]]:
    """(name, kW, kvar) of each of the feeder's own loads, as compiled (the published values)."""
    loads = data.net.ActiveCircuit.Loads
    out = []
    for name in loads.AllNames:
        if name.startswith("ev_"):
            continue
        loads.Name = name
        out.append((name, float(loads.kW), float(loads.kvar)))
    return out


def solve_snapshots(data: NetworkData, source_pu: Sequence[float], load_scale: Sequence[float],
                    ev_kw: Mapping[str, Sequence[float]] | None = None,
                    buses: Sequence[str] | None = None) -> pd.DataFrame:
    """Solve one snapshot power flow per period on a feeder of :func:`build_feeder`, in period order.

    Parameters
    ----------
    data : NetworkData
        From :func:`build_feeder` (its loads are reset every period, so it may be reused; OpenDSS
        starts each solve from the previous one, which moves voltages by ~1e-5 p.u. at most).
    source_pu : sequence of float
        Per period, the source's voltage (p.u. of 4.16 kV, balanced), each in [0.5, 1.5].
    load_scale : sequence of float
        Per period, the factor on every feeder load's published kW and kvar (>= 0).
    ev_kw : mapping of str to sequence of float, optional
        Per aggregator bus (one of the feeder's ``ev_buses``), its power per period (kW): positive
        charges (the bus's EV loads), negative is V2G (its generators), split equally over the
        bus's phases. Buses left out draw nothing.
    buses : sequence of str, optional
        Buses to report; default every bus.

    Returns
    -------
    pandas.DataFrame
        One row per period and bus phase: ``t`` (1-based), ``bus``, ``phase``, ``vm_pu`` (line-to-
        neutral magnitude in p.u. of the bus's own base), by period, then in the order of ``buses``
        (default: OpenDSS's), then phase.

    Raises
    ------
    ValueError
        If the sequences differ in length, a value is out of range or not finite, or a bus is not
        in the feeder (or ``ev_kw`` names a bus without aggregator elements).
    RuntimeError
        If a power flow does not converge.
    """
    source = np.asarray(source_pu, dtype=float)
    scale = np.asarray(load_scale, dtype=float)
    n = len(source)
    if source.ndim != 1 or n == 0 or scale.shape != (n,):
        raise ValueError(f"source_pu and load_scale must be sequences of one length >= 1, "
                         f"found {source.shape} and {scale.shape}")
    if not np.all(np.isfinite(source)) or np.any((source < 0.5) | (source > 1.5)):
        raise ValueError(f"source_pu must hold finite values in [0.5, 1.5] p.u., found {source.min()}..{source.max()}")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ValueError(f"load_scale must hold finite values >= 0, found min {scale.min()}")
    circuit = data.net.ActiveCircuit
    phases = _feeder_tables()[0]
    ev = {}
    for bus, values in (ev_kw or {}).items():
        p = np.asarray(values, dtype=float)
        if p.shape != (n,) or not np.all(np.isfinite(p)):
            raise ValueError(f"ev_kw[{bus!r}] must hold {n} finite values (kW)")
        names = [_EV_LOAD.format(bus=bus, phase=ph) for ph in phases.get(bus, "")]
        if not names or not set(names) <= set(circuit.Loads.AllNames):
            raise ValueError(f"ev_kw: bus {bus!r} has no aggregator elements in this feeder "
                             "(build_feeder's ev_buses)")
        ev[bus] = p / len(names)
    report = list(phases) if buses is None else list(buses)
    unknown = [bus for bus in report if bus not in phases]
    if unknown:
        raise ValueError(f"buses: {unknown[0]!r} is not a feeder bus; allowed {list(phases)}")

    nodes = [name.split(".") for name in circuit.AllNodeNames]
    rank = {bus: k for k, bus in enumerate(report)}
    pick = sorted((k for k, (bus, node) in enumerate(nodes) if bus in rank and node in ("1", "2", "3")),
                  key=lambda k: (rank[nodes[k][0]], nodes[k][1]))
    labels = [(nodes[k][0], _PHASES[int(nodes[k][1]) - 1]) for k in pick]
    base = _base_loads(data)
    loads, generators, vsources = circuit.Loads, circuit.Generators, circuit.Vsources
    vsources.Name = _SOURCE
    vm = np.empty((n, len(pick)))
    for t in range(n):
        vsources.pu = float(source[t])
        for name, kw, kvar in base:
            loads.Name = name
            loads.kW = kw * scale[t]
            loads.kvar = kvar * scale[t]
        for bus, p in ev.items():
            for phase in phases[bus]:
                loads.Name = _EV_LOAD.format(bus=bus, phase=phase)
                loads.kW = max(p[t], 0.0)
                loads.kvar = 0.0
                generators.Name = _V2G_GEN.format(bus=bus, phase=phase)
                generators.kW = max(-p[t], 0.0)
        circuit.Solution.Solve()
        if not circuit.Solution.Converged:
            raise RuntimeError(f"IEEE 13-node power flow (OpenDSS) did not converge at t = {t + 1}")
        vm[t] = np.asarray(circuit.AllBusVmagPu)[pick]
    return pd.DataFrame({
        "t": np.repeat(np.arange(1, n + 1), len(pick)),
        "bus": [bus for bus, _ in labels] * n,
        "phase": [phase for _, phase in labels] * n,
        "vm_pu": vm.ravel(),
    })


# --------------------------------------------------------------------------------------------
# the transmission study's inputs
# --------------------------------------------------------------------------------------------


def read_opf_days(path: str | Path) -> pd.DataFrame:
    """The OPF study's ``days.csv`` (:mod:`.opf_study`), its case columns as text ('' where empty).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run python -m evgrid.papers.villanueva2025.opf_study")
    days = pd.read_csv(path, dtype={"profiles": str, "scenario": str, "sample": str})
    for column in ("profiles", "scenario", "sample"):
        if column in days:
            days[column] = days[column].fillna("")
    return days


def source_voltages(days: pd.DataFrame, feeding_bus: int = 13, scenario: str = "Sc3-CR") -> dict[str, np.ndarray]:
    """The feeder source's voltage per period: the 14-bus OPF's voltage at ``feeding_bus``, per OPF day.

    Parameters
    ----------
    days : pandas.DataFrame
        The OPF study's day results (``days.csv``, :func:`read_opf_days`): ``profiles``,
        ``scenario``, ``sample``, ``t`` and ``vm_bus<feeding_bus>_pu``.
    feeding_bus : int
        IEEE 14-bus load bus.
    scenario : str
        The scenario of the authors' profiles (``profiles == "authors_paper"``).

    Returns
    -------
    dict of str to numpy.ndarray
        ``"min"`` and ``"max"`` (the scenario's samples) and, where ``days`` holds the no-EV day,
        :data:`NO_EV`: 48 voltages (p.u.) each, t = 1..48.

    Raises
    ------
    ValueError
        If ``feeding_bus`` or ``scenario`` is unknown, ``days`` lacks the voltage column or a
        sample's day, or a period's voltage is missing (a failed OPF period, or a ``days.csv``
        written before the study reported bus voltages).
    """
    if feeding_bus not in LOAD_BUSES:
        raise ValueError(f"feeding_bus = {feeding_bus!r}: allowed {list(LOAD_BUSES)}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario = {scenario!r}: allowed {list(SCENARIOS)}")
    column = f"vm_bus{feeding_bus}_pu"
    if column not in days:
        raise ValueError(f"days has no column {column!r}: it must come from an OPF study that reports bus voltages "
                         "(re-run python -m evgrid.papers.villanueva2025.opf_study)")
    cases = {sample: (_AUTHORS_PROFILES, scenario, sample) for sample in SAMPLES}
    cases[NO_EV] = ("none", "", "")
    out = {}
    for key, (profiles, scen, sample) in cases.items():
        rows = days[(days["profiles"] == profiles) & (days["scenario"] == scen) & (days["sample"] == sample)]
        if rows.empty:
            if key == NO_EV:
                continue
            raise ValueError(f"days has no OPF day for profiles = {profiles!r}, scenario = {scen!r}, "
                             f"sample = {sample!r}")
        rows = rows.sort_values("t")
        if rows["t"].tolist() != list(range(1, N_PERIODS + 1)):
            raise ValueError(f"OPF day {profiles} {scen} {sample}: periods must be t = 1..{N_PERIODS} once each")
        values = rows[column].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            t = int(rows["t"].iloc[int(np.flatnonzero(~np.isfinite(values))[0])])
            raise ValueError(f"OPF day {profiles} {scen} {sample}: {column} at t = {t} is missing "
                             "(a failed OPF period, or a days.csv without bus voltages: re-run the OPF study)")
        out[key] = values
    return out


def normalised_profiles(scenario: str = "Sc3-CR") -> pd.DataFrame:
    """The scenario's per-bus profiles P^EM_{k,t} (the authors' OPF inputs), each per unit of its charging energy.

    Parameters
    ----------
    scenario : str
        One of the authors' scenarios.

    Returns
    -------
    pandas.DataFrame
        Index ``(sample, bus)`` (22 rows for the 11 load buses x 2 samples), columns t = 1..48:
        P^EM_{k,t} / E_k (1/h), E_k = sum_t max(P^EM_{k,t}, 0) x 0.5 h the profile's daily charging
        energy (MWh); so sum_t max(., 0) x 0.5 h = 1 in every row.

    Raises
    ------
    ValueError
        If ``scenario`` is unknown or a profile never charges.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario = {scenario!r}: allowed {list(SCENARIOS)}")
    pem = read_pem_profiles()
    pem = pem[pem["scenario"] == scenario]
    wide = pem.pivot_table(index=["sample", "bus"], columns="t", values="pem_mw", aggfunc="first")
    wide = wide.reindex(index=pd.MultiIndex.from_product([SAMPLES, LOAD_BUSES], names=["sample", "bus"]),
                        columns=range(1, N_PERIODS + 1))
    if wide.isna().any().any():
        raise ValueError(f"{scenario}: a per-bus profile misses a period")
    charging = wide.clip(lower=0.0).sum(axis=1) * DT_H
    if (charging <= 0).any():
        sample, bus = charging[charging <= 0].index[0]
        raise ValueError(f"{scenario} {sample} bus {bus}: the profile never charges; it cannot be normalised")
    return wide.div(charging, axis=0)


def feeder_daily_energy_kwh(load_scale: Sequence[float]) -> float:
    """The feeder's daily load energy (kWh): its published load (3466 kW) x sum_t scale_t x 0.5 h."""
    total_kw = sum(_feeder_tables()[2].values())
    return float(total_kw * np.sum(np.asarray(load_scale, dtype=float)) * DT_H)


# --------------------------------------------------------------------------------------------
# the Monte Carlo
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticDay:
    """One feeder day to solve: its dataset and number, its inputs per period, and what was drawn.

    ``ev_kw`` holds (bus, 48 powers in kW: positive charging, negative V2G); ``draws`` says, per
    bus, which profile was drawn (its sample and IEEE 14-bus load bus) and the bus's share of the
    day's EV energy (empty for the no-EV day); ``regulator`` is :func:`build_feeder`'s.
    """

    dataset: str
    day: int
    source_sample: str
    source_pu: tuple[float, ...]
    load_scale: tuple[float, ...]
    ev_buses: tuple[str, ...]
    ev_kw: tuple[tuple[str, tuple[float, ...]], ...]
    monitored_buses: tuple[str, ...]
    draws: tuple[tuple[str, str, int, float], ...] = ()
    regulator: str = "disabled"


def synthesize_days(days: pd.DataFrame, options: Feeder13Options | None = None,
                    load_factor: Sequence[float] | None = None) -> list[SyntheticDay]:
    """Draw the synthetic days of every dataset (and the no-EV day): the Monte Carlo of the module docstring, item 4.

    Parameters
    ----------
    days : pandas.DataFrame
        The OPF study's day results (:func:`read_opf_days`), holding the scenario's min and max
        days (and the no-EV day, for the comparison) with their ``vm_bus<k>_pu``.
    options : Feeder13Options, optional
    load_factor : sequence of 48 floats, optional
        LF_t of the 14-bus study; default :func:`.opf.read_load_factor`. The feeder's loads are
        scaled by LF_t / max LF.

    Returns
    -------
    list of SyntheticDay
        The no-EV day first (day 0; only if ``days`` holds it), then per dataset (in the order of
        ``ev_energy_shares``) its days 1..n_days. Day j draws the same source day, profiles and
        random factors in every dataset.

    Raises
    ------
    ValueError
        As :func:`source_voltages`, or if ``load_factor`` does not hold 48 positive values.
    """
    options = options or Feeder13Options()
    lf = opf.read_load_factor() if load_factor is None else np.asarray(load_factor, dtype=float)
    if lf.shape != (N_PERIODS,) or not np.all(np.isfinite(lf)) or np.any(lf <= 0) or lf.max() <= 0:
        raise ValueError(f"load_factor must hold {N_PERIODS} finite values > 0")
    scale = tuple(float(x) for x in lf / lf.max())
    sources = source_voltages(days, options.feeding_bus, options.scenario)
    profiles = normalised_profiles(options.scenario)
    candidates = list(profiles.index)
    shapes = profiles.to_numpy(dtype=float)  # (22, 48), 1/h
    energy_kwh = feeder_daily_energy_kwh(scale)
    load_kw = _feeder_tables()[2]
    buses = options.ev_buses
    weights = np.array([load_kw[b] if options.bus_weights == "load" else 1.0 for b in buses])
    monitored = tuple(options.monitored_buses)

    out = []
    if NO_EV in sources:
        out.append(SyntheticDay(NO_EV, 0, "none", tuple(map(float, sources[NO_EV])), scale, buses, (), monitored,
                                regulator=options.regulator))
    draws = []
    for child in np.random.SeedSequence(options.seed).spawn(options.n_days):
        rng = np.random.default_rng(child)
        sample = SAMPLES[int(rng.integers(len(SAMPLES)))]
        picks = rng.integers(len(candidates), size=len(buses))
        factors = rng.uniform(1.0 - options.share_spread, 1.0 + options.share_spread, size=len(buses))
        raw = weights * factors
        draws.append((sample, picks, raw / raw.sum()))
    for share in options.ev_energy_shares:
        label = dataset_label(share)
        for j, (sample, picks, bus_share) in enumerate(draws, start=1):
            ev = tuple((bus, tuple(float(x) for x in share * energy_kwh * bus_share[i] * shapes[picks[i]]))
                       for i, bus in enumerate(buses) if bus_share[i] > 0)
            record = tuple((bus, candidates[picks[i]][0], int(candidates[picks[i]][1]), float(bus_share[i]))
                           for i, bus in enumerate(buses))
            out.append(SyntheticDay(label, j, sample, tuple(map(float, sources[sample])), scale, buses, ev,
                                    monitored, record, options.regulator))
    return out


def solve_day(day: SyntheticDay) -> pd.DataFrame:
    """Solve one synthetic day's 48 snapshots on a feeder built for it (a :func:`map_tasks` task; pure).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VOLTAGE_COLUMNS`, the monitored buses' phases in every period.
    """
    feeder = build_feeder(day.ev_buses, regulator=day.regulator)
    result = solve_snapshots(feeder, day.source_pu, day.load_scale, dict(day.ev_kw), day.monitored_buses)
    result.insert(0, "day", day.day)
    result.insert(0, "dataset", day.dataset)
    return result[list(VOLTAGE_COLUMNS)]


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


def voltage_table(days: Sequence[SyntheticDay], results: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Every solved voltage, one row per dataset, day, period and bus phase (:data:`VOLTAGE_COLUMNS`)."""
    if len(days) != len(results):
        raise ValueError(f"{len(days)} days but {len(results)} results")
    return pd.concat(list(results), ignore_index=True)[list(VOLTAGE_COLUMNS)]


def _ordered(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``table`` sorted by dataset, bus and phase in the order they first appear in it, then by ``keys``."""
    out = table.copy()
    for column in ("dataset", "bus", "phase"):
        order = {value: k for k, value in enumerate(dict.fromkeys(out[column]))}
        out[f"_{column}"] = out[column].map(order)
    out = out.sort_values(["_dataset", "_bus", "_phase", *keys], kind="stable")
    return out.drop(columns=["_dataset", "_bus", "_phase"]).reset_index(drop=True)


def voltage_envelopes(voltages: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, bus, phase and period: the min, max, 5th and 95th percentile of the voltage over the days.

    Parameters
    ----------
    voltages : pandas.DataFrame
        :func:`voltage_table`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ENVELOPE_COLUMNS` (percentiles by linear interpolation; the no-EV day's
        four values are its voltage), datasets, buses and phases in the order of ``voltages``.
    """
    grouped = voltages.groupby(["dataset", "bus", "phase", "t"], sort=False)["vm_pu"]
    table = pd.DataFrame({
        "vm_min_pu": grouped.min(),
        "vm_max_pu": grouped.max(),
        "vm_p05": grouped.quantile(0.05),
        "vm_p95": grouped.quantile(0.95),
    }).reset_index()
    return _ordered(table, ["t"])[list(ENVELOPE_COLUMNS)]


def violation_counts(voltages: pd.DataFrame, vmin_pu: float = 0.95, vmax_pu: float = 1.05) -> pd.DataFrame:
    """How many voltages lie outside [``vmin_pu``, ``vmax_pu``]: per dataset, bus and phase, and per dataset.

    A value is one bus phase in one period of one day; a dataset's row with ``bus`` and ``phase``
    ``"all"`` sums its buses' (periods x days x phases).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VIOLATION_COLUMNS`: ``n_days``, ``n_values``, ``n_under`` (< vmin),
        ``n_over`` (> vmax), ``n_violations`` (their sum), ``days_with_violation`` (days with at
        least one), ``vm_min_pu``, ``vm_max_pu`` (over every value).
    """
    check_voltage_limits(vmin_pu, vmax_pu)
    frame = voltages.assign(under=voltages["vm_pu"] < vmin_pu, over=voltages["vm_pu"] > vmax_pu)
    frame["bad"] = frame["under"] | frame["over"]

    def summary(group: pd.DataFrame) -> pd.Series:
        return pd.Series({
            "n_days": group["day"].nunique(),
            "n_values": len(group),
            "n_under": int(group["under"].sum()),
            "n_over": int(group["over"].sum()),
            "n_violations": int(group["bad"].sum()),
            "days_with_violation": group.loc[group["bad"], "day"].nunique(),
            "vm_min_pu": float(group["vm_pu"].min()),
            "vm_max_pu": float(group["vm_pu"].max()),
        })

    rows = []
    for dataset, part in frame.groupby("dataset", sort=False):
        for (bus, phase), group in part.groupby(["bus", "phase"], sort=False):
            rows.append({"dataset": dataset, "bus": bus, "phase": phase, **summary(group)})
        rows.append({"dataset": dataset, "bus": "all", "phase": "all", **summary(part)})
    table = pd.DataFrame(rows, columns=list(VIOLATION_COLUMNS))
    counts = [c for c in VIOLATION_COLUMNS if c.startswith(("n_", "days_"))]
    return table.astype({c: int for c in counts})


def run_feeder_study(params_file: str = "params.yaml", *, options: Feeder13Options | None = None,
                     days: pd.DataFrame | None = None, load_factor: Sequence[float] | None = None,
                     parallel: ParallelOptions | Mapping[str, Any] | None = None,
                     progress: bool = True, write: bool = True) -> dict[str, pd.DataFrame]:
    """Draw the synthetic days, solve them on the feeder and write ``envelopes.csv`` and ``violations.csv``.

    Parameters
    ----------
    params_file : str
        Its ``villanueva2025.results_dir`` names where the OPF study's ``opf/days.csv`` is read
        (under the repository) and where ``feeder13/`` is written (under
        :func:`evgrid.core.paths.output_path`).
    options : Feeder13Options, optional
        Default ours (see the module docstring).
    days : pandas.DataFrame, optional
        The OPF day results; default ``<results_dir>/opf/days.csv``.
    load_factor : sequence of 48 floats, optional
        Default :func:`.opf.read_load_factor`.
    parallel : ParallelOptions or mapping, optional
        Default :func:`evgrid.core.parallel.load_parallel` (``params.yaml``'s ``parallel``).
    progress : bool
    write : bool
        Write the two files (atomically, rounded to 6 significant digits, no timings: a re-run is
        byte-identical).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``voltages`` (:func:`voltage_table`), ``envelopes``, ``violations`` (as written) and
        ``draws`` (per dataset, day and aggregator bus: the source day's sample, the drawn profile's
        sample and bus, the bus's share of the day's EV energy and its charging and V2G energy, kWh).
    """
    options = options or Feeder13Options()
    params = load_section("villanueva2025", params_file)
    if days is None:
        days = read_opf_days(repo_path(params.results_dir, *OPF_DAYS_CSV))
    tick = time.perf_counter()
    synthetic = synthesize_days(days, options, load_factor)
    if not any(day.dataset == NO_EV for day in synthetic):
        print("note: days has no no-EV OPF day; the no-EV comparison is left out", flush=True)
    results = map_tasks(solve_day, synthetic, options=load_parallel(params_file) if parallel is None else parallel,
                        desc="IEEE 13-node days", progress=progress)
    voltages = voltage_table(synthetic, results)
    out = {
        "voltages": voltages,
        "envelopes": voltage_envelopes(voltages),
        "violations": violation_counts(voltages, options.vmin_pu, options.vmax_pu),
        "draws": _draws_table(synthetic),
    }
    seconds = time.perf_counter() - tick
    totals = out["violations"][out["violations"]["bus"] == "all"]
    for r in totals.itertuples(index=False):
        print(f"{r.dataset:>7}: {r.n_days} days, voltages {r.vm_min_pu:.4f}..{r.vm_max_pu:.4f} p.u., "
              f"{r.n_violations} of {r.n_values} outside [{options.vmin_pu}, {options.vmax_pu}] "
              f"({r.n_under} under, {r.n_over} over) on {r.days_with_violation} days", flush=True)
    print(f"IEEE 13-node study: {len(synthetic)} days in {seconds:.1f} s wall", flush=True)
    if write:
        folder = output_path(params.results_dir, "feeder13")
        write_csv(out["envelopes"], folder / "envelopes.csv")
        write_csv(out["violations"], folder / "violations.csv")
    return out


def read_feeder_study(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The two files :func:`run_feeder_study` wrote in ``folder`` (``<results_dir>/feeder13``), read back as written.

    ``dataset``, ``bus`` and ``phase`` are text (bus ``"671"``, not 671; the per-dataset total
    rows of ``violations`` have bus and phase ``"all"``), the counts integers, the voltages floats.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``envelopes`` (columns :data:`ENVELOPE_COLUMNS`) and ``violations``
        (:data:`VIOLATION_COLUMNS`), rows in the files' order.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file's columns are not the study's.
    """
    folder = Path(folder)
    text = dict.fromkeys(("dataset", "bus", "phase"), str)
    out = {}
    for name, columns in (("envelopes", ENVELOPE_COLUMNS), ("violations", VIOLATION_COLUMNS)):
        path = folder / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run python -m evgrid.papers.villanueva2025.feeder13")
        table = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])
        if tuple(table.columns) != columns:
            raise ValueError(f"{path}: columns {list(table.columns)}, expected {list(columns)}")
        out[name] = table
    return out


def _draws_table(days: Sequence[SyntheticDay]) -> pd.DataFrame:
    rows = []
    for day in days:
        ev = dict(day.ev_kw)
        for bus, sample, profile_bus, share in day.draws:
            p = np.asarray(ev.get(bus, np.zeros(N_PERIODS)))
            rows.append({"dataset": day.dataset, "day": day.day, "source_sample": day.source_sample, "bus": bus,
                         "profile_sample": sample, "profile_bus": profile_bus, "energy_share": share,
                         "charging_kwh": float(np.clip(p, 0, None).sum() * DT_H),
                         "v2g_kwh": float(np.clip(-p, 0, None).sum() * DT_H)})
    return pd.DataFrame(rows, columns=["dataset", "day", "source_sample", "bus", "profile_sample", "profile_bus",
                                       "energy_share", "charging_kwh", "v2g_kwh"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evgrid.papers.villanueva2025.feeder13",
        description="The IEEE 13-node analysis (Fig. 9): synthetic days of EV aggregators on the feeder, fed by the "
        "OPF study's days.csv; write feeder13/envelopes.csv and violations.csv.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--days-csv", default=None, help="the OPF study's days.csv (default <results_dir>/opf/days.csv)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    days = read_opf_days(args.days_csv) if args.days_csv else None
    run_feeder_study(args.params, days=days, progress=not args.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
