"""Shared test helpers."""

from evgrid.core.config import FleetOptions
from evgrid.papers.kerama2025.case import make_instance
from evgrid.papers.kerama2025.params import Kerama2025Params


def make_small_kerama(**changes):
    """A Kerama instance small enough for unit tests: 2 aggregators x 2 EVs, 2 scenarios."""
    values = dict(
        n_aggregators=2,
        aggregator_buses=[18, 33],
        fleet=FleetOptions(n_evs=2, battery_kwh=60.0, charger_kw=7.2),
        n_scenarios=2,
        peak_penalty_usd_per_kw=2.0,
    )
    values.update(changes)
    return make_instance(Kerama2025Params(**values))
