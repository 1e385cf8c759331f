"""Prophet wrapper: one fit, both intervals from the same draws, seeds, gaps, regressor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.core import registry
from models.core.base import ModelInputError


def series(n: int = 72, seed: int = 2) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 30e9 * (1 + 0.005 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.02, n))
    return pd.Series(values, index=pd.date_range("2015-01-01", periods=n, freq="MS", name="ds"))


def weekdays(idx: pd.DatetimeIndex) -> pd.DataFrame:
    nxt = idx + pd.offsets.MonthBegin(1)
    days = np.busday_count(idx.values.astype("datetime64[D]"), nxt.values.astype("datetime64[D]"))
    return pd.DataFrame({"working_days": days.astype(float)}, index=idx)


@pytest.fixture(scope="module")
def fitted():
    y = series()
    y.iloc[[30, 31, 32]] = np.nan
    return registry.create("prophet", {"n_samples": 400}).fit(y)


def test_missing_months_are_left_out_of_the_fit_frame(fitted):
    assert len(fitted.model_.history) == 69
    assert fitted.model_.seasonality_mode == "multiplicative"
    assert fitted.model_.weekly_seasonality is False and fitted.model_.daily_seasonality is False


def test_bounds_are_quantiles_of_one_set_of_predictive_draws(fitted):
    fc = fitted.predict(6)
    draws = fitted._draws(6, 400, 0, None)
    np.testing.assert_allclose(fc.lo_80, np.quantile(draws, 0.10, axis=0))
    np.testing.assert_allclose(fc.hi_95, np.quantile(draws, 0.975, axis=0))
    # the point forecast is Prophet's yhat, not a draw statistic
    future = pd.DataFrame({"ds": fc.index})
    fitted.model_.uncertainty_samples = 0
    np.testing.assert_allclose(fc.forecast, fitted.model_.predict(future)["yhat"])


def test_same_seed_same_paths_and_global_numpy_state_untouched(fitted):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = fitted.sample_paths(6, 50, seed=9)
    assert np.array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(a, fitted.sample_paths(6, 50, seed=9))
    assert not np.array_equal(a, fitted.sample_paths(6, 50, seed=10))


def test_working_days_regressor_is_used_and_required():
    y = series()
    X = weekdays(pd.date_range("2015-01-01", "2022-12-01", freq="MS"))
    model = registry.create("prophet", {"n_samples": 100, "working_days": True}).fit(y, X)
    assert "working_days" in model.model_.extra_regressors
    assert model.describe()["working_days"] is True
    with pytest.raises(
        ModelInputError,
        match=r"^prophet: fitted with the working-day regressor; predict needs X with a 'working_days' column$",
    ):
        model.predict(3)
    assert np.isfinite(model.predict(3, X).to_numpy()).all()


def test_bad_seasonality_mode_is_refused():
    with pytest.raises(
        ModelInputError, match=r"^prophet: seasonality_mode must be 'additive' or 'multiplicative'; got 'log'$"
    ):
        registry.create("prophet", {"seasonality_mode": "log"})


def test_intervals_are_widened_by_the_scale_measured_on_a_holdout_year():
    """The calibration scale by hand: refit without the last 12 months, forecast them, and take the
    80th percentile of |error| / (80% half-width), at least 1; the draws then spread around the
    same point forecast by that factor."""
    # a level shift in the last 18 months: the in-sample noise (2%) understates the error
    y = series(72, seed=5)
    y.iloc[-18:] *= 1.25
    raw = registry.create("prophet", {"n_samples": 400, "calibrate": False}).fit(y)
    calibrated = registry.create("prophet", {"n_samples": 400}).fit(y)

    head, holdout = y.iloc[:-12], y.iloc[-12:]
    probe = registry.create("prophet", {"n_samples": 500, "calibrate": False}).fit(head).predict(12)
    ratio = np.abs(holdout.to_numpy() - probe["forecast"].to_numpy()) / (
        (probe["hi_80"] - probe["lo_80"]).to_numpy() / 2
    )
    expected = float(np.clip(np.quantile(ratio, 0.8), 1.0, 5.0))
    assert expected > 1.0
    assert calibrated.interval_scale_ == pytest.approx(expected)
    assert calibrated.describe()["interval_scale"] == pytest.approx(expected)

    a, b = raw.predict(6), calibrated.predict(6)
    np.testing.assert_allclose(b.forecast, a.forecast)
    np.testing.assert_allclose(b.hi_80 - b.forecast, expected * (a.hi_80 - a.forecast), rtol=1e-9)
    np.testing.assert_allclose(b.forecast - b.lo_95, expected * (a.forecast - a.lo_95), rtol=1e-9)


def test_series_too_short_to_hold_out_a_year_are_not_rescaled():
    model = registry.create("prophet", {"n_samples": 200}).fit(series(30))
    assert model.interval_scale_ == 1.0


@pytest.mark.slow
def test_annual_draws_carry_the_residual_autocorrelation():
    """A series whose residuals are AR(1) (phi 0.8, 5% of the level): Prophet's in-sample residuals
    show it (phi near 0.7: the trend takes some of the persistence), and the annual 80% interval
    of the draws is the one of that AR(1) on the monthly forecasts, computed by hand
    (w' S w with S_ij = sigma^2 phi^|i-j|, w the forecasts; Prophet's trend draws add a little),
    about twice what independent monthly noise at the same sigma gives."""
    from scipy.stats import norm

    from models.core.annual import annual_totals, ar1_paths

    n = 120
    t = np.arange(n)
    e = ar1_paths(1, n, 0.8, 0.05, np.random.default_rng(5))[0]
    y = pd.Series(
        1e9 * (1 + 0.005 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * (1 + e),
        index=pd.date_range("2010-01-01", periods=n, freq="MS", name="ds"),
    )
    model = registry.create("prophet", {"calibrate": False}).fit(y)
    phi, sigma = model.residual_ar1_
    assert 0.6 < phi < 0.85
    assert 0.025 < sigma < 0.05
    fc = model.predict(12)
    totals = annual_totals(y, fc.index, model.sample_paths(12, 4000, seed=1), 2020, point=fc["forecast"].to_numpy())
    w = fc["forecast"].to_numpy()
    lags = np.abs(np.subtract.outer(np.arange(12), np.arange(12)))
    ar1_sd = float(np.sqrt(w @ (sigma**2 * phi**lags) @ w))
    iid_sd = float(sigma * np.sqrt(w @ w))
    width = totals["hi_80"] - totals["lo_80"]
    assert width == pytest.approx(2 * norm.ppf(0.9) * ar1_sd, rel=0.08)
    assert width > 1.8 * 2 * norm.ppf(0.9) * iid_sd
    assert model.describe()["residual_ar1"] == {"phi": round(phi, 4), "sigma": round(sigma, 6)}


def test_bad_algorithm_is_refused():
    with pytest.raises(ModelInputError, match=r"^prophet: algorithm must be 'LBFGS', 'Newton' or null; got 'bfgs'$"):
        registry.create("prophet", {"algorithm": "bfgs"})


def test_algorithm_reaches_cmdstan_and_none_leaves_prophets_own_choice(monkeypatch):
    """None passes no algorithm (Prophet takes Newton below 100 observations); a name is passed as
    it is: Newton gives the default's forecast to the bit on 48 months, L-BFGS another optimum."""
    from prophet.models import CmdStanPyBackend

    passed, original = [], CmdStanPyBackend.fit

    def recording(self, stan_init, stan_data, **kwargs):
        passed.append(kwargs.get("algorithm"))
        return original(self, stan_init, stan_data, **kwargs)

    monkeypatch.setattr(CmdStanPyBackend, "fit", recording)
    y = series(48)
    forecasts = {
        name: registry.create("prophet", {"n_samples": 50, "calibrate": False, "algorithm": name}).fit(y).predict(6)
        for name in (None, "Newton", "LBFGS")
    }
    assert passed == [None, "Newton", "LBFGS"]
    assert forecasts[None]["forecast"].to_numpy().tobytes() == forecasts["Newton"]["forecast"].to_numpy().tobytes()
    assert not np.array_equal(forecasts[None]["forecast"], forecasts["LBFGS"]["forecast"])
