"""The centralized model (CEVCM) of Villanueva-Machado et al. (2025): one AC OPF per half hour, Eqs. (43)-(53).

The distribution network operator receives every aggregator's day-ahead profile P^EM_{k,t}
(MW, positive = buying), adds it to the bus loads (Eq. 43) and solves, for each half hour t
separately (no inter-temporal coupling), an AC optimal power flow on the IEEE 14-bus variant of
the paper that minimises the slack generation plus a penalty C_pen = 6000 per MW of non-supplied
power, NSP (Eq. 44), subject to the AC power balance (Eqs. 45-48), the branch ratings (Eq. 49)
and the bounds on voltages, angles and generation (Eqs. 50-53). It is solved with pandapower's
interior-point OPF (PIPS).

What the paper prints and what is built here (notes on the paper, §3)
---------------------------------------------------------------------
* **The 11 MW unit at bus 14.** The authors' data file gives bus 14 an 11 MW generator, and
  :func:`evgrid.networks.load_ieee14` models it as a fixed 11 MW injection. In the paper's OPF
  outputs that unit produces nothing except in deficits, where its output is reported as the
  NSP ("Maximum Extra Power Generation ... needed in bus bar 14"; every reported NSP is at bus
  14, at most 7.23 MW). So here it is a controllable generator, P in [0, 11] MW, Q = 0 (its
  Qmin = Qmax = 0 in the data file), costing C_pen per MW: its output *is* the NSP.
* **Eq. (45) with NSP at every bus.** The printed balance lets every bus shed load, and the
  authors' older code bounds that by the bus load; no reported output uses it. It is kept as a
  guard only: one shedding generator per load bus, P in [0, the bus's net load], at a higher
  cost (:attr:`OpfOptions.shed_cost_per_mw`), reported separately (``shed_mw``), so that an
  infeasible period shows as shed load rather than as a solver failure.
* **Eq. (44)**: C_pen x NSP + P_g,slack. Generation at bus 2 costs nothing, so it sits at its
  40 MW limit whenever the network allows, and minimising the slack output then minimises the
  losses. Condensers (buses 3, 6, 8) have P = 0.
* **Generator limits** (Eqs. 52-53) are the data file's, as the authors' code read them: slack
  (bus 1) P in [0, 232.4] MW and Q in [0, 0] (the file's Qmin = Qmax = 0); bus 2 P in [0, 40],
  Q in [-40, 50]; condensers Q in [0, 40], [-6, 24], [-6, 24]. Firm capacity is 272.4 MW.
  Every voltage, the slack's included, is free within [0.95, 1.05] p.u. (Eq. 50).
* **Eqs. (47)-(48)** mix admittance-angle notations; pandapower's standard pi-model flows are
  used, with the file's transformer taps and the 0.19 p.u. shunt at bus 9. The authors' older
  code writes the PV-bus active and every reactive balance as ">=" (free disposal); here they
  are equalities.
* **Eq. (49)**: the branch rating column of the data file, read as p.u. on 100 MVA (175 MVA
  for 1-2 and 1-5, 150 MVA for 2-3, 2-4, 2-5, 3-4, 4-5, 100 MVA for the rest). pandapower's
  PIPS can only limit the current here (its apparent-power limit, ``OPF_FLOW_LIM=0``, fails
  with the installed SciPy: ``csr_matrix`` has no ``.H``), so each branch gets the current
  limit S^up / vmax_pu: then |S| = V |I| <= S^up at both ends for every admissible voltage
  (at most 1 - vmin/vmax = 9.5 % stricter than |S| <= S^up). ``branch_loading_max`` reports
  max |S| / S^up of the solved flows. The authors penalised overloads instead; no reported
  output had one, and none of these limits binds in the paper's cases.
* **Eq. (43)**: P^EM is added to the active load only; the reactive load is unchanged. A
  negative net bus load (V2G larger than the bus load) is legal: each load bus carries a second,
  fixed pandapower *load* holding P^EM_{k,t}, which may be negative (pandapower treats a
  negative load as an injection). It is a load, not a static generator, so that the bus's net
  demand is the sum of its two loads with one sign convention, the base load stays Pd_k LF_t
  and Qd_k LF_t, and ``res_load`` reports the EV demand as it was given.
* **Failed periods.** When the authors' solver failed they copied the previous period's result
  (notes §4, Table 3 checks). Here a period is retried from other starting points
  (:attr:`OpfOptions.inits`) and, if every one fails, reported as failed (``converged`` False,
  results NaN, the reasons in ``error``), never filled.
* **Starting points.** PIPS is an interior-point method: its "flat" start is the midpoint of
  every bound, strictly inside. Warm-starting from the previous period's solution
  (pandapower's ``init="results"``, which starts on the bounds that were active and without
  the multipliers) failed numerically in about 20 of the 48 no-EV periods, each failure costing
  a full run, while the flat start solved all 48 (a day took ~19 s instead of ~36 s). So the
  default tries flat first and the warm start second; ``inits`` can reorder them.

The DNO's caps (Eqs. 54-55; notes §3.3)
---------------------------------------
For the coordinated scenario (Sc3-CR) the DNO computes, per half hour and on the **no-EV** load,
how much EV load P^EM_cap,k,t each load bus may take (:func:`build_cap_net`, :func:`solve_caps`).
Eq. (54) adds that cap to the bus balance as a "virtual load"; here it is one controllable
pandapower load per load bus (``kind="cap"``, Q = 0), the rest of the net as above. What the
paper does not state is taken from the authors' cap file (``pem_cap_const.txt``, the Sc3-CR
runs' ``psyscap_mw``), and both are inferences:

* **Bounds** floor x Pd_{k,t} <= cap <= Pd_{k,t}: Eq. (55) gives the upper bound; the floor
  (:attr:`OpfOptions.cap_floor_share`, 2.5 %) is where the authors' caps of buses 3, 10, 13 and
  14 sit in every period.
* **Objective**: max sum_k cap_k. Each cap load costs -``cap_value_per_mw`` per MW. That value
  exceeds the slack's cost, so the OPF runs the firm generation (232.4 + 40 = 272.4 MW) to its
  limit, as the authors' caps show (sum_k cap = 272.4 - sum Pd - losses in every period); and it
  lies below C_pen, so the bus-14 NSP unit (and, far above it, the shedding guard) never serves a
  cap: one MW of NSP would cost more than the at most one MW of cap it makes room for. Both are
  kept in the net and reported, so a period whose floor alone exceeded the firm generation would
  show as NSP instead of failing; in the paper's day they stay at 0.

With the firm generation fixed, maximising sum_k cap minimises the losses: the room above the
floors goes to the buses with the smallest marginal losses. Near the optimum several buses share
it with almost equal marginal losses, so the split among them is weakly determined (our caps and
the authors' agree on the sum within about 0.03 MW per period, less so bus by bus).

Check against the paper: the day without EVs gives an energy demand of 5486.08 MWh, a peak of
250.11 MW, 5737.47 MWh supplied and 251.39 MWh of losses (Table 3: 5486.08, 250.11, 5737.52,
251.44), and no NSP.

Units: MW, Mvar, MWh (half-hour periods, Delta t = 0.5 h), p.u. voltages, cost units per MW.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandapower as pp
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from evgrid.core.config import ConfigError, Section, check_voltage_limits, explain_invalid
from evgrid.core.parallel import ParallelOptions, map_tasks
from evgrid.networks import load_ieee14
from evgrid.papers.villanueva2025.authors import (
    LOAD_BUSES,
    N_PERIODS,
    SAMPLES,
    SCENARIOS,
    read_pem_profiles,
)
from evgrid.papers.villanueva2025.dataset import DATASET_DIR, _existing

__all__ = [
    "BRANCH_RATING_MVA",
    "BUSES",
    "CAP_COLUMNS",
    "DAY_COLUMNS",
    "DT_H",
    "GEN_Q_LIMITS_MVAR",
    "OpfDay",
    "OpfOptions",
    "VM_BUS_COLUMNS",
    "authors_caps",
    "authors_day",
    "build_cap_net",
    "build_opf_net",
    "cap_room_share",
    "check_power_balance",
    "day_metrics",
    "read_branch_ratings_mva",
    "read_load_factor",
    "replay_authors",
    "solve_day",
    "solve_caps",
    "solve_days",
    "solve_period",
]

#: Length of a period (h).
DT_H = 0.5
#: Base power of the per-unit data (MVA).
BASE_MVA = 100.0
#: Branch ratings |S| <= S^up (MVA) of ``ieee14cdfv2.txt`` (its rating column, p.u. on 100 MVA),
#: keyed by the IEEE bus numbers (from, to) as the file lists them (Eq. 49).
BRANCH_RATING_MVA: dict[tuple[int, int], float] = {
    (1, 2): 175.0, (1, 5): 175.0,
    (2, 3): 150.0, (2, 4): 150.0, (2, 5): 150.0, (3, 4): 150.0, (4, 5): 150.0,
    (4, 7): 100.0, (4, 9): 100.0, (5, 6): 100.0, (6, 11): 100.0, (6, 12): 100.0,
    (6, 13): 100.0, (7, 8): 100.0, (7, 9): 100.0, (9, 10): 100.0, (9, 14): 100.0,
    (10, 11): 100.0, (12, 13): 100.0, (13, 14): 100.0,
}
#: Reactive limits (Mvar) of the generators other than the slack, from the data file (Eq. 53).
GEN_Q_LIMITS_MVAR: dict[int, tuple[float, float]] = {2: (-40.0, 50.0), 3: (0.0, 40.0), 6: (-6.0, 24.0),
                                                     8: (-6.0, 24.0)}
#: IEEE numbers of the 14 buses, each of which reports its voltage magnitude per period.
BUSES: tuple[int, ...] = tuple(range(1, 15))
#: Columns of the per-bus voltage magnitudes (p.u.) in a :func:`solve_day` result, bus 1 to 14:
#: the IEEE 13-node feeder analysis (:mod:`.feeder13`) takes its source voltage from one of them.
VM_BUS_COLUMNS: tuple[str, ...] = tuple(f"vm_bus{bus}_pu" for bus in BUSES)
#: Columns of a :func:`solve_day` result, in order.
DAY_COLUMNS: tuple[str, ...] = (
    "t", "load_factor", "pd_mw", "pem_mw", "p_slack_mw", "q_slack_mvar", "p_gen2_mw", "nsp_mw",
    "nsp_bus", "shed_mw", "losses_mw", "branch_losses_mw", "balance_residual_mw", "vm_min_pu",
    "vm_max_pu", *VM_BUS_COLUMNS, "branch_loading_max", "objective", "converged", "init", "solve_s", "error",
)
#: Columns of a :func:`solve_caps` result, in order: per (t, bus), then the period's results.
CAP_COLUMNS: tuple[str, ...] = (
    "t", "bus", "pd_mw", "cap_min_mw", "cap_mw", "load_factor", "p_slack_mw", "q_slack_mvar", "p_gen2_mw",
    "nsp_mw", "shed_mw", "losses_mw", "branch_losses_mw", "balance_residual_mw", "vm_min_pu", "vm_max_pu",
    "branch_loading_max", "objective", "converged", "init", "solve_s", "error",
)
_RESULT_COLUMNS = ("p_slack_mw", "q_slack_mvar", "p_gen2_mw", "nsp_mw", "shed_mw", "losses_mw",
                   "branch_losses_mw", "balance_residual_mw", "vm_min_pu", "vm_max_pu", *VM_BUS_COLUMNS,
                   "branch_loading_max", "objective")
#: pypower's flow limit on the branch current |I| (0 = |S| and 1 = P fail in this pandapower/SciPy).
_FLOW_LIMIT_CURRENT = 2
_NSP_NAME = "nsp"
_SHED_PREFIX = "shed_bus"
_EV_PREFIX = "ev_bus"
_CAP_PREFIX = "cap_bus"
#: The Sc3-CR runs hold the DNO's caps (their ``cap_mw``); the min and max runs hold the same ones.
_CAP_SCENARIO = "Sc3-CR"
_SLACK_BUS = 1
_GEN2_BUS = 2
_LOAD_FACTOR_FILE = "daily_load_factor.xlsx"
_CDF_FILE = "ieee14cdfv2.txt"


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


class OpfOptions(Section):
    """How the CEVCM OPF is built and solved; defaults are the paper's and the authors' data file's.

    Invalid values raise :class:`~evgrid.core.config.ConfigError` (a ``ValueError``) naming the
    field, the value and the allowed range.
    """

    nsp_cost_per_mw: float = Field(
        6000.0, gt=0, le=1e7, description="C_pen, penalty per MW of non-supplied power (Eq. 44; authors' code)")
    nsp_max_mw: float = Field(
        11.0, ge=0, le=1000, description="Capacity of the bus-14 unit that supplies the NSP (MW; data file)")
    nsp_bus: int = Field(14, ge=1, le=14, description="Bus of the NSP unit (IEEE number; a load bus)")
    shed_cost_per_mw: float = Field(
        60000.0, gt=0, le=1e9,
        description="Cost per MW of the guard load shedding at every load bus (not in the paper; above C_pen)")
    vmin_pu: float = Field(0.95, ge=0.8, le=1.0, description="Lower voltage limit, every bus (Eq. 50)")
    vmax_pu: float = Field(1.05, ge=1.0, le=1.2, description="Upper voltage limit, every bus (Eq. 50)")
    slack_p_max_mw: float = Field(
        232.4, gt=0, le=10_000, description="Slack (bus 1) active power limit (MW; data file, Eq. 52)")
    slack_q_min_mvar: float = Field(
        0.0, ge=-1000, le=1000, description="Slack reactive lower limit (Mvar; data file's Qmin = 0, Eq. 53)")
    slack_q_max_mvar: float = Field(
        0.0, ge=-1000, le=1000, description="Slack reactive upper limit (Mvar; data file's Qmax = 0, Eq. 53)")
    gen2_p_max_mw: float = Field(
        40.0, ge=0, le=10_000, description="Bus-2 generator active power limit (MW; data file, Eq. 52)")
    slack_cost_per_mw: float = Field(
        1.0, gt=0, le=1e6, description="Cost per MW of slack generation (Eq. 44); other generation costs 0")
    branch_ratings: bool = Field(True, description="Impose the data file's branch ratings |S| <= S^up (Eq. 49)")
    inits: tuple[Literal["results", "flat", "pf"], ...] = Field(
        ("flat", "results", "pf"), min_length=1,
        description="Starting points tried in order: flat (PIPS's interior point, the bounds' midpoint), the "
        "previous period's solution (results; skipped after a failed or first period), or a power flow (pf)")
    feasibility_tol_pu: float = Field(
        1e-9, gt=0, le=1e-3,
        description="PIPS constraint violation tolerance (p.u.; pandapower's default 5e-6 leaves ~1e-4 MW "
        "of power-balance error)")
    max_iterations: int = Field(150, ge=10, le=10_000, description="PIPS iterations per attempt")
    nsp_report_mw: float = Field(
        1e-4, ge=0, le=1, description="NSP above which a period names the NSP bus (MW; reporting only)")
    cap_floor_share: float = Field(
        0.025, ge=0, le=1,
        description="Cap OPF (Eqs. 54-55): lower bound of each cap as a share of the bus's no-EV load, "
        "floor x Pd_{k,t} <= P^EM_cap,k,t <= Pd_{k,t}; not in the paper, inferred from the authors' cap file "
        "(notes §3.3: buses 3, 10, 13, 14 sit at 2.5 %)")
    cap_value_per_mw: float = Field(
        100.0, gt=0, le=1e7,
        description="Cap OPF: value per MW of admissible EV load (each cap load costs minus this); the objective "
        "max sum_k cap is inferred (notes §3.3). Above slack_cost_per_mw, so firm generation runs to its limit; "
        "below nsp_cost_per_mw, so NSP never serves a cap")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(explain_invalid("OPF options are invalid:", OpfOptions, data, err)) from None

    @field_validator("nsp_bus")
    @classmethod
    def _nsp_at_a_load_bus(cls, value: int) -> int:
        if value not in LOAD_BUSES:
            raise ValueError(f"{value} is not a load bus; allowed {list(LOAD_BUSES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OpfOptions:
        check_voltage_limits(self.vmin_pu, self.vmax_pu)
        if self.slack_q_min_mvar > self.slack_q_max_mvar:
            raise ValueError(f"slack_q_min_mvar = {self.slack_q_min_mvar} exceeds slack_q_max_mvar = "
                             f"{self.slack_q_max_mvar}; allowed slack_q_min_mvar <= slack_q_max_mvar")
        if not self.slack_cost_per_mw < self.nsp_cost_per_mw < self.shed_cost_per_mw:
            raise ValueError(
                f"costs must rise from slack generation to NSP to shedding: slack_cost_per_mw = "
                f"{self.slack_cost_per_mw}, nsp_cost_per_mw = {self.nsp_cost_per_mw}, shed_cost_per_mw = "
                f"{self.shed_cost_per_mw}; allowed slack_cost_per_mw < nsp_cost_per_mw < shed_cost_per_mw")
        if not self.slack_cost_per_mw < self.cap_value_per_mw < self.nsp_cost_per_mw:
            raise ValueError(
                f"cap_value_per_mw = {self.cap_value_per_mw} must lie between slack_cost_per_mw = "
                f"{self.slack_cost_per_mw} and nsp_cost_per_mw = {self.nsp_cost_per_mw}; allowed "
                "slack_cost_per_mw < cap_value_per_mw < nsp_cost_per_mw")
        return self




# --------------------------------------------------------------------------------------------
# data readers
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _load_factor() -> np.ndarray:
    path = _existing(DATASET_DIR, _LOAD_FACTOR_FILE)
    sheet = pd.read_excel(path, sheet_name="MT", header=None)
    values = pd.to_numeric(sheet.iloc[:, 1], errors="coerce").to_numpy(dtype=float)
    if values.shape != (N_PERIODS,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{path}, sheet MT: column B must hold {N_PERIODS} positive load factors, "
                         f"found {values.size} values")
    return values


def read_load_factor() -> np.ndarray:
    """The 48 half-hourly load factors LF_t of ``daily_load_factor.xlsx``, sheet ``MT`` (column B).

    Pd_{k,t} = Pd_k LF_t and Qd_{k,t} = Qd_k LF_t (notes §3.1); sheet ``BT`` is identical. The
    values run from 0.7558 (t = 8) to 0.9657 (t = 30): with the 259 MW of the IEEE 14-bus system,
    a 5486.08 MWh day peaking at 250.11 MW (Table 3, no EVs).

    Returns
    -------
    numpy.ndarray
        Shape (48,), t = 1..48 (slot t covers [(t-1)/2, t/2) h); a copy.
    """
    return _load_factor().copy()


@lru_cache(maxsize=1)
def _ratings_from_file() -> dict[tuple[int, int], float]:
    path = _existing(DATASET_DIR, _CDF_FILE)
    out: dict[tuple[int, int], float] = {}
    section = False
    for line in path.read_text().splitlines():
        if line.startswith("BRANCH DATA FOLLOWS"):
            section = True
            continue
        if section and line.strip().startswith("-9"):
            break
        if section:
            fields = line.split()
            # IEEE common data format, branch record: from, to, area, zone, circuit, type, R, X, B,
            # rating A (here in p.u. of the 100 MVA base, as the authors' code reads it), ...
            out[(int(fields[0]), int(fields[1]))] = float(fields[9]) * BASE_MVA
    if not out:
        raise ValueError(f"{path}: no branch records found")
    return out


def read_branch_ratings_mva() -> dict[tuple[int, int], float]:
    """Branch ratings of ``ieee14cdfv2.txt`` (MVA): its rating column x 100 MVA, keyed (from, to).

    The builder uses :data:`BRANCH_RATING_MVA`, which equals this (a test keeps them equal).
    """
    return dict(_ratings_from_file())


# --------------------------------------------------------------------------------------------
# building one period
# --------------------------------------------------------------------------------------------


def _check_pem_mapping(pem_mw: Mapping[int, float] | None) -> dict[int, float]:
    if pem_mw is None:
        return {}
    out = {}
    for bus, value in pem_mw.items():
        if isinstance(bus, bool) or not isinstance(bus, int | np.integer) or int(bus) not in LOAD_BUSES:
            raise ValueError(f"pem_mw: bus {bus!r} is not a load bus; allowed {list(LOAD_BUSES)}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"pem_mw: bus {int(bus)} has P^EM = {value}; it must be a finite number (MW)")
        out[int(bus)] = value
    return out


def _check_load_factor(load_factor: float) -> float:
    value = float(load_factor)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"load_factor = {load_factor!r}: must be a finite number >= 0")
    return value


def _bus_index(net: pp.pandapowerNet) -> dict[int, int]:
    """IEEE bus number -> pandapower bus index (load_ieee14 names the buses 1..14)."""
    return {int(name): int(idx) for idx, name in net.bus["name"].items()}


def _set_period(net: pp.pandapowerNet, load_factor: float, pem_mw: Mapping[int, float]) -> None:
    """Set one period's loads (Eq. 43) and the shedding guards' bounds, in place on our own net."""
    base = net.load["kind"] == "base"
    net.load.loc[base, "p_mw"] = net.load.loc[base, "pd_base_mw"] * load_factor
    net.load.loc[base, "q_mvar"] = net.load.loc[base, "qd_base_mvar"] * load_factor
    ev = net.load.index[net.load["kind"] == "ev"]
    net.load.loc[ev, "p_mw"] = [pem_mw.get(int(b), 0.0) for b in net.load.loc[ev, "ieee_bus"]]
    net.load.loc[ev, "q_mvar"] = 0.0
    # the guard sheds the fixed loads only; a cap net's caps (kind "cap") are themselves controllable
    fixed = net.load["kind"] != "cap"
    net_load = net.load[fixed].groupby("ieee_bus")["p_mw"].sum()
    shed = net.sgen.index[net.sgen["name"].str.startswith(_SHED_PREFIX)]
    buses = net.sgen.loc[shed, "name"].str.removeprefix(_SHED_PREFIX).astype(int)
    net.sgen.loc[shed, "max_p_mw"] = [max(float(net_load.get(b, 0.0)), 0.0) for b in buses]
    net.sgen.loc[shed, "p_mw"] = 0.0
    net["evgrid_load_factor"] = load_factor


def build_opf_net(load_factor: float, pem_mw: Mapping[int, float] | None = None,
                  options: OpfOptions | None = None) -> pp.pandapowerNet:
    """A fresh pandapower net holding the CEVCM OPF of one period, Eqs. (43)-(53).

    Parameters
    ----------
    load_factor : float
        LF_t: every base load is Pd_k LF_t, Qd_k LF_t (MW, Mvar).
    pem_mw : mapping of int to float, optional
        P^EM_{k,t} (MW) by IEEE load bus; added to the active load only (Eq. 43), and may be
        negative (V2G). Missing buses have none.
    options : OpfOptions, optional
        Limits and costs; defaults are the paper's.

    Returns
    -------
    pandapower.pandapowerNet
        Built from :func:`evgrid.networks.load_ieee14` (``variant="villanueva2025"``) anew on every
        call, with:

        * loads: per load bus a ``kind="base"`` load (Pd_k LF, Qd_k LF) and a ``kind="ev"`` load
          (P^EM, 0 Mvar), each with its IEEE bus number in ``ieee_bus``;
        * the slack (``ext_grid``, bus 1): controllable, voltage free within the limits, P and Q
          bounded (Eqs. 52-53), cost ``slack_cost_per_mw`` per MW (Eq. 44);
        * generator at bus 2: P in [0, ``gen2_p_max_mw``], Q in [-40, 50]; condensers at 3, 6, 8:
          P = 0 and their Q limits; all at zero cost;
        * static generator ``"nsp"`` at ``nsp_bus``: P in [0, ``nsp_max_mw``], Q = 0, cost
          ``nsp_cost_per_mw``: the NSP of Eqs. (44)-(45) (replaces the data file's fixed 11 MW);
        * static generators ``"shed_bus<k>"``, one per load bus: P in [0, the bus's net load if
          positive], Q = 0, cost ``shed_cost_per_mw``: the load-shedding guard;
        * bus voltage limits (Eq. 50) and branch ratings |S| <= S^up (Eq. 49).

    Raises
    ------
    ValueError
        If ``load_factor`` is not a finite number >= 0, or ``pem_mw`` names a bus that is not a
        load bus or holds a non-finite value.
    """
    options = options or OpfOptions()
    load_factor = _check_load_factor(load_factor)
    pem = _check_pem_mapping(pem_mw)
    net = load_ieee14(variant="villanueva2025").net
    index = _bus_index(net)
    number = {v: k for k, v in index.items()}

    # the data file's fixed 11 MW at bus 14 becomes the penalised NSP unit below
    net.sgen.drop(net.sgen.index, inplace=True)
    net.poly_cost.drop(net.poly_cost.index, inplace=True)

    net.bus["min_vm_pu"] = options.vmin_pu
    net.bus["max_vm_pu"] = options.vmax_pu

    def start_vm(vm: float) -> float:  # starting voltage inside the band (pf init, warnings)
        return float(min(max(vm, options.vmin_pu), options.vmax_pu))

    if len(net.ext_grid) != 1 or number[int(net.ext_grid.at[0, "bus"])] != _SLACK_BUS:
        raise ValueError("expected one external grid, at bus 1")
    net.ext_grid["controllable"] = True
    net.ext_grid.loc[0, ["min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"]] = [
        0.0, options.slack_p_max_mw, options.slack_q_min_mvar, options.slack_q_max_mvar]
    net.ext_grid.at[0, "vm_pu"] = start_vm(float(net.ext_grid.at[0, "vm_pu"]))
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=options.slack_cost_per_mw)

    gen_bus = {number[int(b)]: i for i, b in net.gen["bus"].items()}
    if set(gen_bus) != set(GEN_Q_LIMITS_MVAR):
        raise ValueError(f"expected generators at buses {sorted(GEN_Q_LIMITS_MVAR)}, found {sorted(gen_bus)}")
    for bus, i in gen_bus.items():
        p_max = options.gen2_p_max_mw if bus == _GEN2_BUS else 0.0
        q_min, q_max = GEN_Q_LIMITS_MVAR[bus]
        net.gen.loc[i, ["min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"]] = [0.0, p_max, q_min, q_max]
        net.gen.at[i, "p_mw"] = p_max
        net.gen.at[i, "vm_pu"] = start_vm(float(net.gen.at[i, "vm_pu"]))
        net.gen.at[i, "controllable"] = True
        net.gen.at[i, "name"] = f"gen_bus{bus}"

    # loads: the case's loads are the data file's Pd_k, Qd_k; one EV load per load bus beside them
    net.load["ieee_bus"] = [number[int(b)] for b in net.load["bus"]]
    if sorted(net.load["ieee_bus"]) != sorted(LOAD_BUSES):
        raise ValueError(f"expected one load at each of {list(LOAD_BUSES)}")
    net.load["kind"] = "base"
    net.load["pd_base_mw"] = net.load["p_mw"].astype(float)
    net.load["qd_base_mvar"] = net.load["q_mvar"].astype(float)
    for bus in LOAD_BUSES:
        i = pp.create_load(net, index[bus], p_mw=0.0, q_mvar=0.0, name=f"{_EV_PREFIX}{bus}", controllable=False)
        net.load.loc[i, ["ieee_bus", "kind", "pd_base_mw", "qd_base_mvar"]] = [bus, "ev", 0.0, 0.0]
    net.load["ieee_bus"] = net.load["ieee_bus"].astype(int)
    net.load["controllable"] = False
    net.load["name"] = [n if isinstance(n, str) else f"load_bus{b}"
                        for n, b in zip(net.load["name"], net.load["ieee_bus"], strict=True)]

    nsp = pp.create_sgen(net, index[options.nsp_bus], p_mw=0.0, q_mvar=0.0, min_p_mw=0.0,
                         max_p_mw=options.nsp_max_mw, min_q_mvar=0.0, max_q_mvar=0.0,
                         controllable=True, name=_NSP_NAME)
    pp.create_poly_cost(net, nsp, "sgen", cp1_eur_per_mw=options.nsp_cost_per_mw)
    for bus in LOAD_BUSES:
        shed = pp.create_sgen(net, index[bus], p_mw=0.0, q_mvar=0.0, min_p_mw=0.0, max_p_mw=0.0,
                              min_q_mvar=0.0, max_q_mvar=0.0, controllable=True, name=f"{_SHED_PREFIX}{bus}")
        pp.create_poly_cost(net, shed, "sgen", cp1_eur_per_mw=options.shed_cost_per_mw)

    _set_ratings(net, number, options.branch_ratings, options.vmax_pu)
    _set_period(net, load_factor, pem)
    return net


def _set_ratings(net: pp.pandapowerNet, number: Mapping[int, int], enforce: bool, vmax_pu: float) -> None:
    """|S| <= S^up at both ends of every branch (Eq. 49), S^up from :data:`BRANCH_RATING_MVA`.

    pandapower's OPF limits a line to max_loading_percent/100 x max_i_ka x sqrt(3) x vn_kv(from)
    and a transformer to max_loading_percent/100 x sn_mva, and PIPS reads that number divided by
    the base as a limit on the p.u. current. A current limit of S^up / vmax_pu keeps |S| = V |I|
    within S^up at every admissible voltage. Each branch keeps S^up in ``rating_mva``.
    """
    ratings = {frozenset(k): v for k, v in BRANCH_RATING_MVA.items()}
    seen = set()
    for table, ends in (("line", ("from_bus", "to_bus")), ("trafo", ("hv_bus", "lv_bus"))):
        frame = net[table]
        keys = [frozenset((number[int(a)], number[int(b)])) for a, b in frame[list(ends)].itertuples(index=False)]
        missing = [sorted(k) for k in keys if k not in ratings]
        if missing:
            raise ValueError(f"{table} {missing} has no rating in BRANCH_RATING_MVA")
        seen.update(keys)
        frame["rating_mva"] = [ratings[k] for k in keys]
        if not enforce:
            # pandapower reads a missing column as "no limit"
            frame.drop(columns="max_loading_percent", inplace=True, errors="ignore")
        elif table == "line":
            vn_kv = net.bus.loc[frame["from_bus"], "vn_kv"].to_numpy(dtype=float)
            frame["max_i_ka"] = frame["rating_mva"] / (vmax_pu * math.sqrt(3.0) * vn_kv)
            frame["max_loading_percent"] = 100.0
        else:
            frame["max_loading_percent"] = 100.0 * frame["rating_mva"] / (vmax_pu * frame["sn_mva"])
    if seen != set(ratings):
        raise ValueError(f"branches {sorted(map(sorted, set(ratings) - seen))} of BRANCH_RATING_MVA are not in the net")


def _branch_loading_max(net: pp.pandapowerNet) -> float:
    """max |S| / S^up over both ends of every branch, from the solved flows (Eq. 49)."""
    loading = []
    for table, ends in (("line", ("from", "to")), ("trafo", ("hv", "lv"))):
        res = net[f"res_{table}"]
        for end in ends:
            s_mva = np.hypot(res[f"p_{end}_mw"], res[f"q_{end}_mvar"])
            loading.append((s_mva / net[table]["rating_mva"]).to_numpy(dtype=float))
    return float(np.max(np.concatenate(loading)))


# --------------------------------------------------------------------------------------------
# solving
# --------------------------------------------------------------------------------------------


def solve_period(net: pp.pandapowerNet, init: str | Sequence[str] = ("flat", "pf"),
                 options: OpfOptions | None = None) -> dict[str, Any]:
    """Solve one period's OPF in place, trying each starting point in ``init`` until one converges.

    Parameters
    ----------
    net : pandapower.pandapowerNet
        From :func:`build_opf_net` (its element names identify the slack, NSP and shedding units).
    init : str or sequence of str
        pandapower starting points, tried in order: ``"results"`` (the voltages of the results
        already on ``net``: a warm start from the previous period), ``"flat"``, ``"pf"``.
    options : OpfOptions, optional
        Solver tolerances and iteration limit, and the NSP reporting threshold.

    Returns
    -------
    dict
        One row of :func:`solve_day` without ``t``: the results read from pandapower's result
        tables if a start converged, else ``converged=False`` and every result NaN; ``error``
        names each start that failed and why (empty if the first converged). Results from an
        earlier solve are never reported.
    """
    options = options or OpfOptions()
    inits = [init] if isinstance(init, str) else list(init)
    bad = [i for i in inits if i not in ("results", "flat", "pf")]
    if not inits or bad:
        raise ValueError(f"init = {init!r}: each start must be one of 'results', 'flat', 'pf'")
    # the fixed load; a cap net's controllable caps (kind "cap") are results, read from res_load
    pd_mw = float(net.load.loc[net.load["kind"] != "cap", "p_mw"].sum())
    pem_mw = float(net.load.loc[net.load["kind"] == "ev", "p_mw"].sum())
    row: dict[str, Any] = {"load_factor": net.get("evgrid_load_factor", math.nan), "pd_mw": pd_mw,
                           "pem_mw": pem_mw, **dict.fromkeys(_RESULT_COLUMNS, math.nan),
                           "nsp_bus": pd.NA, "converged": False, "init": "", "solve_s": 0.0, "error": ""}
    errors = []
    start = time.perf_counter()
    for how in inits:
        try:
            pp.runopp(net, init=how, numba=False, calculate_voltage_angles=True,
                      OPF_FLOW_LIM=_FLOW_LIMIT_CURRENT, OPF_VIOLATION=options.feasibility_tol_pu,
                      PDIPM_MAX_IT=options.max_iterations)
            if not net.get("OPF_converged", False):
                raise RuntimeError("pandapower reports OPF_converged = False")
            row.update(_read_results(net, pd_mw, options))
        except Exception as err:  # any failure of one start is recorded and the next start tried
            errors.append(f"{how}: {type(err).__name__}: {err}")
            continue
        row.update(converged=True, init=how)
        break
    row["solve_s"] = time.perf_counter() - start
    row["error"] = "; ".join(errors)
    return row


def _read_results(net: pp.pandapowerNet, pd_mw: float, options: OpfOptions) -> dict[str, Any]:
    """The period's results from pandapower's result tables (only after a converged solve)."""
    fixed = (net.load["kind"] != "cap").to_numpy()
    fixed_res = float(net.res_load.loc[fixed, "p_mw"].sum())
    if not math.isclose(fixed_res, pd_mw, rel_tol=0, abs_tol=1e-6):
        raise RuntimeError(f"result tables hold a load of {fixed_res} MW, the period {pd_mw} MW (stale results?)")
    load_res = float(net.res_load["p_mw"].sum())  # with a cap net's caps
    name = net.sgen["name"]
    nsp_mw = float(net.res_sgen.loc[name == _NSP_NAME, "p_mw"].sum())
    shed_mw = float(net.res_sgen.loc[name.str.startswith(_SHED_PREFIX), "p_mw"].sum())
    gen2 = net.gen.index[net.gen["name"] == f"gen_bus{_GEN2_BUS}"]
    generation = float(net.res_ext_grid["p_mw"].sum() + net.res_gen["p_mw"].sum())
    losses = generation + nsp_mw + shed_mw - load_res
    branch = float(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum() + net.res_shunt["p_mw"].sum())
    nsp_bus = int(net.bus.at[int(net.sgen.loc[name == _NSP_NAME, "bus"].iloc[0]), "name"])
    return {
        "p_slack_mw": float(net.res_ext_grid["p_mw"].sum()),
        "q_slack_mvar": float(net.res_ext_grid["q_mvar"].sum()),
        "p_gen2_mw": float(net.res_gen.loc[gen2, "p_mw"].sum()),
        "nsp_mw": nsp_mw,
        "nsp_bus": nsp_bus if nsp_mw > options.nsp_report_mw else 0,
        "shed_mw": shed_mw,
        "losses_mw": losses,
        "branch_losses_mw": branch,
        "balance_residual_mw": losses - branch,
        "vm_min_pu": float(net.res_bus["vm_pu"].min()),
        "vm_max_pu": float(net.res_bus["vm_pu"].max()),
        **_bus_voltages(net),
        "branch_loading_max": _branch_loading_max(net),
        "objective": float(net.res_cost),
    }


def _bus_voltages(net: pp.pandapowerNet) -> dict[str, float]:
    """``vm_bus<k>_pu``: each bus's voltage magnitude (p.u.) from the solved flows, by IEEE number."""
    index = _bus_index(net)
    if sorted(index) != list(BUSES):
        raise ValueError(f"expected buses {list(BUSES)}, found {sorted(index)}")
    vm = net.res_bus["vm_pu"]
    return {f"vm_bus{bus}_pu": float(vm.at[index[bus]]) for bus in BUSES}


def _pem_wide(pem_by_bus_t: pd.DataFrame | None) -> pd.DataFrame:
    """P^EM as a (t = 1..48) x (load bus) table of finite MW; zeros when None."""
    periods = pd.RangeIndex(1, N_PERIODS + 1, name="t")
    if pem_by_bus_t is None:
        return pd.DataFrame(0.0, index=periods, columns=list(LOAD_BUSES))
    if not isinstance(pem_by_bus_t, pd.DataFrame):
        raise ValueError(f"pem_by_bus_t must be a pandas DataFrame or None, found {type(pem_by_bus_t).__name__}")
    frame = pem_by_bus_t
    if {"bus", "t", "pem_mw"} <= set(frame.columns):
        if frame.duplicated(["bus", "t"]).any():
            dup = frame.loc[frame.duplicated(["bus", "t"]), ["bus", "t"]].iloc[0].tolist()
            raise ValueError(f"pem_by_bus_t: (bus, t) = {tuple(dup)} appears more than once "
                             "(filter one scenario and sample first)")
        frame = frame.pivot(index="t", columns="bus", values="pem_mw")
    bad_buses = [b for b in frame.columns if b not in LOAD_BUSES]
    if bad_buses:
        raise ValueError(f"pem_by_bus_t: bus {bad_buses} is not a load bus; allowed {list(LOAD_BUSES)}")
    if sorted(frame.index.tolist()) != list(periods) or frame.index.duplicated().any():
        raise ValueError(f"pem_by_bus_t: periods must be t = 1..{N_PERIODS} once each, "
                         f"found {len(frame.index)} rows from {frame.index.min()} to {frame.index.max()}")
    values = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    missing = values.isna() | ~np.isfinite(values)
    if missing.any().any():
        t, bus = missing.stack()[lambda s: s].index[0]
        raw = frame.at[t, bus]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        raise ValueError(f"pem_by_bus_t: P^EM at bus {bus}, t = {t} is {raw!r}; "
                         "every value must be a finite number (MW)")
    return values.reindex(index=periods, columns=list(LOAD_BUSES), fill_value=0.0)


def _day_load_factor(load_factor: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if load_factor is None:
        return read_load_factor()
    values = np.asarray(load_factor, dtype=float)
    if values.shape != (N_PERIODS,):
        raise ValueError(f"load_factor has shape {values.shape}: it must hold {N_PERIODS} values, one per period")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        t = int(np.flatnonzero(~np.isfinite(values) | (values < 0))[0]) + 1
        raise ValueError(f"load_factor at t = {t} is {values[t - 1]}: every value must be finite and >= 0")
    return values


def solve_day(pem_by_bus_t: pd.DataFrame | None = None, options: OpfOptions | None = None,
              load_factor: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Solve the CEVCM OPF of Eqs. (43)-(53) for the 48 half hours of one day.

    Each period is an independent OPF. One net is built for the day and its loads updated per
    period, so that period t can start from period t-1's solution (``"results"``, offered only
    when t-1 converged). The starts of ``options.inits`` are tried in order (default: flat, then
    that warm start, then a power flow; see the module docstring), and a period that no start
    solves is reported as failed (``converged`` False, results NaN, ``error`` says why), never
    copied from the period before.

    Parameters
    ----------
    pem_by_bus_t : pandas.DataFrame, optional
        P^EM_{k,t} (MW): either wide (index t = 1..48, one column per load bus, IEEE numbers) or
        long (columns ``bus``, ``t``, ``pem_mw``, e.g. one scenario and sample of
        :func:`~evgrid.papers.villanueva2025.authors.read_pem_profiles`). Buses left out have
        none; None is the day without EVs.
    options : OpfOptions, optional
    load_factor : sequence of 48 floats, optional
        LF_t; default :func:`read_load_factor`.

    Returns
    -------
    pandas.DataFrame
        One row per period, columns :data:`DAY_COLUMNS`: ``t``; ``load_factor``; ``pd_mw`` the
        total load incl. EVs (an input, so known for failed periods too) and ``pem_mw`` its EV
        part; ``p_slack_mw``, ``q_slack_mvar``, ``p_gen2_mw``; ``nsp_mw`` (bus-14 unit) and
        ``nsp_bus`` (0 without NSP); ``shed_mw`` (guard); ``losses_mw`` = generation + NSP +
        shed - load; ``branch_losses_mw`` = sum of line and transformer losses (and shunt P) of
        the solved flows, ``balance_residual_mw`` their difference; ``vm_min_pu``,
        ``vm_max_pu`` over the buses and ``vm_bus1_pu`` ... ``vm_bus14_pu`` each bus's voltage
        magnitude (:data:`VM_BUS_COLUMNS`); ``branch_loading_max`` = max |S| / S^up; ``objective``; ``converged``,
        ``init`` (the start that converged), ``solve_s`` (all attempts), ``error`` (why each
        failed start failed).

    Raises
    ------
    ValueError
        If ``load_factor`` does not hold 48 finite values >= 0, or ``pem_by_bus_t`` has an unknown
        bus, missing or repeated periods, or a non-finite value.
    """
    options = options or OpfOptions()
    lf = _day_load_factor(load_factor)
    pem = _pem_wide(pem_by_bus_t)
    net = build_opf_net(float(lf[0]), pem.loc[1].to_dict(), options)
    rows = []
    previous_converged = False
    for t in range(1, N_PERIODS + 1):
        _set_period(net, float(lf[t - 1]), pem.loc[t].to_dict())
        inits = [i for i in options.inits if i != "results" or previous_converged]
        if not inits:  # only "results" was asked for, and there is nothing to start from
            inits = ["flat"]
        row = solve_period(net, inits, options)
        previous_converged = bool(row["converged"])
        rows.append({"t": t, **row})
    day = pd.DataFrame(rows)[list(DAY_COLUMNS)]
    day["nsp_bus"] = day["nsp_bus"].astype("Int64")
    return day


def check_power_balance(day: pd.DataFrame, tol_mw: float = 1e-6) -> float:
    """Check generation + NSP + shed = load + losses in every solved period, from the flows.

    ``losses_mw`` (the injections' imbalance) must equal the line and transformer losses summed
    from pandapower's result tables (``branch_losses_mw``) within ``tol_mw``.

    Returns
    -------
    float
        The largest |residual| over the converged periods (MW); 0 if none converged.

    Raises
    ------
    ValueError
        Naming the periods whose residual exceeds ``tol_mw``.
    """
    solved = day[day["converged"].astype(bool)]
    residual = (solved["losses_mw"] - solved["branch_losses_mw"]).abs()
    bad = solved.loc[residual > tol_mw, "t"].tolist()
    if bad:
        raise ValueError(f"power balance off by more than {tol_mw} MW at t = {bad} "
                         f"(largest {residual.max():.3g} MW)")
    return float(residual.max()) if len(residual) else 0.0


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def day_metrics(day: pd.DataFrame) -> dict[str, float]:
    """One day's rows of the paper's Table 3 (and Table 5), from a :func:`solve_day` result.

    Definitions (Delta t = 0.5 h; notes §4, Table 3):

    * ``energy_demand_mwh`` = sum_t Pd_t Delta t (load incl. EVs, Eq. 43);
    * ``peak_load_mw`` = max_t Pd_t;
    * ``load_factor`` = E / (24 h x peak) (the paper's "power factor" row);
    * ``energy_supplied_mwh`` = sum_t (P_slack + P_gen2) Delta t (buses 1 and 2 only);
    * ``losses_mwh`` = supplied - demand, the paper's "losses", which *exclude* the NSP;
    * ``losses_true_mwh`` = sum_t (generation + NSP + shed - load) Delta t, the network losses;
    * ``nse_mwh`` = sum_t NSP_t Delta t; ``max_nsp_mw`` = max_t NSP_t; ``nsp_bus`` the bus
      that supplied it (0 if none: the paper's "NSP Slash" row);
    * ``shed_mwh`` = sum_t shed_t Delta t (the guard; 0 in every run of the paper);
    * ``failed_periods``: periods no start solved. Any failed period makes every result
      sum NaN (demand and peak stay known): a failure is reported, not filled.
    """
    def total(column: str) -> float:
        return float(day[column].sum(skipna=False) * DT_H)

    demand = total("pd_mw")
    peak = float(day["pd_mw"].max())
    supplied = float((day["p_slack_mw"] + day["p_gen2_mw"]).sum(skipna=False) * DT_H)
    buses = sorted({int(b) for b in day["nsp_bus"].dropna() if int(b) != 0})
    return {
        "energy_demand_mwh": demand,
        "peak_load_mw": peak,
        "load_factor": demand / (24.0 * peak) if peak > 0 else math.nan,
        "energy_supplied_mwh": supplied,
        "losses_mwh": supplied - demand,
        "losses_true_mwh": total("losses_mw"),
        "nse_mwh": total("nsp_mw"),
        "max_nsp_mw": float(day["nsp_mw"].max(skipna=False)),
        "nsp_bus": float(buses[0]) if len(buses) == 1 else (0.0 if not buses else math.nan),
        "shed_mwh": total("shed_mw"),
        "failed_periods": float((~day["converged"].astype(bool)).sum()),
    }


# --------------------------------------------------------------------------------------------
# the authors' profiles, and many days
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OpfDay:
    """One day to solve: a label, its P^EM profile (as :func:`solve_day` takes it) and its load factor.

    ``pem_mw`` None is the day without EVs; ``load_factor`` None the dataset's.
    """

    label: str
    pem_mw: pd.DataFrame | None = None
    load_factor: tuple[float, ...] | None = None


def authors_day(scenario: str, sample: str) -> OpfDay:
    """The authors' P^EM profiles of one scenario and sample, as fed to their OPF, as an :class:`OpfDay`.

    Parameters
    ----------
    scenario : {"Sc1", "Sc2", "Sc3", "Sc3-CR"}
    sample : {"min", "max"}

    Raises
    ------
    ValueError
        If ``scenario`` or ``sample`` is unknown.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario = {scenario!r}: allowed {list(SCENARIOS)}")
    if sample not in SAMPLES:
        raise ValueError(f"sample = {sample!r}: allowed {list(SAMPLES)}")
    pem = read_pem_profiles()
    rows = pem[(pem["scenario"] == scenario) & (pem["sample"] == sample)]
    return OpfDay(label=f"{scenario} {sample}", pem_mw=rows[["bus", "t", "pem_mw"]].reset_index(drop=True))


def replay_authors(scenario: str, sample: str, options: OpfOptions | None = None) -> pd.DataFrame:
    """Solve the CEVCM day on the authors' own P^EM profiles (``pem_mw`` of ``pem_profiles.csv``).

    The authors' OPF took exactly these profiles (Table 3 for Sc1-Sc3, Table 5 for Sc3-CR);
    their energy demand is the no-EV day's 5486.08 MWh plus the profiles' daily energy
    (Table 2/4 column sums), except where they copied failed periods.

    Returns
    -------
    pandas.DataFrame
        As :func:`solve_day`.
    """
    return _solve_case((authors_day(scenario, sample), options or OpfOptions()))


def _solve_case(task: tuple[OpfDay, OpfOptions]) -> pd.DataFrame:
    """One :func:`solve_days` task (module level, so that it pickles)."""
    case, options = task
    return solve_day(case.pem_mw, options, load_factor=case.load_factor)


def solve_days(cases: Sequence[OpfDay], options: OpfOptions | None = None,
               parallel: ParallelOptions | Mapping[str, Any] | None = None, *,
               progress: bool = False) -> dict[str, pd.DataFrame]:
    """Solve many days (each a :func:`solve_day`), through :func:`evgrid.core.parallel.map_tasks`.

    Parameters
    ----------
    cases : sequence of OpfDay
        Days with unique labels (e.g. ``[OpfDay("no EVs"), authors_day("Sc1", "min"), ...]``).
    options : OpfOptions, optional
    parallel : ParallelOptions or mapping, optional
        Where the days run; None runs them serially in this process (``{"workers": 1}``). Pass
        :func:`evgrid.core.parallel.load_parallel` to use the project's setting.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to pandas.DataFrame
        Label -> the day's :func:`solve_day` result, in the order of ``cases``.
    """
    options = options or OpfOptions()
    labels = [case.label for case in cases]
    if len(set(labels)) != len(labels):
        raise ValueError(f"case labels must be unique: {labels}")
    results = map_tasks(_solve_case, [(case, options) for case in cases],
                        options=parallel if parallel is not None else {"workers": 1},
                        desc="CEVCM days", progress=progress)
    return dict(zip(labels, results, strict=True))


# --------------------------------------------------------------------------------------------
# the DNO's caps (Eqs. 54-55)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _base_loads() -> tuple[tuple[int, float], ...]:
    """(IEEE load bus, Pd_k in MW) of the network data, in :data:`LOAD_BUSES` order."""
    net = load_ieee14(variant="villanueva2025").net
    number = {v: k for k, v in _bus_index(net).items()}
    pd_k = {number[int(b)]: float(p) for b, p in zip(net.load["bus"], net.load["p_mw"], strict=True)}
    return tuple((bus, pd_k[bus]) for bus in LOAD_BUSES)


def _set_cap_period(net: pp.pandapowerNet, load_factor: float, options: OpfOptions) -> None:
    """One period's no-EV loads and the caps' bounds floor x Pd_{k,t} <= cap <= Pd_{k,t} (Eq. 55), in place."""
    caps = net.load.index[net.load["kind"] == "cap"]
    base = net.load[net.load["kind"] == "base"].set_index("ieee_bus")["pd_base_mw"]
    pd_k = base.loc[net.load.loc[caps, "ieee_bus"]].to_numpy(dtype=float) * load_factor
    net.load.loc[caps, "max_p_mw"] = pd_k
    net.load.loc[caps, "min_p_mw"] = options.cap_floor_share * pd_k
    net.load.loc[caps, "p_mw"] = options.cap_floor_share * pd_k
    net.load.loc[caps, ["q_mvar", "min_q_mvar", "max_q_mvar"]] = 0.0
    _set_period(net, load_factor, {})


def build_cap_net(load_factor: float, options: OpfOptions | None = None) -> pp.pandapowerNet:
    """A fresh pandapower net holding the DNO's cap OPF of one period, Eqs. (54)-(55) (notes §3.3).

    The net of :func:`build_opf_net` on the **no-EV** load (P^EM = 0), plus one controllable load
    per load bus, ``kind="cap"``, named ``cap_bus<k>``: P^EM_cap,k in [``cap_floor_share`` x
    Pd_k LF, Pd_k LF] (Eq. 55; the floor is inferred), Q = 0, cost -``cap_value_per_mw`` per MW,
    so that the OPF maximises sum_k cap_k (inferred). The slack, the bus-2 generator, the NSP unit
    and the shedding guards keep their costs and limits: with slack cost < cap value < C_pen the
    firm generation (272.4 MW) runs to its limit and the NSP and the guards stay at 0 (see the
    module docstring).

    Parameters
    ----------
    load_factor : float
        LF_t: the no-EV loads are Pd_k LF_t, Qd_k LF_t.
    options : OpfOptions, optional

    Raises
    ------
    ValueError
        If ``load_factor`` is not a finite number >= 0.
    """
    options = options or OpfOptions()
    load_factor = _check_load_factor(load_factor)
    net = build_opf_net(load_factor, None, options)
    index = _bus_index(net)
    for bus in LOAD_BUSES:
        i = pp.create_load(net, index[bus], p_mw=0.0, q_mvar=0.0, min_p_mw=0.0, max_p_mw=0.0, min_q_mvar=0.0,
                           max_q_mvar=0.0, controllable=True, name=f"{_CAP_PREFIX}{bus}")
        net.load.loc[i, ["ieee_bus", "kind", "pd_base_mw", "qd_base_mvar"]] = [bus, "cap", 0.0, 0.0]
        pp.create_poly_cost(net, i, "load", cp1_eur_per_mw=-options.cap_value_per_mw)
    net.load["ieee_bus"] = net.load["ieee_bus"].astype(int)
    net.load["controllable"] = (net.load["kind"] == "cap").to_numpy()
    _set_cap_period(net, load_factor, options)
    return net


def solve_caps(options: OpfOptions | None = None, load_factor: Sequence[float] | np.ndarray | None = None,
               *, periods: Sequence[int] | None = None) -> pd.DataFrame:
    """The DNO's caps P^EM_cap,k,t for every half hour: the cap OPF of :func:`build_cap_net`, per period.

    Periods are solved as in :func:`solve_day` (one net, the starts of ``options.inits``, a
    warm start only after a converged period), and a period that no start solves is reported as
    failed (``converged`` False, its caps and results NaN), never copied.

    Parameters
    ----------
    options : OpfOptions, optional
    load_factor : sequence of 48 floats, optional
        LF_t; default :func:`read_load_factor`.
    periods : sequence of int, optional
        The periods t (1..48) to solve, in increasing order; default all (a test's shortcut).

    Returns
    -------
    pandas.DataFrame
        One row per period and load bus, columns :data:`CAP_COLUMNS`: ``t``, ``bus``; ``pd_mw``
        the bus's no-EV load Pd_k LF_t, ``cap_min_mw`` its floor, ``cap_mw`` the cap; then the
        period's results, repeated on each of its bus rows, as in :func:`solve_day`: ``losses_mw``
        = generation + NSP + shed - no-EV load - sum_k cap (the network losses), ``nsp_mw`` and
        ``shed_mw`` (0 unless the floors alone exceed the firm generation), ``converged``, ...

    Raises
    ------
    ValueError
        If ``load_factor`` does not hold 48 finite values >= 0, or ``periods`` is not an
        increasing sequence of periods 1..48.
    """
    options = options or OpfOptions()
    lf = _day_load_factor(load_factor)
    ts = list(range(1, N_PERIODS + 1)) if periods is None else [int(t) for t in periods]
    if not ts or any(b <= a for a, b in zip(ts, ts[1:], strict=False)) or ts[0] < 1 or ts[-1] > N_PERIODS:
        raise ValueError(f"periods = {periods!r}: an increasing sequence of periods in 1..{N_PERIODS}")
    net = build_cap_net(float(lf[ts[0] - 1]), options)
    caps = net.load.index[net.load["kind"] == "cap"]
    buses = net.load.loc[caps, "ieee_bus"].astype(int).tolist()
    rows = []
    previous_converged = False
    for t in ts:
        _set_cap_period(net, float(lf[t - 1]), options)
        inits = [i for i in options.inits if i != "results" or previous_converged] or ["flat"]
        period = solve_period(net, inits, options)
        previous_converged = bool(period["converged"])
        cap_mw = (net.res_load.loc[caps, "p_mw"].to_numpy(dtype=float) if previous_converged
                  else np.full(len(caps), math.nan))
        period.pop("pem_mw")
        period.pop("nsp_bus")
        period.pop("pd_mw")
        for k, bus in enumerate(buses):
            rows.append({"t": t, "bus": bus, "pd_mw": float(net.load.at[caps[k], "max_p_mw"]),
                         "cap_min_mw": float(net.load.at[caps[k], "min_p_mw"]), "cap_mw": float(cap_mw[k]),
                         **period})
    return pd.DataFrame(rows)[list(CAP_COLUMNS)]


def authors_caps() -> pd.DataFrame:
    """The authors' caps P^EM_cap,k,t, as their Sc3-CR runs took them (``cap_mw`` of the capped runs' inputs).

    Each Sc3-CR run's ``psyscap_mw`` is its bus's cap vector (``cap_includes_system_load`` False,
    Eqs. 56-57); the min and max runs of a bus hold the same vector (checked), from the DNO's one
    OPF on the no-EV load (``pem_cap_const.txt``).

    Returns
    -------
    pandas.DataFrame
        Columns ``t``, ``bus``, ``pd_mw`` (the bus's no-EV load Pd_k LF_t of the network data and
        :func:`read_load_factor`: not in the authors' file, beside it for comparisons), ``cap_mw``;
        sorted by t, then bus.

    Raises
    ------
    ValueError
        If a bus's min and max runs hold different caps, or a run is not a capped one.
    """
    from evgrid.papers.villanueva2025.authors import load_run

    lf = read_load_factor()
    frames = []
    for bus, pd_k in _base_loads():
        vectors = []
        for sample in SAMPLES:
            run = load_run(f"{_CAP_SCENARIO}_{sample}_bus{bus:02d}")
            if run.cap_includes_system_load:
                raise ValueError(f"{_CAP_SCENARIO}_{sample}_bus{bus:02d}: not a capped run (its cap includes Psys)")
            vectors.append(np.asarray(run.cap_mw, dtype=float))
        if not np.array_equal(vectors[0], vectors[1]):
            raise ValueError(f"bus {bus}: the {_CAP_SCENARIO} min and max runs hold different caps")
        periods = np.arange(1, len(vectors[0]) + 1)
        frames.append(pd.DataFrame({"t": periods, "bus": bus, "pd_mw": pd_k * lf[periods - 1],
                                    "cap_mw": vectors[0]}))
    return pd.concat(frames).sort_values(["t", "bus"], kind="stable").reset_index(drop=True)


def cap_room_share(caps: pd.DataFrame, floor_share: float = 0.025) -> pd.Series:
    """How much of its room above the floor each bus's cap takes, on average over the periods.

    The room of bus k in period t is (1 - floor) Pd_{k,t}, the share it takes
    (cap - floor Pd_{k,t}) / ((1 - floor) Pd_{k,t}); sorting the buses by its mean over t gives
    the order in which the cap OPF hands the room out (notes §3.3: 2, 5, 6, 11, 9, 4, 12 for the
    authors' caps).

    Parameters
    ----------
    caps : pandas.DataFrame
        Columns ``t``, ``bus``, ``pd_mw``, ``cap_mw`` (:func:`solve_caps` or :func:`authors_caps`);
        periods with NaN caps are left out.
    floor_share : float

    Returns
    -------
    pandas.Series
        Mean share (0 = always at the floor, 1 = always Pd_{k,t}) by bus, largest first (ties by bus).
    """
    solved = caps[caps["cap_mw"].notna() & (caps["pd_mw"] > 0)]
    share = (solved["cap_mw"] - floor_share * solved["pd_mw"]) / ((1.0 - floor_share) * solved["pd_mw"])
    mean = share.groupby(solved["bus"]).mean().rename("room_share")
    order = sorted(mean.index, key=lambda b: (-round(float(mean[b]), 9), b))
    return mean.loc[order]
