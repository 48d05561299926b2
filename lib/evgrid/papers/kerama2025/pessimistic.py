"""Kerama (2025): the pessimistic bi-level solution over uniform import caps.

The paper's model is *optimistic*: among the schedules that are equally
optimal for the aggregators, the DSO gets the one it likes best. A DSO that
cannot choose the tie must guarantee the network limits whatever tie the
aggregators pick, and pay for the worst one: the pessimistic bi-level problem

    min over caps c  of  max over y in Psi(c)  F(c, y)
    s.t. the network limits hold for every y in Psi(c),

with ``Psi(c)`` the aggregators' optimal schedules at caps ``c`` and ``F``
the DSO's Eq. (1) objective. Its single-level form needs the inner max
dualised for each of the 24 hours that can set the peak and for every bus and
hour of the voltage limits: far beyond paper size. We solve it exactly over a
restricted lever instead, and say so:

* **the lever**: one cap level for every aggregator in every off-peak hour
  (a fraction ``level / (2**cap_bits - 1)`` of each aggregator's bid bound,
  on the same grid as the optimistic model), the other hours uncapped. The
  off-peak block (22-7 h) is where the aggregators are indifferent between
  hours and where the worst tie piles their charging into one hour; a cap
  outside it would only push charging into dearer hours;
* **the worst tie** at each level: :func:`evgrid.papers.kerama2025.ties.worst_tie_schedule`,
  exact for the peak (the energy cost at time-of-use prices is the same for
  every tie up to losses, since ties deliver the same energy in each price
  block);
* **the guarantee**: in the capped hours, the lower voltage limit must hold
  at the low-voltage realisation when every aggregator imports as much as
  its caps and its plugged chargers allow, all at once (a bound on every
  tie, and on every response at all); and the worst tie for the peak must
  pass the AC check of every realisation. Outside the capped hours the
  check is that one tie's: a tie worse for one bus's voltage in an uncapped
  hour is possible in principle (finding it needs one LP per bus and hour),
  and the table says which part of the guarantee holds.

Every level from the lowest at which every fleet can still be served up to
the top of the grid is evaluated by AC power flow
(:func:`evgrid.papers.kerama2025.evaluate.evaluate`); the pessimistic solution is the
guaranteed level with the lowest worst-tie objective.

``python -m evgrid.papers.kerama2025.pessimistic`` reads the ``kerama2025`` section
and writes ``<results_dir>/pessimistic.csv``, evaluating the levels where the
``parallel`` section says (:func:`evgrid.core.parallel.map_tasks`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evgrid.analysis.acverify import ac_time_series
from evgrid.core.config import ConfigError, load_section
from evgrid.core.outputs import write_csv
from evgrid.core.parallel import ParallelOptions, load_parallel, map_tasks, options_from_mapping
from evgrid.core.paths import output_path
from evgrid.core.solvers import InfeasibleModelError
from evgrid.papers.kerama2025.case import SCHEDULE_COLUMNS, KeramaCase, make_instance
from evgrid.papers.kerama2025.evaluate import evaluate, net_load_tables
from evgrid.papers.kerama2025.ties import followers_alone_schedule, worst_tie_schedule

#: Columns of the table :func:`pessimistic_uniform_caps` returns.
COLUMNS = [
    "level",  # grid level 0 .. 2**cap_bits - 1
    "cap_fraction",  # of each aggregator's bid bound
    "servable",  # every aggregator's LP feasible at these caps
    "guaranteed",  # import bound meets the lower voltage limit and the worst tie has no violation
    "bound_low_voltage_violations",  # capped hours: (bus, hour) pairs below vmin at the import bound
    "worst_tie_peak_kw",  # expected over scenarios, AC
    "worst_tie_energy_cost_usd",
    "worst_tie_objective_usd",  # energy cost + alpha x expected peak
    "worst_tie_violations",  # worst-case realisations, AC
    "aggregator_cost_usd",  # expected total cost of the aggregators (minus their Eq. 8 profit)
]


def uniform_caps(case: KeramaCase, level: int) -> pd.DataFrame:
    """Caps (kW, aggregator x t) at grid ``level`` for every aggregator and capped hour."""
    top = 2**case.params.cap_bits - 1
    if not 0 <= level <= top:
        raise ValueError(f"level={level} outside the cap grid 0-{top} (cap_bits={case.params.cap_bits})")
    caps = pd.DataFrame(
        {t: {a: case.b_max_kw[a] for a in case.aggregators} for t in case.periods}
    )
    for a, t in case.free_caps:
        caps.loc[a, t] = case.b_max_kw[a] * level / top
    return caps


def import_bound_schedule(case: KeramaCase, caps_kw: pd.DataFrame) -> pd.DataFrame:
    """Every aggregator importing the most its caps and plugged chargers allow, every hour.

    No schedule within the caps (optimal for the aggregators or not) loads
    any bus more, so it is the worst case for the lower voltage limit
    (voltages fall monotonically with load on a radial feeder). Throughput is
    reported as zero: the schedule is a bound, not a plan.
    """
    rows = []
    for s in case.scenarios:
        for a in case.aggregators:
            fleet = case.fleet(a, s)
            for t in case.periods:
                plugged = (fleet["arrival"] <= t) & (t < fleet["departure"])
                chargers = float(fleet.loc[plugged, "p_max_kw"].sum())
                imp = min(chargers, case.b_max_kw[a], float(caps_kw.loc[a, t]))
                rows.append((s, a, t, imp, 0.0, 0.0))
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


def off_peak_case(case: KeramaCase) -> KeramaCase:
    """``case`` with the DSO's caps restricted to the off-peak hours (``params.cap_hours``)."""
    from dataclasses import replace

    params = case.params
    hours = sorted(
        int(h)
        for h, price in zip(case.clock_hour, case.price_usd_per_kwh, strict=True)
        if price == params.price_offpeak
    )
    return replace(case, params=params.model_copy(update={"cap_hours": hours}))


