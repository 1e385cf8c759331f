"""What was public when: the ONE home of the publication rules of the figures the project reads.

- A whole month of customs exports is confirmed on the **16th of the next month**
  (:func:`confirmed_on`): the customs service confirms mid-month, and the monthly pipeline runs on
  the 16th for that reason. The indicator table's ``available_from`` of a ``month`` cut, the
  nowcast's publication day of an actual where none is recorded, and the information date of a
  cutoff all follow from it.
- The customs flash: days 1-10 on the 11th and days 1-20 on the 21st of the same month; the API's
  later provisional revision of a cut keeps that date (the file does not say when it was revised).
- WSTS billings: the 15th of the second month after (WSTS publishes about 5-6 weeks after the
  month ends, e.g. October in early December: December 15 is after every release of that lag).
- A month-end close: the month's last weekday (the files give the month, not the day; the last
  trading day is that weekday or, after a holiday, earlier: the date is never too early).
- The DRAM export price index: the 15th of the next month (the Bank of Korea publishes mid-month).

**Information date of a cutoff** (:func:`information_date`): a forecast with data through month
``c`` is made the day ``c``'s confirmed figure became public (the 16th of the month after ``c``);
on that day a model may use every value public on or before it, and nothing else
(``features.leading.public_values``).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["CONFIRMED_DAY", "available_from", "confirmed_on", "information_date"]

#: the day of the next month on which a month's customs exports are confirmed
CONFIRMED_DAY = 16


def confirmed_on(ds: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The day each month of ``ds`` (month starts) is confirmed: the 16th of the next month."""
    return pd.DatetimeIndex(ds) + pd.offsets.MonthBegin(1) + pd.Timedelta(days=CONFIRMED_DAY - 1)


def _next(month: str, months: int) -> tuple[int, int]:
    year, mon = int(month[:4]), int(month[5:]) + months
    return year + (mon - 1) // 12, (mon - 1) % 12 + 1


def available_from(cut: str, month: str, *, release: str = "customs") -> str:
    """The first day (YYYY-MM-DD) a figure of ``month`` (YYYY-MM) was public (see the module docstring)."""
    if cut == "10d":
        return f"{month}-11"
    if cut == "20d":
        return f"{month}-21"
    if cut == "close":  # the month's last weekday (see the module docstring)
        return f"{pd.Timestamp(f'{month}-01') + pd.offsets.BMonthEnd(0):%Y-%m-%d}"
    if release == "bok":
        return "{}-{:02d}-15".format(*_next(month, 1))
    if release == "wsts":
        return "{}-{:02d}-15".format(*_next(month, 2))
    return f"{confirmed_on(pd.DatetimeIndex([pd.Timestamp(f'{month}-01')]))[0]:%Y-%m-%d}"


def information_date(cutoff: pd.Timestamp | str) -> pd.Timestamp:
    """The day a forecast with data through ``cutoff`` is made: the day the cutoff month's
    confirmed customs figure was public (the 16th of the next month)."""
    month = pd.Timestamp(cutoff).to_period("M").to_timestamp()
    return pd.Timestamp(confirmed_on(pd.DatetimeIndex([month]))[0])
