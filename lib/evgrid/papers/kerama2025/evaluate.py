"""Kerama (2025) Table 2, AC-verified: the metrics of a schedule, baseline or optimised.

Table 2 of Kerama (2025) compares uncontrolled charging with the coordinated
schedule on four metrics: peak feeder load (kW), system energy cost ($),
worst-case constraint violations and aggregator profit ($). Here every
metric comes from AC power flows (:func:`evgrid.analysis.acverify.ac_time_series`) of
the schedule, not from the model's own linearised network, so the baseline
and the model are judged by the same yardstick and the model's DistFlow
approximation is itself checked (:func:`distflow_vs_ac`).

A schedule is a tidy table (:data:`~evgrid.papers.kerama2025.case.SCHEDULE_COLUMNS`),
one row per scenario, aggregator and period: what the aggregator imports and
exports at its bus and the energy its batteries cycle (for the degradation
cost of Eq. 8). It comes from a solved model
(:func:`evgrid.papers.kerama2025.model.schedule_from_model`) or from the
uncontrolled baseline (:func:`baseline_schedule`).

Where the paper is silent we choose, and say so:

* **Worst case.** The paper counts "worst-case constraint violations" without
  defining the worst case. We take the two corners of the robust box that
  :func:`evgrid.papers.kerama2025.model.robust_voltage_margins` protects against: loads
  high and PV low (lowest voltages) and loads low and PV high (highest
  voltages), and count every (scenario, corner, hour, bus) outside the
  voltage limits, plus every (scenario, corner, hour, line) above its rating
  (none on the unrated 33-bus feeder).
* **Peak and cost** are those of the forecast realisation, the one the
  schedule was planned for, with the AC substation import (losses included).
* **Profit** is Eq. (8) with the bids priced at the time-of-use tariff and
  the degradation cost on the throughput, as in
  :func:`evgrid.papers.kerama2025.model.declare_aggregator`; the baseline only buys, so
  its profit is negative (the paper's positive baseline profit cannot come
  from Eq. 8 without a retail revenue the paper does not state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from evgrid.analysis.acverify import AcSeries, ac_time_series
from evgrid.formulations.fleet import net_power_by, uncontrolled_charging
from evgrid.papers.kerama2025.case import DT_H, N_PERIODS, SCHEDULE_COLUMNS, KeramaCase
from evgrid.papers.kerama2025.model import linear_state, schedule_from_model

__all__ = [
    "REALISATIONS",
    "WORST_CASES",
    "Metrics",
    "aggregator_profit_usd",
    "baseline_schedule",
    "distflow_vs_ac",
    "evaluate",
    "linear_vs_ac",
    "net_load_tables",
]

Realisation = Literal["forecast", "low_voltage", "high_voltage"]
#: Load/PV realisations: the forecast and the two corners of the robust box.
REALISATIONS: tuple[Realisation, ...] = ("forecast", "low_voltage", "high_voltage")
#: The realisations whose violations count as worst-case.
WORST_CASES: tuple[Realisation, ...] = ("low_voltage", "high_voltage")


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------


def baseline_schedule(
    case: KeramaCase, *, charge_to: Literal["full", "required"] = "full"
) -> pd.DataFrame:
    """Uncontrolled charging, the baseline of Kerama's Table 2.

    Every EV charges at full power from arrival until it is full
    (:func:`evgrid.formulations.fleet.uncontrolled_charging`), and never discharges; each
    aggregator imports the sum of its EVs' charging power. With
    ``charge_to="required"`` the EVs stop at their required energy instead,
    so that the baseline delivers the same energy as an optimised schedule
    (which has no reason to charge beyond it).
    """
    if charge_to not in ("full", "required"):
        raise ValueError(f"charge_to={charge_to!r}: allowed 'full' or 'required'")
    frames = []
    for s in case.scenarios:
        fleet = case.fleets[s]
        if charge_to == "required":
            fleet = fleet.assign(e_max_kwh=fleet["e_req_kwh"])
        plan = uncontrolled_charging(fleet, N_PERIODS, DT_H)
        b_imp = net_power_by(plan, fleet, "aggregator", N_PERIODS).reindex(
            case.aggregators, fill_value=0.0
        )
        long = b_imp.stack().rename("b_imp_kw").rename_axis(["aggregator", "t"]).reset_index()
        frames.append(
            long.assign(
                scenario=s,
                b_exp_kw=0.0,
                throughput_kwh=long["b_imp_kw"] * DT_H,  # charging only: p_ch dt
            )
        )
    out = pd.concat(frames, ignore_index=True)[SCHEDULE_COLUMNS]
    return out.astype({"scenario": int, "aggregator": int, "t": int})


# --------------------------------------------------------------------------
# Net loads and AC power flows
# --------------------------------------------------------------------------


def net_load_tables(
    case: KeramaCase, schedule: pd.DataFrame, scenario: int, realisation: Realisation
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Net load of every bus (kW, kvar; ``bus x t``) of one scenario and realisation.

    Load minus PV plus each aggregator's net import ``b_imp - b_exp`` at its
    bus. ``realisation``:

    * ``"forecast"``: the forecast loads and the scenario's PV;
    * ``"low_voltage"``: loads ``x (1 + gamma_load)``, PV ``x (1 - gamma_pv)``;
    * ``"high_voltage"``: loads ``x (1 - gamma_load)``, PV ``x (1 + gamma_pv)``.

    Reactive load scales with the active load; PV and EVs run at unity power
    factor, as in the model.
    """
    params = case.params
    factors = {
        "forecast": (1.0, 1.0),
        "low_voltage": (1.0 + params.gamma_load, 1.0 - params.gamma_pv),
        "high_voltage": (1.0 - params.gamma_load, 1.0 + params.gamma_pv),
    }
    if realisation not in factors:
        raise ValueError(f"realisation={realisation!r}: allowed {list(factors)}")
    if scenario not in case.pv_kw:
        raise ValueError(f"scenario={scenario!r}: the case has scenarios {case.scenarios}")
    f_load, f_pv = factors[realisation]
    rows = schedule[schedule["scenario"] == scenario]
    ev = (
        rows.assign(
            bus=rows["aggregator"].map(case.aggregator_bus),
            p_kw=rows["b_imp_kw"] - rows["b_exp_kw"],
        )
        .pivot_table(index="bus", columns="t", values="p_kw", aggfunc="sum")
        .reindex(index=case.load_kw.index, columns=case.load_kw.columns, fill_value=0.0)
        .fillna(0.0)
    )
    p_kw = f_load * case.load_kw - f_pv * case.pv_kw[scenario] + ev
    q_kvar = f_load * case.load_kvar
    return p_kw, q_kvar


