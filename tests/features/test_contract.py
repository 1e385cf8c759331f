"""validate_frame: one test per bad input with the exact message, and the good round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import CANONICAL_SCHEMA, DataValidationError, parse_month, validate_frame

ORIGIN = "data.csv"


def frame(*rows, **extra) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=["unique_id", "ds", "y"], dtype=object)
    for name, values in extra.items():
        df[name] = values
    return df


def problems(df: pd.DataFrame, **kwargs) -> str:
    with pytest.raises(DataValidationError) as info:
        validate_frame(df, ORIGIN, **kwargs)
    return str(info.value)


def one(message: str) -> str:
    return f"{ORIGIN}: 1 problem found\n{message}"


GOOD = [("total", "2024-01", "100"), ("total", "2024-02", "200.5")]


def test_good_frame_round_trip_is_canonical_sorted_and_leaves_the_input_alone():
    df = frame(
        ("total", "2024-02-01", "1,234,567.5"),
        ("item:반도체", "202401", "10"),
        ("total", "2024.01", 7),
        (" total ", "2023-12", 0.0),
        source=["a", "b", "c", "d"],
    )
    before = df.copy()
    out = validate_frame(df, ORIGIN)
    pd.testing.assert_frame_equal(df, before)
    expected = pd.DataFrame(
        {
            "unique_id": ["item:반도체", "total", "total", "total"],
            "ds": pd.to_datetime(["2024-01-01", "2023-12-01", "2024-01-01", "2024-02-01"]),
            "y": [10.0, 0.0, 7.0, 1234567.5],
            "source": ["b", "d", "c", "a"],
        }
    )
    pd.testing.assert_frame_equal(out, expected)
    assert out["ds"].dtype == "datetime64[ns]" and out["y"].dtype == "float64"
    CANONICAL_SCHEMA.validate(out)
    # already canonical -> unchanged
    pd.testing.assert_frame_equal(validate_frame(out, ORIGIN), out)


def test_timestamps_and_known_series_are_accepted():
    df = pd.DataFrame({"unique_id": ["total"], "ds": pd.to_datetime(["2025-12-01"]), "y": [1.5]})
    out = validate_frame(df, ORIGIN, known_series={"total", "item:ships"})
    assert out.loc[0, "ds"] == pd.Timestamp("2025-12-01") and out.loc[0, "y"] == 1.5


def test_missing_columns():
    df = pd.DataFrame({"series": ["total"], "ds": ["2024-01"], "value": ["1"]})
    assert problems(df) == one(
        "data.csv: missing columns 'unique_id', 'y' (found columns: 'series', 'ds', 'value'; expected unique_id, ds, y)"
    )


def test_empty_frame():
    assert problems(frame()) == one("data.csv: no data rows (the frame is empty)")


def test_empty_unique_id():
    assert problems(frame(*GOOD, ("  ", "2024-03", "1"))) == one("data.csv line 4, column unique_id: empty unique_id")


def test_unparseable_month():
    assert problems(frame(*GOOD, ("total", "2024-13", "1"))) == one(
        "data.csv line 4, column ds: '2024-13' is not a month (month 13 out of 01-12; expected YYYY-MM or YYYY-MM-DD)"
    )
    assert problems(frame(*GOOD, ("total", "March 2024", "1"))) == one(
        "data.csv line 4, column ds: 'March 2024' is not a month (expected YYYY-MM or YYYY-MM-DD)"
    )
    assert problems(frame(*GOOD, ("total", "", "1"))) == one(
        "data.csv line 4, column ds: '' is not a month (expected YYYY-MM or YYYY-MM-DD)"
    )


def test_day_other_than_the_first_is_rejected_not_rounded():
    assert problems(frame(*GOOD, ("total", "2024-03-15", "1"))) == one(
        "data.csv line 4, column ds: '2024-03-15' is not a month start (day 15; write YYYY-MM or YYYY-MM-01)"
    )
    df = pd.DataFrame({"unique_id": ["total"], "ds": [pd.Timestamp("2024-03-01 12:00")], "y": [1.0]})
    assert problems(df) == (
        "data.csv: 2 problems found\n"
        "data.csv line 2, column ds: 2024-03-01 12:00:00 is not a month start (day 1, midnight)\n"
        "data.csv, series 'total': no usable row after cleaning (all 1 row has errors)"
    )


def test_duplicate_series_month_even_in_different_spellings():
    assert problems(frame(*GOOD, ("total", "202401", "5"))) == one(
        "data.csv line 4: duplicate of line 2 (unique_id 'total', ds 2024-01)"
    )


def test_negative_value():
    assert problems(frame(*GOOD, ("total", "2024-03", "-12.5"))) == one(
        "data.csv line 4, column y: '-12.5' is negative (exports in USD are >= 0)"
    )


def test_non_numeric_value_shows_the_text_found():
    assert problems(frame(*GOOD, ("total", "2024-03", "12억"))) == one(
        "data.csv line 4, column y: '12억' is not a number"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", "1,5"))) == one(
        "data.csv line 4, column y: '1,5' is not a number"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", "1_000"))) == one(
        "data.csv line 4, column y: '1_000' is not a number"
    )


def test_nan_empty_and_infinite_values():
    assert problems(frame(*GOOD, ("total", "2024-03", "NaN"))) == one(
        "data.csv line 4, column y: 'NaN' is not a number (NaN)"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", ""))) == one(
        "data.csv line 4, column y: empty value (an unobserved month must have no row)"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", np.nan))) == one(
        "data.csv line 4, column y: missing value NaN (an unobserved month must have no row)"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", "inf"))) == one(
        "data.csv line 4, column y: 'inf' is not a finite number"
    )
    assert problems(frame(*GOOD, ("total", "2024-03", float("-inf")))) == one(
        "data.csv line 4, column y: -inf is not a finite number"
    )


def test_unknown_series():
    df = frame(*GOOD, ("item:chips", "2024-01", "1"), ("item:chips", "2024-02", "2"))
    assert problems(df, known_series=["total", "item:semiconductors"]) == one(
        "data.csv, column unique_id: unknown series 'item:chips' (2 rows, first at line 4); "
        "known series: 'item:semiconductors', 'total'"
    )


def test_mixed_units_and_a_unit_other_than_usd():
    df = frame(*GOOD, ("item:ships", "2024-01", "1"), unit=["USD", "thousand USD", "KRW"])
    assert problems(df) == (
        "data.csv: 2 problems found\n"
        "data.csv, series 'item:ships', column unit: unit 'KRW' found (values must be in USD)\n"
        "data.csv, series 'total', column unit: mixed units 'USD', 'thousand USD' (every value must be in USD)"
    )
    ok = validate_frame(frame(*GOOD, unit=["USD", "usd"]), ORIGIN)
    assert ok["unit"].tolist() == ["USD", "usd"]


def test_series_left_without_a_usable_row():
    df = frame(*GOOD, ("item:ships", "2024-01", "n/a"), ("item:ships", "2024-02", "-"))
    assert problems(df) == (
        "data.csv: 3 problems found\n"
        "data.csv line 4, column y: 'n/a' is not a number\n"
        "data.csv line 5, column y: '-' is not a number\n"
        "data.csv, series 'item:ships': no usable row after cleaning (all 2 rows have errors)"
    )


def test_all_errors_are_collected_in_file_order_and_the_list_stops_at_twenty():
    rows = [("total", f"2024-{m:02d}", "x") for m in range(1, 13)] + [
        ("total", f"2023-{m:02d}", "-1") for m in range(1, 13)
    ]
    message = problems(frame(*rows))
    lines = message.splitlines()
    assert lines[0] == "data.csv: 25 problems found (first 20 listed)"
    assert lines[1] == "data.csv line 2, column y: 'x' is not a number"
    assert lines[13] == "data.csv line 14, column y: '-1' is negative (exports in USD are >= 0)"
    assert len(lines) == 21
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame(*rows), ORIGIN)
    assert len(info.value.errors) == 25 and info.value.origin == ORIGIN
    assert info.value.errors[-1] == "data.csv, series 'total': no usable row after cleaning (all 24 rows have errors)"


def test_custom_locations_name_rows():
    df = frame(("total", "2024-01", "-1"))
    with pytest.raises(
        DataValidationError, match=r"^api: 2 problems found\napi \(total, 2024-01\), column y: '-1' is negative"
    ):
        validate_frame(df, "api", locations=["(total, 2024-01)"])


def test_parse_month_forms():
    assert {parse_month(v) for v in ("2025-10", "2025-10-01", "202510", "2025.10", " 2025-10 ")} == {
        pd.Timestamp("2025-10-01")
    }
    with pytest.raises(ValueError, match=r"^'2025\.1' is not a month"):
        parse_month("2025.1")


def test_data_validation_error_survives_pickling_with_its_message():
    import pickle

    from features.contract import DataValidationError

    err = DataValidationError("bad.csv", ["bad.csv line 2, column y: 'x' is not a number"])
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.origin, back.errors) == (DataValidationError, str(err), "bad.csv", err.errors)


# ------------------------------------------------------------------ per-series exclusions (issue 19, item 2)
from features.contract import SeriesExclusion, check_frame, plausibility_scale  # noqa: E402

OTHER = [("item:ships", "2024-01", "10"), ("item:ships", "2024-02", "11")]


def lenient(df: pd.DataFrame, **kwargs):
    return check_frame(df, ORIGIN, strict=False, **kwargs)


@pytest.mark.parametrize(
    "bad, problem",
    [
        (("item:ships", "2024-03", "12x"), "data.csv line 6, column y: '12x' is not a number"),
        (("item:ships", "2024-02", "5"), "data.csv line 6: duplicate of line 5 (unique_id 'item:ships', ds 2024-02)"),
        (
            ("item:ships", "2024-03-15", "5"),
            "data.csv line 6, column ds: '2024-03-15' is not a month start (day 15; write YYYY-MM or YYYY-MM-01)",
        ),
        (("item:ships", "2024-03", "inf"), "data.csv line 6, column y: 'inf' is not a finite number"),
    ],
)
def test_a_bad_row_excludes_its_series_with_one_warning_and_keeps_the_others(bad, problem):
    checked = lenient(frame(*GOOD, *OTHER, bad))
    assert checked.excluded == (SeriesExclusion("item:ships", (problem,)),)
    assert checked.excluded[0].warning() == f"series 'item:ships' excluded, the other series are kept: {problem}"
    pd.testing.assert_frame_equal(checked.frame, validate_frame(frame(*GOOD), ORIGIN))
    with pytest.raises(DataValidationError) as info:  # strict: the whole file, the current error
        check_frame(frame(*GOOD, *OTHER, bad), ORIGIN, strict=True)
    assert str(info.value) == one(problem)


def test_the_warning_counts_the_other_problems_of_the_series():
    checked = lenient(
        frame(*GOOD, ("item:ships", "2024-01", "x"), ("item:ships", "2024-01", "-3"), ("item:ships", "2024-02", "1"))
    )
    assert [e.warning() for e in checked.excluded] == [
        "series 'item:ships' excluded, the other series are kept: data.csv line 4, column y: 'x' is not a number "
        "(+2 more problems in this series)"
    ]  # line 5: negative, and a duplicate of line 4
    assert checked.frame["unique_id"].unique().tolist() == ["total"]


def test_every_series_excluded_or_a_row_of_no_series_refuses_the_file():
    assert problems(frame(("total", "2024-01", "x"))) == (
        "data.csv: 2 problems found\ndata.csv line 2, column y: 'x' is not a number\n"
        "data.csv, series 'total': no usable row after cleaning (all 1 row has errors)"
    )
    with pytest.raises(DataValidationError) as info:  # every series excluded: the full list, as strict
        lenient(frame(("total", "2024-01", "x"), *OTHER, ("item:ships", "2024-03", "-1")))
    assert str(info.value) == (
        "data.csv: 3 problems found\ndata.csv line 2, column y: 'x' is not a number\n"
        "data.csv line 5, column y: '-1' is negative (exports in USD are >= 0)\n"
        "data.csv, series 'total': no usable row after cleaning (all 1 row has errors)"
    )
    with pytest.raises(DataValidationError) as info:  # an empty unique_id names no series to leave out
        lenient(frame(*GOOD, *OTHER, ("", "2024-03", "1")))
    assert info.value.errors == ["data.csv line 6, column unique_id: empty unique_id"]


# ------------------------------------------------------------------ signed series (item 3)
def test_negative_values_are_admitted_in_every_series_or_in_the_signed_ones():
    df = frame(("balance", "2024-01", "-5.5"), ("balance", "2024-02", "3"), ("total", "2024-01", "-1"))
    assert lenient(df, allow_negative=True).frame["y"].tolist() == [-5.5, 3.0, -1.0]
    checked = lenient(df, signed=["balance"])
    assert checked.frame["y"].tolist() == [-5.5, 3.0]
    assert checked.excluded == (
        SeriesExclusion("total", ("data.csv line 4, column y: '-1' is negative (exports in USD are >= 0)",)),
    )


# ------------------------------------------------------------------ plausibility (item 4)
def test_a_value_of_1e30_is_a_bad_row():
    rows = [("total", f"2024-{m:02d}", "1.2e9") for m in range(1, 12)] + [("total", "2024-12", "1e30")]
    assert problems(frame(*rows)) == one(
        "data.csv line 13, column y: '1e30' is implausible: more than 1e+06 times the series' median absolute value "
        "1.2e+09 (limit 1.2e+15, data.plausibility_factor)"
    )
    checked = lenient(frame(*rows, *OTHER))
    assert [e.unique_id for e in checked.excluded] == ["total"]
    assert checked.frame["unique_id"].unique().tolist() == ["item:ships"]
    assert lenient(frame(*rows, *OTHER), plausibility_factor=1e22).excluded == ()  # configurable
    assert lenient(frame(*rows, *OTHER), plausibility_factor=None).excluded == ()


def test_the_scale_of_a_signed_series_is_its_median_absolute_value():
    assert plausibility_scale(np.array([-4.0, 1.0, 2.0, -3.0, 100.0])) == 3.0  # the median itself is 1.0
    assert plausibility_scale(np.array([0.0, 0.0, 0.0, 5.0, -7.0])) == 6.0  # mostly zeros: the non-zero values
    assert plausibility_scale(np.zeros(3)) == 0.0
    balance = [("b", f"2024-{m:02d}", v) for m, v in enumerate(["-2e8", "1e8", "3e8", "-1e8", "-4e14"], start=1)]
    checked = lenient(frame(*balance, *OTHER), allow_negative=True)
    assert checked.excluded[0].problems == (
        "data.csv line 6, column y: '-4e14' is implausible: more than 1e+06 times the series' median absolute "
        "value 2e+08 (limit 2e+14, data.plausibility_factor)",
    )
