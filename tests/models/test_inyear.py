"""In-year tracking (models/applications/inyear.py) and the mid-year revisions (models/applications/institutional.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.applications.institutional import (
    COMPARISON_COLUMNS,
    MID_YEAR,
    SUMMARY_COLUMNS,
    compare_mid_year,
    mid_year_summary,
    revision_date,
)
from models.applications.inyear import (
    TRACKING_COLUMNS,
    FitCache,
    InyearSettings,
    SeriesInputs,
    condition,
    information_dates,
    track_at,
    tracked_as_of,
    tracking,
)

BN = 1e9
SNAIVE = InyearSettings(model="seasonal_naive", n_paths=20_000)


def _series() -> pd.Series:
    """2020-01..2022-12: month m of 2020 = (40 + m) bn; each year adds 1 bn to every month, so
    every seasonal difference is exactly 1 bn (seasonal naive's sigma = 1 bn)."""
    ds = pd.date_range("2020-01-01", "2022-12-01", freq="MS")
    return pd.Series([(40 + d.month + (d.year - 2020)) * BN for d in ds], index=ds, dtype=float)


def _flash(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    """Nowcast rows: (ds, information, as_of, nowcast, lo_80, hi_80), values in bn."""
    return pd.DataFrame(
        {
            "unique_id": "total",
            "ds": pd.to_datetime([r[0] for r in rows]),
            "information": [r[1] for r in rows],
            "as_of": pd.to_datetime([r[2] for r in rows]),
            "nowcast": [r[3] * BN for r in rows],
            "lo_80": [r[4] * BN for r in rows],
            "hi_80": [r[5] * BN for r in rows],
            "actual": np.nan,
            "ape": np.nan,
        },
        columns=["unique_id", "ds", "information", "as_of", "nowcast", "lo_80", "hi_80", "actual", "ape"],
    )


def _row(inputs: SeriesInputs, as_of: str, settings: InyearSettings = SNAIVE) -> dict:
    return track_at(inputs, 2022, pd.Timestamp(as_of), FitCache(settings))


# ------------------------------------------------------------------ hand-computable
def test_observed_months_plus_seasonal_naive_remainder_with_joint_path_interval() -> None:
    y = _series()
    row = _row(SeriesInputs("total", y), "2022-04-16")  # March 2022 confirmed on April 16
    # observed Jan-Mar 2022: 43+44+45 = 132 bn; forecast Apr-Dec = 2021's Apr..Dec = 45+..+53 = 441 bn
    assert row["months_observed"] == 3
    assert row["forecast_usd_bn"] == pytest.approx(132 + 441, abs=1e-9)
    # the nine forecast months share one seasonal shock (block_correlation 1): their sum has sd 9 bn
    # (independent months would give 3 bn), so the 80% band is 573 -/+ 9 x 1.2816
    assert row["lo_80"] == pytest.approx(573 - 9 * 1.2816, abs=0.25)
    assert row["hi_80"] == pytest.approx(573 + 9 * 1.2816, abs=0.25)
    # the actual 2022 = sum(42+m) = 582 bn
    assert row["actual_usd_bn"] == pytest.approx(582.0)
    assert row["ape"] == pytest.approx(abs(573 - 582) / 582 * 100)
    assert row["model"] == "seasonal_naive" and row["note"] == "data through 2022-03"
    assert list(row) == list(TRACKING_COLUMNS)


def test_a_flash_moves_its_month_and_the_later_months_by_the_paths_regression() -> None:
    y = _series()
    # April's d10 nowcast public on April 11: 50 bn where seasonal naive says 45 (+5 bn)
    inputs = SeriesInputs("total", y, nowcasts=_flash([("2022-04-01", "d10", "2022-04-11", 50.0, 49.0, 51.0)]))
    row = _row(inputs, "2022-04-16")
    # seasonal naive's nine months move together one for one (regression coefficient 1): April
    # becomes 50 and each of May..Dec gains the same +5 bn -> 573 + 9 x 5 = 618
    assert row["forecast_usd_bn"] == pytest.approx(618.0, abs=1e-6)
    assert row["note"] == "data through 2022-03; flash 2022-04 d10"
    # the spread is now April's (lognormal 49..51 at 10/90%) carried through nine months: 9 x ~1 bn
    assert row["hi_80"] - row["lo_80"] == pytest.approx(9 * 2.0, rel=0.05)


def test_condition_is_kriging_on_correlated_gaussian_paths() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50_000, 2)) @ np.linalg.cholesky(np.array([[1.0, 0.6], [0.6, 1.0]])).T
    point, paths = condition(np.zeros(2), z, {0: (2.0, np.full(50_000, 2.0))})
    assert point[0] == 2.0 and point[1] == pytest.approx(1.2, abs=0.02)  # 0.6 x 2
    assert paths[:, 1].std() == pytest.approx(0.8, abs=0.01)  # sqrt(1 - 0.6^2): the conditional spread