def _ac(case: KeramaCase, schedule: pd.DataFrame, scenario: int, realisation: Realisation):
    p_kw, q_kvar = net_load_tables(case, schedule, scenario, realisation)
    return ac_time_series(case.network, p_kw, q_kvar, v_source_pu=case.params.v_source_pu)


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """Kerama Table 2 metrics of one schedule, from AC power flows.

    Expectations are over the scenarios with their probabilities.

    Attributes
    ----------
    peak_kw_expected, peak_kw_max : float
        Peak substation import over the day (kW), forecast realisation:
        expected and largest over the scenarios.
    energy_cost_usd : float
        Expected cost of the substation import at the time-of-use price.
    aggregator_profit_usd : float
        Expected total profit of the aggregators, Eq. (8).
    losses_kwh : float
        Expected network losses over the day, forecast realisation.
    worst_case_violations : int
        Voltage plus thermal violations in the worst-case realisations.
    voltage_violations_worst, thermal_violations_worst : int
        The two parts of ``worst_case_violations``.
    voltage_violations_forecast : int
        Voltage violations at the forecast realisation.
    vm_min_pu_worst, vm_max_pu_worst : float
        Lowest and highest bus voltage over the worst-case realisations.
    violations : pandas.DataFrame
        Every voltage violation, all realisations: ``scenario``,
        ``realisation``, then the columns of
        :meth:`evgrid.analysis.acverify.AcSeries.voltage_violations`.
    thermal : pandas.DataFrame
        Every thermal violation, all realisations, likewise.
    per_scenario : pandas.DataFrame
        By scenario (forecast realisation): ``probability``, ``peak_kw``,
        ``energy_cost_usd``, ``losses_kwh``, ``aggregator_profit_usd``.
    series : dict
        The AC results, keyed by ``(scenario, realisation)``.
    """

    peak_kw_expected: float
    peak_kw_max: float
    energy_cost_usd: float
    aggregator_profit_usd: float
    losses_kwh: float
    worst_case_violations: int
    voltage_violations_worst: int
    thermal_violations_worst: int
    voltage_violations_forecast: int
    vm_min_pu_worst: float
    vm_max_pu_worst: float
    violations: pd.DataFrame = field(repr=False)
    thermal: pd.DataFrame = field(repr=False)
    per_scenario: pd.DataFrame = field(repr=False)
    series: dict[tuple[int, str], AcSeries] = field(repr=False)

    def as_table(self) -> pd.DataFrame:
        """One row per metric: ``metric``, ``value``, ``unit``."""
        rows = [
            ("peak feeder load (expected)", self.peak_kw_expected, "kW"),
            ("peak feeder load (worst scenario)", self.peak_kw_max, "kW"),
            ("system energy cost (expected)", self.energy_cost_usd, "$"),
            ("aggregator profit (expected)", self.aggregator_profit_usd, "$"),
            ("network losses (expected)", self.losses_kwh, "kWh"),
            ("worst-case constraint violations", self.worst_case_violations, "count"),
            ("worst-case voltage violations", self.voltage_violations_worst, "count"),
            ("worst-case thermal violations", self.thermal_violations_worst, "count"),
            ("voltage violations at the forecast", self.voltage_violations_forecast, "count"),
            ("lowest voltage (worst case)", self.vm_min_pu_worst, "pu"),
            ("highest voltage (worst case)", self.vm_max_pu_worst, "pu"),
        ]
        return pd.DataFrame(rows, columns=["metric", "value", "unit"])


