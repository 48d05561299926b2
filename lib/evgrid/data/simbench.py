"""SimBench's year of load and generation profiles, per bus and hour, for one horizon.

The ``simbench`` wheel attaches a year (2016, 15-minute steps, 35,136 of them)
of normalised profiles to every load and static generator of its grids;
``simbench.get_absolute_values`` scales them by each element's rating. Here
they are summed per bus and averaged per hour over a horizon of whole hours,
so a model with hourly periods sees the mean power of each hour (the energy
is kept). Loads keep their SimBench ``profile`` name: those of the
aggregated low-voltage grids (``lv_*``) are the residential demand an EV
aggregator's customers belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evgrid.networks import NetworkData

__all__ = ["BusProfiles", "bus_profiles", "evening_peak_day", "residential_kw"]

#: The profiles' first step; every SimBench profile is one leap year of 15-minute steps.
YEAR_START = pd.Timestamp("2016-01-01 00:00")
STEPS_PER_HOUR = 4
#: Load profiles of the aggregated low-voltage grids below an MV bus (households, mostly).
RESIDENTIAL_PREFIX = "lv_"


@dataclass(frozen=True)
class BusProfiles:
    """Hourly mean power per bus over a horizon (index: bus; columns: period 0..n-1)."""

    start: pd.Timestamp
    load_kw: pd.DataFrame
    load_kvar: pd.DataFrame
    gen_kw: pd.DataFrame  # every static generator (PV, wind, biomass, hydro, LV RES)


def _absolute(network: NetworkData) -> dict:
    import simbench as sb  # the wheel is large; only SimBench grids need it

    net = network.net
    if "profiles" not in net or not len(net.profiles.get("load", [])):
        raise ValueError(f"network {network.name!r} carries no SimBench profiles")
    return sb.get_absolute_values(net, profiles_instead_of_study_cases=True)


def _hourly_by_bus(values: pd.DataFrame, bus_of: pd.Series, buses, first: int, hours: int) -> pd.DataFrame:
    """Rows ``first .. first + 4 * hours`` of a step x element table (MW), as bus x hour kW."""
    block = values.iloc[first : first + STEPS_PER_HOUR * hours].to_numpy() * 1e3
    hourly = block.reshape(hours, STEPS_PER_HOUR, -1).mean(axis=1)  # hour x element
    frame = pd.DataFrame(hourly.T, index=values.columns)
    frame = frame.groupby(bus_of.reindex(values.columns).to_numpy()).sum()
    return frame.reindex(buses, fill_value=0.0).rename_axis("bus")


def bus_profiles(network: NetworkData, start: str | pd.Timestamp, hours: int = 24) -> BusProfiles:
    """Hourly load (kW, kvar) and static generation (kW) per bus from ``start`` for ``hours`` hours.

    ``start`` must be a whole hour of 2016 with ``hours`` hours of profile
    after it (a ``ValueError`` names the allowed range otherwise).
    """
    start = pd.Timestamp(start)
    last = YEAR_START + pd.Timedelta(days=366) - pd.Timedelta(hours=hours)
    if start != start.floor("h") or not YEAR_START <= start <= last:
        raise ValueError(
            f"start={start} is not a whole hour with {hours} h of SimBench profile after it: "
            f"allowed {YEAR_START} to {last}"
        )
    if not 1 <= hours <= 24 * 7:
        raise ValueError(f"hours={hours} is out of range: allowed 1 <= hours <= 168")
    values = _absolute(network)
    net = network.net
    first = int((start - YEAR_START) / pd.Timedelta(minutes=15))
    buses = network.buses["bus"].to_numpy()
    return BusProfiles(
        start=start,
        load_kw=_hourly_by_bus(values[("load", "p_mw")], net.load["bus"], buses, first, hours),
        load_kvar=_hourly_by_bus(values[("load", "q_mvar")], net.load["bus"], buses, first, hours),
        gen_kw=_hourly_by_bus(values[("sgen", "p_mw")], net.sgen["bus"], buses, first, hours),
    )


def residential_kw(network: NetworkData) -> pd.Series:
    """Rated residential load per bus (kW): loads whose profile is an aggregated LV grid's."""
    load = network.net.load
    home = load[load["profile"].astype(str).str.startswith(RESIDENTIAL_PREFIX) & load["in_service"]]
    kw = (home["p_mw"] * home["scaling"] * 1e3).groupby(home["bus"]).sum()
    return kw.reindex(network.buses["bus"], fill_value=0.0).rename("residential_kw")


def evening_peak_day(network: NetworkData, *, first_hour: int = 17, last_hour: int = 21) -> pd.Timestamp:
    """The working day of 2016 whose grid-wide net load (load - generation) peaks highest in the evening.

    The evening (``first_hour`` to ``last_hour``) is when commuters plug in;
    the day on which the grid is most loaded then, with the least generation
    to offset it, is the hardest for overnight EV charging. Weekends are
    skipped. Returns that day's midnight.
    """
    values = _absolute(network)
    net_mw = values[("load", "p_mw")].sum(axis=1).to_numpy() - values[("sgen", "p_mw")].sum(axis=1).to_numpy()
    index = YEAR_START + pd.to_timedelta(np.arange(len(net_mw)) * 15, unit="min")
    series = pd.Series(net_mw, index=index)
    evening = series[(index.hour >= first_hour) & (index.hour < last_hour) & (index.dayofweek < 5)]
    return evening.groupby(evening.index.normalize()).max().idxmax()
