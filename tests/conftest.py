"""Shared test helpers."""

import warnings

from evgrid.core.config import FleetOptions
from evgrid.core.solvers import SolverLimitWarning, solve
from evgrid.papers.kerama2025.case import make_instance
from evgrid.papers.kerama2025.model import build_single_level, warm_start
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


#: The night hours whose caps :func:`make_night_kerama` leaves to the DSO.
NIGHT = [0, 1, 2, 3, 4]


def make_night_kerama():
    """One aggregator at bus 18 plugged in 23:00-05:00, its caps 00:00-05:00 on or off: 32 grid points.

    Those with too few open hours cannot charge the fleet, so the grid has
    both feasible and infeasible points.
    """
    return make_small_kerama(
        n_aggregators=1, aggregator_buses=[18], cap_bits=1, cap_hours=NIGHT, n_scenarios=1,
        arrival_hour_mean=23.0, arrival_hour_sd=0.0, departure_hour_mean=5.0, departure_hour_sd=0.0,
    )


def solve_small_kerama(case, *, with_network=True, **solve_options):
    """The single-level model of ``case``, warm-started and solved for at most 10 s.

    Returns ``(model, info, result)``; a time-limited incumbent is enough for
    the tests that use it (their comments say why), so the limit's warning is
    silenced.
    """
    model, info = build_single_level(case, with_network=with_network)
    assert warm_start(model, case, info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverLimitWarning)
        result = solve(model, time_limit_s=10, warmstart=True, **solve_options)
    return model, info, result