def low_voltage_violations(case: KeramaCase, schedule: pd.DataFrame, periods) -> int:
    """(bus, period) pairs below ``vmin`` in ``periods`` at the low-voltage realisation, AC."""
    n = 0
    for s in case.scenarios:
        p_kw, q_kvar = net_load_tables(case, schedule, s, "low_voltage")
        ac = ac_time_series(case.network, p_kw, q_kvar, v_source_pu=case.params.v_source_pu)
        bad = ac.voltage_violations(case.params.vmin_pu, case.params.vmax_pu)
        n += int(((bad["kind"] == "under") & bad["period"].isin(list(periods))).sum())
    return n


def evaluate_level(case: KeramaCase, level: int) -> dict:
    """One row of :data:`COLUMNS`: the worst tie and the guarantee at uniform cap ``level``."""
    top = 2**case.params.cap_bits - 1
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(level=level, cap_fraction=level / top, servable=False, guaranteed=False)
    caps = uniform_caps(case, level)
    try:
        _schedule, optimum = followers_alone_schedule(case, caps)
    except InfeasibleModelError:
        return row  # some fleet cannot be served under these caps
    worst = worst_tie_schedule(case, caps, optimum)
    metrics = evaluate(case, worst.schedule)
    capped = sorted({t for _a, t in case.free_caps})
    n_low = low_voltage_violations(case, import_bound_schedule(case, caps), capped)
    alpha = case.params.peak_penalty_usd_per_kw
    prob = dict(zip(case.scenarios, case.probability, strict=True))
    row.update(
        servable=True,
        bound_low_voltage_violations=n_low,
        worst_tie_peak_kw=metrics.peak_kw_expected,
        worst_tie_energy_cost_usd=metrics.energy_cost_usd,
        worst_tie_objective_usd=metrics.energy_cost_usd + alpha * metrics.peak_kw_expected,
        worst_tie_violations=metrics.worst_case_violations,
        aggregator_cost_usd=float(sum(prob[s] * cost for (_a, s), cost in optimum.items())),
    )
    row["guaranteed"] = n_low == 0 and metrics.worst_case_violations == 0
    return row


def lowest_servable_level(case: KeramaCase) -> int:
    """The lowest uniform level at which every fleet can be served (densest window of need)."""
    from evgrid.papers.kerama2025.decomposition import _spread_grid_point

    hat = _spread_grid_point(case)  # one level of slack above the densest need, per aggregator
    n_bits = case.params.cap_bits
    levels = {
        sum(2**k * hat[i, k] for k in range(n_bits)) for i in range(len(case.free_caps))
    }
    return max(0, max(levels) - 1)


def _level_task(task: tuple[KeramaCase, int]) -> dict:
    """One level, as a pure task for :func:`evgrid.core.parallel.map_tasks` (the case pickles)."""
    case, level = task
    return evaluate_level(case, level)


def pessimistic_uniform_caps(
    case: KeramaCase,
    levels: list[int] | None = None,
    *,
    progress: bool = False,
    parallel: ParallelOptions | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Evaluate ``levels`` (default: lowest servable to the top) and return :data:`COLUMNS`.

    The caps apply in the off-peak hours (:func:`off_peak_case`).
    ``attrs["best_level"]`` is the pessimistic solution: the guaranteed level
    with the lowest worst-tie objective (None if no level is guaranteed).

    The levels are independent: ``parallel`` (:class:`evgrid.core.parallel.ParallelOptions`
    or a mapping of its fields) runs them through :func:`evgrid.core.parallel.map_tasks`;
    None (the default) evaluates them one after another in this process. The table is the
    same either way.
    """
    case = off_peak_case(case)
    top = 2**case.params.cap_bits - 1
    if levels is None:
        levels = list(range(lowest_servable_level(case), top + 1))
    options = ParallelOptions(workers=1) if parallel is None else options_from_mapping(parallel)
    rows = map_tasks(
        _level_task,
        [(case, level) for level in levels],
        options=options,
        desc="uniform cap levels",
        progress=progress,
    )
    table = pd.DataFrame(rows, columns=COLUMNS)
    ok = table[table["guaranteed"]]
    table.attrs["best_level"] = (
        int(ok.loc[ok["worst_tie_objective_usd"].idxmin(), "level"]) if len(ok) else None
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evgrid.papers.kerama2025.pessimistic", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_section("kerama2025", args.params)
        parallel = load_parallel(args.params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = pessimistic_uniform_caps(
        make_instance(params), progress=True, parallel=parallel
    )
    write_csv(table, output_path(params.results_dir, "pessimistic.csv"))
    print(f"pessimistic level: {table.attrs['best_level']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
