"""Leading indicators as regressors (features/leading.py, models/families/leading.py): the regression
recovers a known coefficient, the as-of filter keeps exactly the values public at a cutoff, and
the backtest changes only through values public at its cutoffs (the leakage test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.indicators import available_from
from features.leading import LeadingIndicatorError, LeadingSpec, information_date, leading_columns
from models.core import registry
from models.core.backtest import backtest
from models.core.engine import EngineSettings, ModelSpec

FAST = {"max_p": 1, "max_q": 1, "max_candidates": 6, "n_draws": 400}
WSTS = "wsts_month:billings_worldwide"
FLASH = "customs_10d:total"


def indicator_table(values: pd.Series, name: str, release: str) -> pd.DataFrame:
    """An indicator table in the shape of features.readers.read_indicators."""
    cut = "10d" if release == "flash" else "month"
    return pd.DataFrame(
        {
            "indicator": name,
            "ds": values.index,
            "value": values.to_numpy(dtype=float),
            "unit": "USD",
            "available_from": [
                pd.Timestamp(available_from(cut, f"{m:%Y-%m}", release="wsts" if release == "wsts" else "customs"))
                for m in values.index
            ],
            "source": "test",
        }
    )


def random_walk(start: str, n: int, seed: int, level: float = 20e9) -> pd.Series:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.03 * level, n)
    idx = pd.date_range(start, periods=n, freq="MS", name="ds")
    return pd.Series(level + np.cumsum(steps), index=idx)


SEASONAL = 1e9 * np.array([-3, -2, 1, 0, 2, 1, -1, 0, 2, 1, 0, -1], dtype=float)


def season(n: int, seed: int) -> np.ndarray:
    """The pattern SEASONAL drifting slowly (a seasonal random walk, as in export data) plus noise."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 0.1e9, (n // 12 + 1, 12)), axis=0).reshape(-1)[:n]
    return np.resize(SEASONAL, n) + drift + rng.normal(0, 0.05e9, n)


# ------------------------------------------------------------------ the regression
def test_arimax_recovers_the_coefficient_and_forecasts_the_known_values():
    """y = 2 x + a seasonal pattern + small noise (levels): beta = 2, and with the indicator known
    over the forecast months the forecast is 2 x + the pattern."""
    x = random_walk("2010-01-01", 132, seed=3)
    s = season(len(x), seed=4)
    y = 2 * x + s
    X = pd.DataFrame({"lead:test": x})
    hist = y.index[:120]
    model = registry.create("arimax", {"regressor": "lead:test", "log": False, **FAST}).fit(y[hist], X.loc[hist])
    assert model.beta_ == pytest.approx(2.0, abs=0.01)
    fc = model.predict(12, X.iloc[120:])
    truth = 2 * x.iloc[120:] + s[120:]
    np.testing.assert_allclose(fc["forecast"].to_numpy(), truth.to_numpy(), rtol=0.01)
    assert model.describe()["regressor"] == "lead:test"


def test_an_unknown_indicator_is_forecast_and_its_uncertainty_widens_the_intervals():
    x = random_walk("2010-01-01", 132, seed=3)
    y = 2 * x + season(len(x), seed=4)
    X = pd.DataFrame({"lead:test": x})
    model = registry.create("arimax", {"regressor": "lead:test", "log": False, **FAST}).fit(y.iloc[:120], X.iloc[:120])
    known = model.predict(12, X.iloc[120:])
    unknown_future = X.iloc[120:].copy()
    unknown_future.iloc[1:, 0] = np.nan  # only the first forecast month is public
    forecast = model.predict(12, unknown_future)
    width = lambda f: (f["hi_80"] - f["lo_80"]).to_numpy()  # noqa: E731
    # month 1 conditioned on the public value in both; month 12 also carries the indicator's own uncertainty
    assert width(forecast)[11] > 2 * width(known)[11]
    assert forecast["forecast"].iloc[0] == pytest.approx(known["forecast"].iloc[0], rel=0.01)
    paths = model.sample_paths(12, 500, seed=1, X_future=unknown_future)
    assert np.quantile(paths[:, 11], 0.9) - np.quantile(paths[:, 11], 0.1) > 2 * width(known)[11]
    assert describe_has_indicator_model(model)


