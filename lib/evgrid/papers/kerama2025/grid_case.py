"""Kerama (2025) at a distribution operator's scale: a SimBench MV grid, its profiles, many aggregators.

The paper's instance (:func:`evgrid.papers.kerama2025.case.make_instance`)
keeps its documented choices: the 33-bus feeder, the RTS load shape, PV at
two buses. :func:`make_grid_instance` builds the same case study on a real,
radial MV grid (:func:`evgrid.networks.load_simbench_mv`) with that grid's
own load and generation for one day (:func:`evgrid.data.simbench.bus_profiles`):

* the horizon runs from 12:00 of ``day`` to 12:00 the next day, as the paper's;
* the uncertain injection of each scenario is the grid's whole static
  generation (PV, wind, biomass, hydro and the LV grids' renewables, as
  SimBench profiles it) times the scenario's factor, uniform on [0.6, 1.0],
  the paper's cloudiness draw; the robust budget ``gamma_pv`` applies to it;
* aggregators sit at the ``n_aggregators`` buses with the most residential
  load (SimBench's aggregated LV grids, ``lv_*``), and the EVs are split
  among them in proportion to it (:func:`evs_by_residential_load`);
* everything else (prices, fleet, scenarios, budgets, the cap grid) is the
  ``kerama2025`` section's; its ``aggregator_buses``, ``pv_buses``,
  ``pv_kw_per_bus`` and ``fleet.n_evs`` describe the 33-bus instance and are
  not used here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evgrid.data.simbench import bus_profiles, residential_kw
from evgrid.networks import NetworkData
from evgrid.papers.kerama2025.case import (
    HORIZON_START_HOUR,
    N_PERIODS,
    KeramaCase,
    _draw_fleet,
    time_of_use_prices,
)
from evgrid.papers.kerama2025.params import Kerama2025Params

__all__ = ["evs_by_residential_load", "make_grid_instance"]


def evs_by_residential_load(network: NetworkData, total_evs: int, n_aggregators: int) -> dict[int, int]:
    """EVs per aggregator bus: the ``n_aggregators`` buses with the most residential load, in proportion to it.

    Largest-remainder rounding, so the counts add up to ``total_evs``; ties
    in load go to the lower bus. Raises ``ValueError`` naming the numbers if
    the grid has fewer residential buses than aggregators or if there are
    fewer EVs than aggregators.
    """
    homes = residential_kw(network)
    homes = homes[homes > 0]
    if not 1 <= n_aggregators <= len(homes):
        raise ValueError(
            f"n_aggregators={n_aggregators} is out of range: {network.name} has {len(homes)} buses "
            "with residential load"
        )
    if total_evs < n_aggregators:
        raise ValueError(f"total_evs={total_evs} is below n_aggregators={n_aggregators}: one EV each at least")
    top = homes.sort_index().sort_values(ascending=False, kind="stable").iloc[:n_aggregators]
    share = total_evs * top / top.sum()
    counts = np.floor(share).astype(int)
    rest = total_evs - int(counts.sum())
    order = (share - counts).sort_values(ascending=False, kind="stable").index[:rest]
    counts[order] += 1
    counts = counts.clip(lower=1)
    while counts.sum() > total_evs:  # the clip may add one where rounding gave none
        counts[counts.idxmax()] -= 1
    return {int(bus): int(n) for bus, n in counts.sort_index().items()}


def make_grid_instance(params: Kerama2025Params, network: NetworkData, day: str | pd.Timestamp,
                       evs_per_bus: dict[int, int]) -> KeramaCase:
    """The Kerama case study on ``network`` for the day ``day``, with ``evs_per_bus[bus]`` EVs per aggregator bus.

    See the module docstring for what comes from where. Buses are
    ``network``'s 0-based indices; aggregator ``a`` is the ``a``-th bus of
    ``evs_per_bus`` in bus order. Raises ``ValueError`` naming a bus that
    is not in the grid or is its root.
    """
    buses = set(network.buses["bus"])
    root = int(network.buses.loc[network.buses["is_slack"], "bus"].iloc[0])
    bad = sorted(b for b in evs_per_bus if b not in buses or b == root)
    if bad:
        raise ValueError(
            f"aggregator buses {bad} are not load buses of {network.name} (buses 0-{max(buses)}, root {root})"
        )
    start = pd.Timestamp(day).normalize() + pd.Timedelta(hours=HORIZON_START_HOUR)
    profiles = bus_profiles(network, start, N_PERIODS)
    clock = (HORIZON_START_HOUR + np.arange(N_PERIODS)) % 24
    agg_bus = dict(enumerate(sorted(evs_per_bus)))
    counts = {a: int(evs_per_bus[b]) for a, b in agg_bus.items()}
    rng = np.random.default_rng(params.seed)
    pv, fleets = {}, {}
    for s in range(params.n_scenarios):
        pv[s] = profiles.gen_kw * rng.uniform(0.6, 1.0)
        fleets[s] = _draw_fleet(params, rng, agg_bus, counts)
    return KeramaCase(
        params=params,
        network=network,
        clock_hour=clock,
        price_usd_per_kwh=time_of_use_prices(params, clock),
        load_kw=profiles.load_kw.set_axis(range(N_PERIODS), axis=1),
        load_kvar=profiles.load_kvar.set_axis(range(N_PERIODS), axis=1),
        pv_kw={s: table.set_axis(range(N_PERIODS), axis=1) for s, table in pv.items()},
        fleets=fleets,
        probability=np.full(params.n_scenarios, 1.0 / params.n_scenarios),
        aggregator_bus=agg_bus,
        b_max_kw={a: counts[a] * params.fleet.charger_kw for a in agg_bus},
    )