def aggregator_profit_usd(case: KeramaCase, schedule: pd.DataFrame) -> pd.Series:
    """Total aggregator profit of Eq. (8) per scenario (not weighted).

    ``sum_{a,t} price_t (b_exp - b_imp) dt - kappa sum throughput_kwh``: the
    negative of the sum of :func:`evgrid.papers.kerama2025.model.declare_aggregator`'s
    ``cost_usd`` over the aggregators.
    """
    price = pd.Series(case.price_usd_per_kwh, index=list(case.periods))
    kappa = case.params.degradation_usd_per_kwh
    revenue = (
        price.reindex(schedule["t"]).to_numpy()
        * (schedule["b_exp_kw"] - schedule["b_imp_kw"])
        * DT_H
    )
    profit = revenue - kappa * schedule["throughput_kwh"]
    return profit.groupby(schedule["scenario"]).sum().reindex(case.scenarios, fill_value=0.0)


def evaluate(case: KeramaCase, schedule: pd.DataFrame) -> Metrics:
    """Table 2 metrics of ``schedule``, from AC power flows of every scenario and realisation.

    Runs :func:`evgrid.analysis.acverify.ac_time_series` at the substation voltage
    ``case.params.v_source_pu`` for each scenario and each of
    :data:`REALISATIONS`, and checks the voltages against
    ``case.params.vmin_pu`` / ``vmax_pu`` and the lines against their
    ratings. See the module docstring for what each metric means.
    """
    _check_schedule(case, schedule)
    params = case.params
    price = np.asarray(case.price_usd_per_kwh, dtype=float)
    profit = aggregator_profit_usd(case, schedule)
    series: dict[tuple[int, str], AcSeries] = {}
    voltage, thermal, per_scenario = [], [], []
    for k, s in enumerate(case.scenarios):
        for realisation in REALISATIONS:
            ac = _ac(case, schedule, s, realisation)
            series[s, realisation] = ac
            key = {"scenario": s, "realisation": realisation}
            voltage.append(ac.voltage_violations(params.vmin_pu, params.vmax_pu).assign(**key))
            thermal.append(ac.thermal_violations().assign(**key))
        fc = series[s, "forecast"]
        imp = fc.import_kw.to_numpy()
        per_scenario.append(
            {
                "scenario": s,
                "probability": float(case.probability[k]),
                "peak_kw": float(imp.max()),
                "energy_cost_usd": float((price * imp * DT_H).sum()),
                "losses_kwh": float(fc.losses_kw.sum() * DT_H),
                "aggregator_profit_usd": float(profit[s]),
            }
        )
    table = pd.DataFrame(per_scenario).set_index("scenario")
    lead = ["scenario", "realisation"]
    violations = _concat(voltage, lead)
    thermal_frame = _concat(thermal, lead)
    worst = [series[s, r] for s in case.scenarios for r in WORST_CASES]
    n_voltage_worst = int(violations["realisation"].isin(WORST_CASES).sum())
    n_thermal_worst = int(thermal_frame["realisation"].isin(WORST_CASES).sum())
    prob = table["probability"]
    return Metrics(
        peak_kw_expected=float((prob * table["peak_kw"]).sum()),
        peak_kw_max=float(table["peak_kw"].max()),
        energy_cost_usd=float((prob * table["energy_cost_usd"]).sum()),
        aggregator_profit_usd=float((prob * table["aggregator_profit_usd"]).sum()),
        losses_kwh=float((prob * table["losses_kwh"]).sum()),
        worst_case_violations=n_voltage_worst + n_thermal_worst,
        voltage_violations_worst=n_voltage_worst,
        thermal_violations_worst=n_thermal_worst,
        voltage_violations_forecast=int((violations["realisation"] == "forecast").sum()),
        vm_min_pu_worst=float(min(ac.vm_pu.to_numpy().min() for ac in worst)),
        vm_max_pu_worst=float(max(ac.vm_pu.to_numpy().max() for ac in worst)),
        violations=violations,
        thermal=thermal_frame,
        per_scenario=table,
        series=series,
    )


