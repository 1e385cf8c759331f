"""Nowcast from the customs flash (issue 10 part 1): the bridge, the combination, no look-ahead,
the published schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.calendar import flash_working_days
from models.applications.nowcast import (
    FLASH_COLUMNS,
    NOWCAST_COLUMNS,
    NowcastSettings,
    actual_published,
    backtest,
    bridge_fit,
    flash_frame,
)

FAST = NowcastSettings(model="seasonal_naive", min_train=12, model_history=24)


def _series(noise: float, seasonal_only: bool = False, seed: int = 0) -> pd.Series:
    """Monthly values 2010-01..2015-12: a 12-month pattern (plus a trend and noise unless
    ``seasonal_only``)."""
    ds = pd.date_range("2010-01-01", "2015-12-01", freq="MS")
    rng = np.random.default_rng(seed)
    season = 1.0 + 0.1 * np.sin(2 * np.pi * np.arange(len(ds)) / 12)
    level = 50e9 * season
    if not seasonal_only:
        level = level * (1 + 0.004 * np.arange(len(ds))) * np.exp(rng.normal(0, noise, len(ds)))
    return pd.Series(level, index=ds)


def _flash(y: pd.Series, *, scale: float = 1.05, noise: float = 0.0, seed: int = 1) -> pd.DataFrame:
    """d10/d20 flash for 2012-01..2015-12 such that log(y/f) = log(scale) + log(w_month/w_part)
    (+ noise): the bridge's exact form."""
    months = pd.date_range("2012-01-01", "2015-12-01", freq="MS")
    wd = flash_working_days(months[0], months[-1])
    rng = np.random.default_rng(seed)
    parts = []
    for info, day in (("d10", 11), ("d20", 21)):
        ratio = wd["month"].to_numpy(float) / wd[info].to_numpy(float)
        value = y[months].to_numpy() / (scale * ratio) * np.exp(rng.normal(0, noise, len(months)))
        parts.append(
            pd.DataFrame(
                {
                    "ds": months,
                    "information": info,
                    "value": value,
                    "available_from": months + pd.Timedelta(days=day - 1),
                    "wd_part": wd[info].to_numpy(),
                    "wd_month": wd["month"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(FLASH_COLUMNS)]


def test_flash_working_days_counts_the_korean_calendar() -> None:
    # February 2024: Seollal Fri 9 .. Sun 11 and the substitute Mon 12 are closed; 21 weekdays
    wd = flash_working_days("2024-02", "2024-03")
    assert wd.loc["2024-02-01"].to_dict() == {"d10": 6, "d20": 12, "month": 19}
    # March 2024: 21 weekdays (6 in days 1-10, 14 in 1-20), Independence Movement Day on Friday 1st
    assert wd.loc["2024-03-01"].to_dict() == {"d10": 5, "d20": 13, "month": 20}


def test_bridge_fit_coefficients_and_leave_one_out_errors() -> None:
    log_days = np.array([0.0, 0.1, 0.2, 0.3, 0.5])
    log_ratio = 0.05 + 0.8 * log_days + np.array([0.01, -0.02, 0.0, 0.02, -0.01])
    coef, loo = bridge_fit(log_ratio, log_days)
    b, a = np.polyfit(log_days, log_ratio, 1)
    np.testing.assert_allclose(coef, [a, b], rtol=1e-12)
    # leave-one-out error = the error of a refit without that month, computed by brute force
    for i in range(5):
        keep = np.arange(5) != i
        bi, ai = np.polyfit(log_days[keep], log_ratio[keep], 1)
        assert loo[i] == pytest.approx(log_ratio[i] - (ai + bi * log_days[i]), abs=1e-12)
    # the exact form: y = 1.05 * f * w_month / w_part gives a = log 1.05, b = 1, no error
    coef, loo = bridge_fit(np.log(1.05) + log_days, log_days)
    np.testing.assert_allclose(coef, [np.log(1.05), 1.0], atol=1e-12)
    np.testing.assert_allclose(loo, 0.0, atol=1e-12)


def test_exact_bridge_nowcasts_the_actual_and_weighs_out_the_model() -> None:
    y = _series(noise=0.03)
    rows = backtest(y, _flash(y), settings=FAST)
    flash_rows = rows[rows["information"] != "none"]
    # 12 earlier months are needed: d20 from 2013-01 (months 2012-01..12 public by the 21st),
    # d10 from 2013-02 (on the 11th the previous month is not confirmed yet)
    assert flash_rows.groupby("information")["ds"].min().to_dict() == {
        "d10": pd.Timestamp("2013-02-01"),
        "d20": pd.Timestamp("2013-01-01"),
    }
    assert len(flash_rows) == 35 + 36
    np.testing.assert_allclose(flash_rows["nowcast"], flash_rows["actual"], rtol=1e-9)
    assert flash_rows["ape"].max() < 1e-6
    # the none rows are the seasonal-naive forecast: last year's value of the month
    none = rows[rows["information"] == "none"].set_index("ds")
    expected = y.shift(12).reindex(none.index)
    np.testing.assert_allclose(none["nowcast"], expected, rtol=1e-12)
    assert none["as_of"].iloc[0] == pd.Timestamp("2012-01-16")  # December 2011 confirmed on the 16th
    d10 = rows[(rows["information"] == "d10") & (rows["ds"] == "2014-03-01")].iloc[0]
    assert d10["as_of"] == pd.Timestamp("2014-03-11")


def test_exact_model_gets_the_weight_when_the_flash_is_noisy() -> None:
    y = _series(noise=0.0, seasonal_only=True)  # seasonal naive is exact
    rows = backtest(y, _flash(y, noise=0.05), settings=FAST)
    flash_rows = rows[rows["information"] != "none"]
    np.testing.assert_allclose(flash_rows["nowcast"], flash_rows["actual"], rtol=1e-9)


def test_combination_weights_and_interval_on_earlier_errors() -> None:
    y = _series(noise=0.04, seed=3)
    rows = backtest(y, _flash(y, noise=0.02, seed=4), settings=FAST)
    d20 = rows[rows["information"] == "d20"]
    none = rows[rows["information"] == "none"].set_index("ds")
    # the flash-based nowcast beats the model alone on the same months
    assert d20["ape"].mean() < 0.5 * none.loc[d20["ds"], "ape"].mean()
    assert (d20["lo_80"] <= d20["nowcast"]).all() and (d20["nowcast"] <= d20["hi_80"]).all()
    inside = ((d20["actual"] >= d20["lo_80"]) & (d20["actual"] <= d20["hi_80"])).mean()
    assert 0.6 <= inside <= 0.95


def _changed(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    cols = ["nowcast", "lo_80", "hi_80"]
    return ~np.isclose(before[cols].to_numpy(), after[cols].to_numpy(), rtol=1e-12).all(axis=1)


def test_a_flash_dated_after_as_of_changes_nothing() -> None:
    y = _series(noise=0.03, seed=5)
    flash = _flash(y, noise=0.02, seed=6)
    before = backtest(y, flash, settings=FAST)
    late = flash.copy()
    hit = (late["ds"] == "2014-06-01") & (late["information"] == "d20")
    late.loc[hit, "value"] *= 10  # a wild 20-day figure for June 2014, public on 2014-06-21
    after = backtest(y, late, settings=FAST)
    assert list(before[["ds", "information", "as_of"]].itertuples(index=False)) == list(
        after[["ds", "information", "as_of"]].itertuples(index=False)
    )
    changed = _changed(before, after)
    # every row made before 2014-06-21 is untouched; the June d20 row itself moves
    assert not changed[before["as_of"] < "2014-06-21"].any()
    assert set(before.loc[changed, "ds"].dt.strftime("%Y-%m") + " " + before.loc[changed, "information"]) >= {
        "2014-06 d20"
    }
    assert before.loc[changed, "as_of"].min() == pd.Timestamp("2014-06-21")


def test_a_month_confirmed_after_as_of_changes_nothing() -> None:
    y = _series(noise=0.03, seed=7)
    flash = _flash(y, noise=0.02, seed=8)
    before = backtest(y, flash, settings=FAST)
    revised = y.copy()
    revised["2014-05-01"] *= 1.3  # May 2014 is confirmed on 2014-06-16
    after = backtest(revised, flash, settings=FAST)
    changed = _changed(before, after)
    assert not changed[before["as_of"] < "2014-06-16"].any()
    june = before.set_index(["ds", "information"]).index
    # the June d10 (11th) did not know May; the June none (16th) and d20 (21st) did
    assert not changed[june.get_loc((pd.Timestamp("2014-06-01"), "d10"))]
    assert changed[june.get_loc((pd.Timestamp("2014-06-01"), "none"))]
    assert changed[june.get_loc((pd.Timestamp("2014-06-01"), "d20"))]


def test_flash_frame_from_the_indicator_table() -> None:
    ind = pd.DataFrame(
        {
            "indicator": ["customs_10d:total", "customs_20d:total", "customs_month:total", "customs_10d:item:x"],
            "ds": pd.to_datetime(["2024-02-01"] * 4),
            "value": [14.0, 30.0, 52.0, 1.0],
            "available_from": pd.to_datetime(["2024-02-11", "2024-02-21", "2024-03-16", "2024-02-11"]),
        }
    )
    flash, published = flash_frame(ind, flash_working_days("2024-02", "2024-02"))
    assert flash.to_dict("list") == {
        "ds": [pd.Timestamp("2024-02-01")] * 2,
        "information": ["d10", "d20"],
        "value": [14.0, 30.0],
        "available_from": [pd.Timestamp("2024-02-11"), pd.Timestamp("2024-02-21")],
        "wd_part": [6, 12],
        "wd_month": [19, 19],
    }
    assert published.to_dict() == {pd.Timestamp("2024-02-01"): pd.Timestamp("2024-03-16")}
    with pytest.raises(ValueError, match="^nowcast: no working days for total d10 month 2024-02$"):
        flash_frame(ind, flash_working_days("2024-03", "2024-03"))


def test_actual_published_is_the_16th_of_the_next_month() -> None:
    ds = pd.DatetimeIndex(["2023-12-01", "2024-01-01"])
    assert list(actual_published(ds)) == [pd.Timestamp("2024-01-16"), pd.Timestamp("2024-02-16")]


def test_published_schema_is_the_column_constant() -> None:
    from flows.results import SCHEMAS

    schema = SCHEMAS["nowcast.csv"]
    assert schema.columns == NOWCAST_COLUMNS
    assert NOWCAST_COLUMNS == ("unique_id", "ds", "information", "as_of", "nowcast", "lo_80", "hi_80", "actual", "ape")
    y = _series(noise=0.03)
    rows = backtest(y, _flash(y), settings=FAST)
    assert list(schema.format(rows).columns) == list(NOWCAST_COLUMNS)
    assert set(rows["information"]) == {"none", "d10", "d20"}
    assert not rows.duplicated(["unique_id", "ds", "information"]).any()


@pytest.mark.slow
def test_pipeline_step_nowcasts_the_embedded_flash(tmp_path) -> None:
    """flows.pipeline.nowcast_step on the committed files cut to 2016-2018: the rows of
    outputs/nowcast.csv, with the publication days of the customs file."""
    from features.readers import DEFAULT_DATA_DIR, read_embedded
    from flows.pipeline import nowcast_step
    from flows.results import format_table

    text = (DEFAULT_DATA_DIR / "indicators_monthly.csv").read_text(encoding="utf-8").splitlines()
    keep = [text[0]] + [line for line in text[1:] if line.split(",")[1] < "2019-01-01"]
    (tmp_path / "indicators_monthly.csv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    frame = read_embedded()
    frame = frame[frame["ds"] < "2019-01-01"]
    rows = format_table("nowcast.csv", nowcast_step.fn(frame, tmp_path, key={}))
    counts = rows.groupby("information")["ds"].agg(["min", "max", "count"])
    assert counts.to_dict("index") == {
        "d10": {"min": pd.Timestamp("2017-02-01"), "max": pd.Timestamp("2018-12-01"), "count": 23},
        "d20": {"min": pd.Timestamp("2017-01-01"), "max": pd.Timestamp("2018-12-01"), "count": 24},
        "none": {"min": pd.Timestamp("2016-01-01"), "max": pd.Timestamp("2018-12-01"), "count": 36},
    }
    jan = rows[rows["ds"] == "2018-01-01"].set_index("information")
    # as_of: the flash's publication day; none: the day December 2017 was confirmed (customs file)
    assert jan["as_of"].dt.strftime("%Y-%m-%d").to_dict() == {
        "d10": "2018-01-11",
        "d20": "2018-01-21",
        "none": "2018-01-16",
    }
    assert (rows["ape"] == (rows["nowcast"] - rows["actual"]).abs() / rows["actual"] * 100).all()
    mape = rows[rows["ds"] >= "2017-02-01"].groupby("information")["ape"].mean()
    assert mape["d20"] < mape["d10"] < mape["none"]


def test_model_forecasts_are_the_same_with_two_processes() -> None:
    from models.applications.nowcast import NowcastSettings, _model_forecasts

    t = np.arange(60)
    y = pd.Series(
        100 * np.exp(0.01 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)),
        index=pd.date_range("2019-01-01", periods=60, freq="MS"),
    )
    origins = y.index[30:40]
    one = _model_forecasts(y, origins, NowcastSettings(model="theta"), "total")
    two = _model_forecasts(y, origins, NowcastSettings(model="theta", n_jobs=2), "total")
    assert len(one) == 30 and one == two