# ------------------------------------------------------------------ no look-ahead
def test_a_month_confirmed_after_as_of_changes_nothing() -> None:
    y = _series()
    late = pd.Series([pd.Timestamp("2022-05-02")], index=pd.DatetimeIndex(["2022-03-01"]))
    base = _row(SeriesInputs("total", y, published=late), "2022-04-16")
    wrecked = y.copy()
    wrecked[pd.Timestamp("2022-03-01")] = 1e15
    again = _row(SeriesInputs("total", wrecked, published=late), "2022-04-16")
    forecast = [k for k in TRACKING_COLUMNS if k not in ("actual_usd_bn", "ape")]  # the actual is the year's, later
    assert {k: base[k] for k in forecast} == {k: again[k] for k in forecast}
    assert base["months_observed"] == 2 and base["note"] == "data through 2022-02"
    # Jan+Feb 2022 (43+44) + Mar..Dec of 2021 (44+..+53 = 485)
    assert base["forecast_usd_bn"] == pytest.approx(87 + 485, abs=1e-9)


def test_a_flash_published_after_as_of_changes_nothing() -> None:
    y = _series()
    plain = _row(SeriesInputs("total", y), "2022-04-16")
    later = _flash([("2022-04-01", "d20", "2022-04-21", 500.0, 499.0, 501.0)])  # public on the 21st
    with_late = _row(SeriesInputs("total", y, nowcasts=later), "2022-04-16")
    assert with_late == plain
    assert _row(SeriesInputs("total", y, nowcasts=later), "2022-04-21")["forecast_usd_bn"] > 4000


# ------------------------------------------------------------------ information dates and the table
def test_information_dates_of_a_year() -> None:
    y = _series()
    flash = _flash(
        [
            ("2022-04-01", "d10", "2022-04-11", 50.0, 49.0, 51.0),
            ("2022-04-01", "d20", "2022-04-21", 50.0, 49.0, 51.0),
            ("2021-12-01", "d20", "2021-12-21", 50.0, 49.0, 51.0),
        ]
    )  # a month of 2021: not a date of 2022
    dates = information_dates(SeriesInputs("total", y, nowcasts=flash), 2022)
    months = [d for d, i in dates if i == "month"]
    assert months == list(pd.date_range("2022-01-01", periods=12, freq="MS") + pd.Timedelta(days=15))
    assert [(f"{d:%Y-%m-%d}", i) for d, i in dates if i != "month"] == [("2022-04-11", "d10"), ("2022-04-21", "d20")]
    assert dates.index((pd.Timestamp("2022-04-16"), "month")) == 4  # between the two flashes


def test_tracking_rows_and_the_schema() -> None:
    y = _series()
    rows = tracking([SeriesInputs("total", y)], [2022], SNAIVE)
    assert tuple(rows.columns) == TRACKING_COLUMNS
    assert TRACKING_COLUMNS[:11] == (
        "target_year",
        "as_of",
        "information",
        "unique_id",
        "months_observed",
        "forecast_usd_bn",
        "lo_80",
        "hi_80",
        "model",
        "actual_usd_bn",
        "ape",
    )
    assert list(rows["months_observed"]) == list(range(12))
    # with one fit per last confirmed month: 12 fits for 12 dates; the year converges to the actual
    assert rows["ape"].iloc[-1] < rows["ape"].iloc[0]
    from flows.results import SCHEMAS, TRACKING

    assert SCHEMAS[TRACKING].columns == TRACKING_COLUMNS


def test_one_fit_per_last_confirmed_month_serves_the_flash_dates() -> None:
    y = _series()
    flash = _flash(
        [("2022-04-01", "d10", "2022-04-11", 50.0, 49.0, 51.0), ("2022-04-01", "d20", "2022-04-21", 50.0, 49.0, 51.0)]
    )
    cache = FitCache(SNAIVE)
    inputs = SeriesInputs("total", y, nowcasts=flash)
    for as_of in ("2022-04-11", "2022-04-16", "2022-04-21"):
        track_at(inputs, 2022, pd.Timestamp(as_of), cache)
    assert cache.n_fits == 2  # data through 2022-02 (the 11th), through 2022-03 (16th and 21st)


