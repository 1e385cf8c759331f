"""Korean working days: hand-counted months."""

from __future__ import annotations

import pandas as pd
import pytest

from features.calendar import korean_holidays, supported_months, working_days, working_days_within


def test_february_2024_seollal_and_its_substitute_day():
    # Feb 2024 starts on a Thursday: 29 days -> 21 weekdays. Seollal: Fri 9th (eve), Sat 10th, Sun 11th,
    # and the substitute holiday Mon 12th -> 21 - 2 = 19.
    assert working_days("2024-02", "2024-02")["working_days"].tolist() == [19]


def test_october_2025_chuseok_foundation_day_and_hangul_day():
    # Oct 2025 starts on a Wednesday: 31 days -> 23 weekdays. National Foundation Day Fri 3rd; Chuseok Sun 5th,
    # Mon 6th, Tue 7th + substitute Wed 8th; Hangul Day Thu 9th -> 23 - 5 = 18.
    assert working_days("2025-10-01", "2025-10-31")["working_days"].tolist() == [18]


def test_month_without_holiday_is_the_plain_weekday_count():
    # July 2024 starts on a Monday: 31 days -> 23 weekdays, no public holiday.
    assert working_days(pd.Timestamp("2024-07-01"), "2024-07")["working_days"].tolist() == [23]
    assert korean_holidays(2024).loc["2024-07"].empty


def test_a_range_is_indexed_by_month_starts_and_spans_years():
    out = working_days("2023-12-15", "2024-03")
    assert list(out.index) == list(pd.date_range("2023-12-01", "2024-03-01", freq="MS"))
    assert out.index.name == "ds" and out.index.dtype == "datetime64[ns]"
    assert out["working_days"].dtype == "int64"
    # Dec 2023: 21 weekdays - Christmas Mon 25th = 20; Jan 2024: 23 - New Year Mon 1st = 22;
    # Mar 2024: 21 weekdays - Independence Movement Day Fri 1st = 20.
    assert out["working_days"].tolist() == [20, 22, 19, 20]


def test_future_months_and_the_whole_supported_span():
    # Jan 2030: 23 weekdays - New Year Tue 1st = 22 (known in advance).
    assert working_days("2030-01", "2030-01")["working_days"].tolist() == [22]
    out = working_days("2000-01", "2030-12")
    assert len(out) == 372 and out["working_days"].between(15, 23).all()


def test_bad_ranges_are_named():
    with pytest.raises(ValueError, match=r"^working_days: start 2025-02 is after end 2025-01$"):
        working_days("2025-02", "2025-01")
    with pytest.raises(ValueError, match=r"^working_days: end 'soon' is not a date or month"):
        working_days("2025-01", "soon")
    with pytest.raises(ValueError, match=r"^working_days: start 1900-01 is outside the supported years 1950-2099$"):
        working_days("1900-01", "2025-01")


def test_within_keeps_only_the_supported_months():
    out = working_days_within("1940-03", "1950-02")
    assert out.index[0] == pd.Timestamp("1950-01-01") and out.index[-1] == pd.Timestamp("1950-02-01")
    assert out["working_days"].tolist() == working_days("1950-01", "1950-02")["working_days"].tolist()
    out = working_days_within("2099-11", "2110-12")
    assert out.index.tolist() == [pd.Timestamp("2099-11-01"), pd.Timestamp("2099-12-01")]
    assert supported_months() == (pd.Timestamp("1950-01-01"), pd.Timestamp("2099-12-01"))


def test_within_gives_none_for_a_span_wholly_outside():
    assert working_days_within("1857-01", "1880-12") is None
    assert working_days_within("2100-01", "2110-12") is None