def _concat(frames: list[pd.DataFrame], lead: list[str]) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True)
    return out[lead + [c for c in out.columns if c not in lead]]


def _check_schedule(case: KeramaCase, schedule: pd.DataFrame) -> None:
    missing = [c for c in SCHEDULE_COLUMNS if c not in schedule.columns]
    if missing:
        raise ValueError(f"schedule lacks columns {missing}")
    expected = len(case.scenarios) * len(case.aggregators) * N_PERIODS
    keys = schedule[["scenario", "aggregator", "t"]]
    if keys.duplicated().any() or len(schedule) != expected:
        raise ValueError(
            f"schedule must have one row per scenario, aggregator and period ({expected} rows), "
            f"has {len(schedule)} rows ({int(keys.duplicated().sum())} duplicated)"
        )


# --------------------------------------------------------------------------
# The model's DistFlow against AC
# --------------------------------------------------------------------------


def distflow_vs_ac(model: pyo.ConcreteModel, case: KeramaCase, scenario: int) -> pd.DataFrame:
    """The solved model's DistFlow voltages against the AC power flow of its own schedule.

    The model's schedule (:func:`schedule_from_model`) at the forecast
    realisation of ``scenario`` runs through the AC power flow; its voltages
    are compared with ``sqrt(model.net[scenario].v_sq_pu[bus, t])``. See
    :func:`linear_vs_ac` for the table returned.
    """
    state = linear_state(model, scenario)
    return linear_vs_ac(case, schedule_from_model(model, case), scenario, state)


def linear_vs_ac(
    case: KeramaCase, schedule: pd.DataFrame, scenario: int, state: dict[str, pd.Series]
) -> pd.DataFrame:
    """A schedule's DistFlow state (:func:`linear_state`) against its AC power flow.

    Returns
    -------
    pandas.DataFrame
        One row per (bus, t): ``bus``, ``name``, ``t``, ``vm_pu_model``,
        ``vm_pu_ac``, ``error_pu = vm_pu_model - vm_pu_ac``. ``attrs`` holds
        ``max_abs_error_pu``, ``losses_kwh_model`` (the sum of
        ``p_loss_kw``), ``losses_kwh_ac``, ``losses_error_pct``,
        ``max_abs_losses_error_kw`` (worst hour), ``max_abs_import_error_kw``
        (model ``p_import_kw`` against the AC import, worst hour) and
        ``losses_by_t`` (a table of both per hour).
    """
    ac = _ac(case, schedule[schedule["scenario"] == scenario], scenario, "forecast")
    rows = [
        (b, t, state["vm_pu"][b, t]) for b in case.network.buses["bus"] for t in case.periods
    ]
    frame = pd.DataFrame(rows, columns=["bus", "t", "vm_pu_model"])
    frame.insert(1, "name", frame["bus"].map(ac.bus_name))
    vm_ac = ac.vm_pu.stack()
    frame["vm_pu_ac"] = vm_ac.reindex(pd.MultiIndex.from_frame(frame[["bus", "t"]])).to_numpy()
    frame["error_pu"] = frame["vm_pu_model"] - frame["vm_pu_ac"]
    losses_model, import_model = state["losses_kw"], state["import_kw"]
    by_t = pd.DataFrame(
        {
            "losses_kw_model": losses_model,
            "losses_kw_ac": ac.losses_kw.to_numpy(),
            "import_kw_model": import_model,
            "import_kw_ac": ac.import_kw.to_numpy(),
        }
    ).rename_axis("t")
    loss_model, loss_ac = float(losses_model.sum() * DT_H), float(ac.losses_kw.sum() * DT_H)
    frame.attrs.update(
        {
            "scenario": scenario,
            "max_abs_error_pu": float(frame["error_pu"].abs().max()),
            "losses_kwh_model": loss_model,
            "losses_kwh_ac": loss_ac,
            "losses_error_pct": 100.0 * (loss_model - loss_ac) / loss_ac,
            "max_abs_losses_error_kw": float(
                (by_t["losses_kw_model"] - by_t["losses_kw_ac"]).abs().max()
            ),
            "max_abs_import_error_kw": float(
                (by_t["import_kw_model"] - by_t["import_kw_ac"]).abs().max()
            ),
            "losses_by_t": by_t,
        }
    )
    return frame