# ------------------------------------------------------------------ mid-year revisions
@pytest.mark.parametrize(
    "published, raw, date, note",
    [
        ("2015-06-22", "2015-06-22", "2015-06-22", ""),
        (
            "",
            "2024-06 (report 'Monday')",
            "2024-06-30",
            "no publication day (\"2024-06 (report 'Monday')\"): the model uses the information public on 2024-06-30, "
            "the end of the named month, the latest it could have known",
        ),
        (
            np.nan,
            "2017 (H1 review; date not on page)",
            "2017-06-30",
            "no publication day ('2017 (H1 review; date not on page)'): a half-year review/outlook, published at mid-year; "
            "the model uses the information public on 2017-06-30, the end of June, the latest it could have known",
        ),
        (
            np.nan,
            "2023 (Q1 briefing, 'Tuesday'; exact date not on page)",
            "2023-04-30",
            "no publication day (\"2023 (Q1 briefing, 'Tuesday'; exact date not on page)\"): a quarter's review, out by the "
            "end of the month after the quarter; the model uses the information public on 2023-04-30, the latest it "
            "could have known",
        ),
    ],
)
def test_revision_date_rules(published, raw, date, note) -> None:
    assert revision_date(published, raw) == (pd.Timestamp(date), note)


def test_revision_without_any_date() -> None:
    assert revision_date(np.nan, "") == (None, "no publication date ('blank'): no model forecast")


def _projections() -> pd.DataFrame:
    base = {
        "institution_raw": "",
        "published_in_target_year": "true",
        "target_year": 2022,
        "unique_id": "total",
        "projected_growth_pct": np.nan,
        "note": "in-year revision",
    }
    return pd.DataFrame(
        [
            {
                **base,
                "institution": "KITA",
                "kind": "pre-year outlook",
                "published": "2021-11-20",
                "published_raw": "2021-11-20",
                "published_in_target_year": "false",
                "projected_usd_bn": 560.0,
                "note": "",
            },
            {
                **base,
                "institution": "KIET",
                "kind": MID_YEAR,
                "published": "2022-06-10",
                "published_raw": "2022-06-10",
                "projected_usd_bn": 600.0,
            },
            {
                **base,
                "institution": "KITA",
                "kind": MID_YEAR,
                "published": "",
                "published_raw": "2022 (H1 review)",
                "projected_usd_bn": 570.0,
            },
        ]
    )


def test_mid_year_rows_use_exactly_the_information_public_on_the_revision_date() -> None:
    y = _series()
    frame = pd.DataFrame({"unique_id": "total", "ds": y.index, "y": y.to_numpy()})
    flash = _flash(
        [
            ("2022-05-01", "d20", "2022-05-21", 60.0, 59.0, 61.0),  # public on June 10
            ("2022-06-01", "d10", "2022-06-11", 70.0, 69.0, 71.0),
        ]
    )  # one day too late
    inputs = SeriesInputs("total", y, nowcasts=flash)
    rows = tracking([inputs], [2022], SNAIVE)
    actuals = pd.DataFrame(columns=["year", "unique_id", "actual_usd_bn"])
    comp, summary = compare_mid_year(frame, _projections(), actuals, rows, first_year=2022)
    assert list(comp.columns) == COMPARISON_COLUMNS and (comp["kind"] == MID_YEAR).all()
    kiet = comp[comp["institution"] == "KIET"].iloc[0]
    direct = track_at(inputs, 2022, pd.Timestamp("2022-06-10"), FitCache(SNAIVE))
    # April confirmed on May 16 (May only on June 16): 4 months observed, May from its d20 flash
    assert direct["months_observed"] == 4 and direct["note"] == "data through 2022-04; flash 2022-05 d20"
    assert kiet["model_usd_bn"] == pytest.approx(direct["forecast_usd_bn"], rel=1e-12)
    # by hand: Jan-Apr 2022 (43..46 = 178) + May 60 + Jun..Dec of 2021 (47..53 = 350) + 7 x (60 - 46)
    assert kiet["model_usd_bn"] == pytest.approx(178 + 60 + 350 + 7 * 14, abs=1e-6)
    assert kiet["model_data_through"] == "data through 2022-04; flash 2022-05 d20 (as of 2022-05-21, d20)"
    assert kiet["note"] == "in-year revision" and bool(kiet["in_summary"])
    kita = comp[comp["institution"] == "KITA"].iloc[0]
    assert kita["note"].startswith("in-year revision; no publication day ('2022 (H1 review)'): a half-year review")
    # on June 30: May confirmed (June 16), June's d20 flash is not in the test data, June's d10 (70) is
    late = track_at(inputs, 2022, pd.Timestamp("2022-06-30"), FitCache(SNAIVE))
    assert kita["model_usd_bn"] == pytest.approx(late["forecast_usd_bn"], rel=1e-12)
    assert late["note"] == "data through 2022-05; flash 2022-06 d10"
    # the summary: the mid-year section, per institution and over all
    assert list(summary.columns) == SUMMARY_COLUMNS and set(summary["section"]) == {MID_YEAR}
    everyone = summary[summary["institution"] == "all"].iloc[0]
    actual = 582.0
    assert everyone["n_years"] == 2
    assert everyone["institution_mape"] == pytest.approx((abs(600 - actual) + abs(570 - actual)) / actual * 50)
    assert everyone["model_mape"] == pytest.approx(
        (abs(kiet["model_usd_bn"] - actual) + abs(kita["model_usd_bn"] - actual)) / actual * 50
    )