def describe_has_indicator_model(model) -> bool:
    return model.describe()["indicator_model"].startswith("ARIMA(")


def test_history_before_the_indicator_is_cut_and_a_gap_inside_is_refused():
    x = random_walk("2010-01-01", 120, seed=5)
    y = 2 * x + season(120, seed=6)
    X = pd.DataFrame({"lead:test": x})
    X.iloc[:36, 0] = np.nan  # the indicator starts in 2013
    model = registry.create("arimax", {"regressor": "lead:test", "log": False, **FAST}).fit(y, X)
    assert model.describe()["fit_start"] == "2013-01"
    X.iloc[100, 0] = np.nan
    with pytest.raises(
        ValueError,
        match=r"^arimax: regressor 'lead:test' is unknown in month 2018-05 of the history "
        r"\(the history must end where the indicator is known\)$",
    ):
        registry.create("arimax", {"regressor": "lead:test", "log": False, **FAST}).fit(y, X)


# ------------------------------------------------------------------ as-of filtering
def small_table() -> pd.DataFrame:
    months = pd.date_range("2023-01-01", "2024-03-01", freq="MS")
    wsts = pd.Series(np.arange(1, len(months) + 1) * 1e9, index=months)  # 1e9 .. 15e9
    flash = pd.Series(np.arange(1, len(months) + 1) * 100e6, index=months)  # 1e8 .. 15e8
    return pd.concat([indicator_table(wsts, WSTS, "wsts"), indicator_table(flash, FLASH, "flash")], ignore_index=True)


def test_information_date_is_the_day_the_cutoff_month_was_confirmed():
    assert information_date("2023-12-01") == pd.Timestamp("2024-01-16")
    assert information_date(pd.Timestamp("2024-06-01")) == pd.Timestamp("2024-07-16")


def test_columns_hold_exactly_the_values_public_on_the_information_date():
    months = pd.date_range("2023-10-01", "2024-03-01", freq="MS", name="ds")
    cols = leading_columns(
        small_table(), [LeadingSpec(WSTS, lag=1), LeadingSpec(FLASH)], cutoff="2023-12-01", months=months
    )
    assert list(cols.columns) == ["lead:wsts_month:billings_worldwide@1", "lead:customs_10d:total"]
    # WSTS month m is public on the 15th of m+2: on 2024-01-16 through 2023-11 (the 11th value)
    np.testing.assert_array_equal(cols.iloc[:, 0].to_numpy(), [9e9, 10e9, 11e9, np.nan, np.nan, np.nan])
    # the 10-day flash of month m is public on the 11th of m: 2024-01's is known on 2024-01-16
    np.testing.assert_array_equal(cols.iloc[:, 1].to_numpy(), [10e8, 11e8, 12e8, 13e8, np.nan, np.nan])
    # one day later nothing new; a month later one more value of each
    later = leading_columns(
        small_table(), [LeadingSpec(WSTS, lag=1), LeadingSpec(FLASH)], cutoff="2024-01-01", months=months
    )
    np.testing.assert_array_equal(later.iloc[:, 0].to_numpy(), [9e9, 10e9, 11e9, 12e9, np.nan, np.nan])
    np.testing.assert_array_equal(later.iloc[:, 1].to_numpy(), [10e8, 11e8, 12e8, 13e8, 14e8, np.nan])


