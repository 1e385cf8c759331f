"""Korean working days per month: the trading-day regressor of the models.

A working day is a weekday (Monday to Friday) that is not a South Korean public holiday.
Holidays come from the ``holidays`` package (``holidays.country_holidays("KR")``): New
Year's Day, Seollal (three days), Independence Movement Day, Children's Day, Buddha's
Birthday, Memorial Day, Liberation Day, Chuseok (three days), National Foundation Day,
Hangul Day, Christmas, election days, temporary holidays and the substitute ("alternative")
holidays. No date is typed here. Saturdays are not working days (the five-day week), and a
holiday on a weekend changes nothing (its substitute, if any, is a holiday of its own).

Future months use the holidays the package knows in advance (lunar holidays and substitutes
are computed; temporary holidays and unscheduled election days are only known once declared,
so a forecast month's count can fall by one when the government declares one).
"""

from __future__ import annotations

import functools

import holidays
import numpy as np
import pandas as pd

FIRST_YEAR = 1950  # the package's Korean calendar starts in 1948; earlier counts would be wrong
LAST_YEAR = 2099


def working_days(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DataFrame:
    """Working days of every month from ``start``'s month to ``end``'s month (inclusive).

    ``start`` and ``end`` are anything ``pd.Timestamp`` reads (``"2024-02"``,
    ``"2024-02-01"``, a Timestamp); a day inside a month selects that month. Returns a frame
    indexed by the month starts (``ds``, datetime64[ns]) with the int64 column ``working_days``.
    """
    first, last = _month(start, "start"), _month(end, "end")
    if first > last:
        raise ValueError(f"working_days: start {first:%Y-%m} is after end {last:%Y-%m}")
    for name, month in (("start", first), ("end", last)):
        if not FIRST_YEAR <= month.year <= LAST_YEAR:
            raise ValueError(
                f"working_days: {name} {month:%Y-%m} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}"
            )
    months = pd.date_range(first, last, freq="MS", name="ds")
    begins = months.to_numpy(dtype="datetime64[D]")
    ends = (months + pd.offsets.MonthBegin(1)).to_numpy(dtype="datetime64[D]")
    closed = np.concatenate([_weekday_holidays(year) for year in range(first.year, last.year + 1)])
    counts = np.busday_count(begins, ends, weekmask="1111100", holidays=closed)
    return pd.DataFrame({"working_days": counts.astype("int64")}, index=months)


def supported_months() -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last month :func:`working_days` can count (January FIRST_YEAR ..
    December LAST_YEAR)."""
    return pd.Timestamp(year=FIRST_YEAR, month=1, day=1), pd.Timestamp(year=LAST_YEAR, month=12, day=1)


def working_days_within(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DataFrame | None:
    """:func:`working_days` for the part of ``start``..``end`` inside the supported years, or
    None when no month of it is. A series reaching outside (a benchmark series from 1857, a
    scenario to 2110) then runs without the regressor instead of failing."""
    first, last = _month(start, "start"), _month(end, "end")
    lo, hi = supported_months()
    first, last = max(first, lo), min(last, hi)
    if first > last:
        return None
    return working_days(first, last)


def korean_holidays(year: int) -> pd.Series:
    """The Korean public holidays of ``year`` (as the ``holidays`` package lists them):
    a Series of holiday names indexed by date, weekends included."""
    calendar = holidays.country_holidays("KR", years=year)
    dates = sorted(calendar)
    return pd.Series([calendar[d] for d in dates], index=pd.DatetimeIndex(dates, name="date"), name="holiday")


@functools.cache
def _weekday_holidays(year: int) -> np.ndarray:
    days = np.array(sorted(holidays.country_holidays("KR", years=year)), dtype="datetime64[D]")
    return days[np.is_busday(days, weekmask="1111100")] if len(days) else days


def _month(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"working_days: {name} {value!r} is not a date or month ({err})") from None
    if ts is pd.NaT:
        raise ValueError(f"working_days: {name} is missing (NaT)")
    return ts.to_period("M").to_timestamp()


def flash_working_days(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DataFrame:
    """Working days of each month ``start``..``end`` in the parts the customs flash covers:
    days 1-10 (``d10``), days 1-20 (``d20``) and the whole month (``month``), int64 columns
    indexed by the month starts (``ds``). Same rule as :func:`working_days`."""
    whole = working_days(start, end)
    months = whole.index
    begins = months.to_numpy(dtype="datetime64[D]")
    closed = np.concatenate([_weekday_holidays(year) for year in range(months[0].year, months[-1].year + 1)])
    out = {
        "d10": np.busday_count(begins, begins + np.timedelta64(10, "D"), weekmask="1111100", holidays=closed),
        "d20": np.busday_count(begins, begins + np.timedelta64(20, "D"), weekmask="1111100", holidays=closed),
    }
    frame = pd.DataFrame({k: v.astype("int64") for k, v in out.items()}, index=months)
    frame["month"] = whole["working_days"]
    return frame