def test_mid_year_summary_keeps_the_earliest_revision_of_an_institution_and_year() -> None:
    y = _series()
    frame = pd.DataFrame({"unique_id": "total", "ds": y.index, "y": y.to_numpy()})
    p = _projections()
    p.loc[2, "institution"] = "KIET"  # two KIET revisions of 2022: June 10 and (undated) June 30
    rows = tracking([SeriesInputs("total", y)], [2022], SNAIVE)
    comp, summary = compare_mid_year(
        frame, p, pd.DataFrame(columns=["year", "unique_id", "actual_usd_bn"]), rows, first_year=2022
    )
    assert list(comp["in_summary"]) == [True, False]
    assert comp["summary_note"].iloc[1] == (
        f"{MID_YEAR}: another revision of this institution for the year was published earlier; that one is summarised"
    )
    assert summary.loc[summary["institution"] == "KIET", "institution_mape"].iloc[0] == pytest.approx(18 / 582 * 100)


def test_mid_year_summary_of_nothing_is_empty_with_the_columns() -> None:
    empty = mid_year_summary(pd.DataFrame(columns=COMPARISON_COLUMNS))
    assert empty.empty and list(empty.columns) == SUMMARY_COLUMNS


def test_tracked_as_of_before_the_first_date_is_none() -> None:
    rows = tracking([SeriesInputs("total", _series())], [2022], SNAIVE)
    assert tracked_as_of(rows, "total", 2022, pd.Timestamp("2022-01-15")) is None
    assert tracked_as_of(rows, "total", 2022, pd.Timestamp("2022-01-16"))["months_observed"] == 0


def test_compare_with_institutions_replaces_only_the_mid_year_rows() -> None:
    from models.applications.institutional import compare_with_institutions
    from models.core.engine import EngineSettings, ModelSpec

    y = _series()
    frame = pd.DataFrame({"unique_id": "total", "ds": y.index, "y": y.to_numpy()})
    settings = EngineSettings(
        models=(ModelSpec("seasonal_naive"), ModelSpec("naive")),
        min_obs_seasonal=1,
        max_missing_share=1.0,
        fallback="naive",
        n_paths=50,
        n_jobs=1,
        seed=0,
    )
    actuals = pd.DataFrame(columns=["year", "unique_id", "actual_usd_bn"])
    kwargs = dict(info_month=10, first_year=2022, last_year=2022, target_year=2023)
    plain = compare_with_institutions(frame, _projections(), actuals, settings, **kwargs)
    rows = tracking([SeriesInputs("total", y)], [2022], SNAIVE)
    mid = compare_with_institutions(frame, _projections(), actuals, settings, tracking=rows, **kwargs)
    pre = plain.comparison["kind"] == "pre-year outlook"
    pd.testing.assert_frame_equal(
        mid.comparison[mid.comparison["kind"] == "pre-year outlook"].reset_index(drop=True),
        plain.comparison[pre].reset_index(drop=True),
    )
    # before: every candidate beside each revision (2 models, 3 combinations of them, the champion)
    assert (plain.comparison["kind"] == MID_YEAR).sum() == 2 * 6
    revisions = mid.comparison[mid.comparison["kind"] == MID_YEAR]
    assert list(revisions["institution"]) == ["KIET", "KITA"] and set(revisions["model"]) == {"seasonal_naive"}
    kiet = tracked_as_of(rows, "total", 2022, pd.Timestamp("2022-06-10"))
    assert revisions["model_usd_bn"].iloc[0] == pytest.approx(kiet["forecast_usd_bn"], rel=1e-12)
    pd.testing.assert_frame_equal(
        mid.summary[mid.summary["section"] == "pre-year outlook"].reset_index(drop=True),
        plain.summary.reset_index(drop=True),
    )
    assert list(mid.summary.loc[mid.summary["section"] == MID_YEAR, "institution"]) == ["KIET", "KITA", "all"]