def test_an_indicator_missing_at_a_cutoff_is_a_one_line_error():
    months = pd.date_range("2023-01-01", "2024-12-01", freq="MS", name="ds")
    with pytest.raises(LeadingIndicatorError) as err:
        leading_columns(small_table(), [LeadingSpec(WSTS)], cutoff="2023-12-01", months=months)
    assert str(err.value) == (
        "leading indicator 'wsts_month:billings_worldwide' (lag 0): month 2023-12, needed at cutoff "
        "2023-12, is not known on the information date 2024-01-16 (public only from 2024-02-15)"
    )
    with pytest.raises(LeadingIndicatorError) as err:
        leading_columns(small_table(), [LeadingSpec(FLASH)], cutoff="2024-06-01", months=months)
    assert str(err.value) == (
        "leading indicator 'customs_10d:total' (lag 0): month 2024-06, needed at cutoff 2024-06, "
        "is not known on the information date 2024-07-16 (no row in the table)"
    )
    with pytest.raises(
        LeadingIndicatorError, match=r"^leading indicator 'press_10d:semis' is not in the indicator table$"
    ):
        leading_columns(small_table(), [LeadingSpec("press_10d:semis")], cutoff="2023-12-01", months=months)


# ------------------------------------------------------------------ the leakage test
def leakage_case():
    """A series driven by WSTS-like billings of the month before (y_t = 2 x_{t-1} + season)."""
    x = random_walk("2014-01-01", 132, seed=8)  # 2014-01 .. 2024-12
    y = 2 * x.shift(1) + season(len(x), seed=9)
    frame = pd.DataFrame({"unique_id": "semis", "ds": y.index[1:], "y": y.to_numpy()[1:]})
    return frame, indicator_table(x, WSTS, "wsts")


def run(frame: pd.DataFrame, table: pd.DataFrame, cutoff: str) -> pd.DataFrame:
    spec = LeadingSpec(WSTS, lag=1)
    months = pd.date_range(frame["ds"].min(), pd.Timestamp(cutoff) + pd.DateOffset(months=12), freq="MS", name="ds")
    exog = leading_columns(table, [spec], cutoff=cutoff, months=months)
    settings = EngineSettings(
        models=(ModelSpec("arimax", {"regressor": spec.column, "log": False, **FAST}),), n_jobs=1, n_paths=200
    )
    bt = backtest(frame, settings, horizon=12, cutoffs=[cutoff], exog=exog, annual=True)
    assert (bt.fits.loc[bt.fits["model"] == "arimax", "status"] == "ok").all()
    return bt.forecasts[bt.forecasts["model"] == "arimax"].reset_index(drop=True)


def test_leakage_values_not_public_at_the_cutoff_change_nothing_a_public_one_does():
    frame, table = leakage_case()
    cutoff = "2022-12-01"  # information date 2023-01-16: WSTS public through 2022-11
    base = run(frame, table, cutoff)
    # every value not yet public on 2023-01-16 (2022-12 onwards: the months the model forecasts) wrecked
    future = table.copy()
    late = future["available_from"] > information_date(cutoff)
    assert future.loc[late, "ds"].min() == pd.Timestamp("2022-12-01")
    future.loc[late, "value"] *= 3.0
    pd.testing.assert_frame_equal(
        run(frame, future, cutoff)[["ds", "forecast", "lo_80", "hi_80"]], base[["ds", "forecast", "lo_80", "hi_80"]]
    )
    # shifted by one month (each month takes the next month's value, publication dates unchanged):
    # only the values public at the cutoff move the forecast, and they do
    shifted = table.copy()
    shifted["value"] = shifted["value"].shift(-1).fillna(shifted["value"].iloc[-1])
    moved = run(frame, shifted, cutoff)
    assert not np.allclose(moved["forecast"], base["forecast"], rtol=1e-3)
    # the last public value (2022-11, public 2023-01-15) alone: it changes the forecast of 2023-01 by about 2 x the shift
    public = table.copy()
    last_public = public["ds"] == pd.Timestamp("2022-11-01")
    public.loc[last_public, "value"] += 1e9
    changed = run(frame, public, cutoff)
    assert changed["forecast"].iloc[0] - base["forecast"].iloc[0] == pytest.approx(2e9, rel=0.1)
